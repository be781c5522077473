//! The HTTP side of the upstream calls: sending, timing and describing
//! failures without leaking what the provider sent.

use super::*;

impl Upstream {
    /// The HTTP call of a token request, noting the status it answered (so
    /// a failure can say whether the upstream answered 5xx or nonsense).
    pub(super) async fn call(
        &self,
        request: oauth2::HttpRequest,
        status: &std::cell::Cell<Option<u16>>,
    ) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
        let response = oauth2::AsyncHttpClient::call(&self.http, request).await?;
        status.set(Some(response.status().as_u16()));
        Ok(response)
    }

    pub(super) async fn call_userinfo(
        &self,
        issuer: &str,
        url: &str,
        access_token: &str,
    ) -> Result<Identity, UpstreamError> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            return Err(UpstreamError::Unavailable(if status >= 500 {
                format!("answered HTTP {status}")
            } else {
                format!("answered HTTP {status} with no identity")
            }));
        }
        let claims: serde_json::Value = res
            .json()
            .await
            .map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
        Identity::from_userinfo(issuer, &claims)
            .ok_or_else(|| UpstreamError::Unavailable("answered HTTP 200 with no `sub`".into()))
    }
}

pub(super) fn record<T>(
    endpoint: &str,
    result: &Result<T, UpstreamError>,
    started: std::time::Instant,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    crate::metrics::upstream(endpoint, outcome, started.elapsed().as_secs_f64());
}

pub(super) fn token_set(response: UpstreamTokenResponse) -> UpstreamTokenSet {
    UpstreamTokenSet {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in().map(|d| d.as_secs()),
        scopes: response
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        id_token: response.extra_fields().id_token.clone(),
        raw: serde_json::to_value(&response).unwrap_or(serde_json::Value::Null),
    }
}

/// An error and its sources, for a start-up message.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(super) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_decode() {
        "an unreadable answer".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

pub(super) fn map_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, BasicErrorResponse>,
    status: Option<u16>,
) -> UpstreamError {
    let answered = |what: &str| match status {
        Some(s) if s >= 500 => format!("answered HTTP {s}"),
        Some(s) => format!("answered HTTP {s} with {what}"),
        None => what.to_owned(),
    };
    match e {
        RequestTokenError::ServerResponse(r) => {
            let error = match r.error() {
                BasicErrorResponseType::Extension(x) => x.clone(),
                other => other.as_ref().to_owned(),
            };
            UpstreamError::Rejected {
                error,
                description: r.error_description().cloned().unwrap_or_default(),
            }
        }
        RequestTokenError::Request(e) => {
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut text = String::from("request failed");
            while let Some(s) = source {
                // oauth2 wraps reqwest's error in a Box.
                let reqwest = s
                    .downcast_ref::<reqwest::Error>()
                    .or_else(|| s.downcast_ref::<Box<reqwest::Error>>().map(|b| &**b));
                if let Some(r) = reqwest {
                    text = describe(r);
                    break;
                }
                source = s.source();
            }
            UpstreamError::Unavailable(text)
        }
        RequestTokenError::Parse(_, body) => UpstreamError::Unavailable(answered(&format!(
            "an unreadable token response ({} bytes)",
            body.len()
        ))),
        RequestTokenError::Other(m) => UpstreamError::Unavailable(answered(&m)),
    }
}
