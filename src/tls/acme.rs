//! Certificates from an ACME CA (RFC 8555; Let's Encrypt by default), with
//! the HTTP-01 challenge answered by Drawbridge's own redirect listener.
//! The protocol is `instant-acme`'s; requests go through reqwest (the HTTP
//! client Drawbridge already has), so the CA's own HTTPS is checked against
//! the web's roots plus the operator's `tls.acme.ca_file`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::Duration;

use actix_web::web::Bytes;
use http_body_util::{BodyExt, Full};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use crate::configuration::AcmeConfig;

/// The HTTP-01 answers being asked for: token → key authorization. The
/// redirect listener serves them at `/.well-known/acme-challenge/{token}`.
#[derive(Debug, Default)]
pub struct Http01Challenges(RwLock<HashMap<String, String>>);

impl Http01Challenges {
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    fn set(&self, token: String, key_authorization: String) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, key_authorization);
    }

    fn clear(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A certificate the CA issued.
#[derive(Debug)]
pub struct Issued {
    /// The chain, leaf first (PEM).
    pub chain_pem: String,
    /// The certificate's new private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The ACME account's credentials (JSON), when the account was created
    /// by this order (to be kept for the next).
    pub new_account: Option<Vec<u8>>,
}

/// Why an order failed; the text is safe to log (no key material).
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("the ACME client could not be set up: {0}")]
    Setup(String),
    #[error("the stored ACME account is unreadable: {0}")]
    Account(String),
    #[error("the ACME server refused or failed: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("the order ended {0:?} (a challenge was not validated?)")]
    Order(OrderStatus),
    #[error("the CA offered no HTTP-01 challenge for {0}")]
    NoHttp01(String),
}

/// Orders one certificate for the configured domains. `account` is the
/// stored account (JSON) if there is one; else an account is created.
pub async fn order(
    config: &AcmeConfig,
    account: Option<&[u8]>,
    challenges: &Http01Challenges,
) -> Result<Issued, AcmeError> {
    let http = ReqwestHttp::new(config)?;
    let builder = Account::builder_with_http(Box::new(http));
    let (account, new_account) = match account {
        Some(stored) => {
            let credentials: AccountCredentials =
                serde_json::from_slice(stored).map_err(|e| AcmeError::Account(e.to_string()))?;
            (builder.from_credentials(credentials).await?, None)
        }
        None => {
            let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
            let new = NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            };
            let (account, credentials) = builder
                .create(&new, config.directory_url.to_string(), None)
                .await?;
            let json =
                serde_json::to_vec(&credentials).map_err(|e| AcmeError::Account(e.to_string()))?;
            (account, Some(json))
        }
    };
    let result = validate_and_finalize(&account, config, challenges).await;
    challenges.clear();
    let (chain_pem, key_pem) = result?;
    Ok(Issued {
        chain_pem,
        key_pem,
        new_account,
    })
}

async fn validate_and_finalize(
    account: &Account,
    config: &AcmeConfig,
    challenges: &Http01Challenges,
) -> Result<(String, String), AcmeError> {
    let identifiers: Vec<Identifier> = config
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        if authorization.status == AuthorizationStatus::Valid {
            continue;
        }
        let name = authorization.identifier().to_string();
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .ok_or(AcmeError::NoHttp01(name))?;
        challenges.set(
            challenge.token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        challenge.set_ready().await?;
    }
    let patience = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(90));
    let status = order.poll_ready(&patience).await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Order(status));
    }
    let key_pem = order.finalize().await?;
    let chain_pem = order.poll_certificate(&patience).await?;
    Ok((chain_pem, key_pem))
}

/// instant-acme's requests, sent with reqwest.
struct ReqwestHttp(reqwest::Client);

impl ReqwestHttp {
    fn new(config: &AcmeConfig) -> Result<Self, AcmeError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("drawbridge/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| AcmeError::Setup(format!("tls.acme.ca_file: {e}")))?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let client = builder
            .build()
            .map_err(|e| AcmeError::Setup(e.to_string()))?;
        Ok(Self(client))
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>>;

impl HttpClient for ReqwestHttp {
    fn request(&self, req: http::Request<BodyWrapper<Bytes>>) -> Answer {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let url = parts.uri.to_string();
            let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let answer = client
                .request(method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut response = http::Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                response = response.header(name.as_str(), value.as_bytes());
            }
            let bytes = answer
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let response = response
                .body(Full::new(bytes))
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(BytesResponse::from(response))
        })
    }
}

/// When a certificate valid from `not_before` to `not_after` is renewed:
/// once less than a third of its lifetime is left (30 days of Let's
/// Encrypt's 90; proportionally for short-lived certificates).
pub fn renewal_due_at(not_before: i64, not_after: i64) -> i64 {
    not_after - (not_after - not_before).max(0) / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_renewed_with_a_third_of_its_life_left() {
        let day = 86_400;
        assert_eq!(renewal_due_at(0, 90 * day), 60 * day);
        assert_eq!(renewal_due_at(1000, 1030), 1020);
        assert_eq!(
            renewal_due_at(50, 10),
            10,
            "a nonsense validity is due at once"
        );
    }

    #[test]
    fn challenges_answer_what_was_set_until_cleared() {
        let c = Http01Challenges::default();
        assert_eq!(c.answer("t"), None);
        c.set("t".into(), "t.thumb".into());
        assert_eq!(c.answer("t").as_deref(), Some("t.thumb"));
        c.clear();
        assert_eq!(c.answer("t"), None);
    }
}
