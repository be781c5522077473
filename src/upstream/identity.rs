use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Google's issuer, as its discovery document and most ID tokens spell it.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Who signed in at the upstream: the issuer that vouched for it, the
/// subject, and the email with whether the issuer verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Google's `hd` claim: the Workspace domain of the account, when it
    /// is one (the access policy's `google_workspace_domains`).
    pub hosted_domain: Option<String>,
}

impl Identity {
    /// The email when verified: the only one that may name the user.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    /// An identity from a userinfo answer (an access-token-protected call
    /// to the issuer's own endpoint), vouched for by `issuer`.
    pub fn from_userinfo(issuer: &str, claims: &serde_json::Value) -> Option<Self> {
        let sub = claims
            .get("sub")?
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)?
            .to_owned();
        let email = claims
            .get("email")
            .and_then(|e| e.as_str())
            .filter(|e| !e.is_empty())
            .map(str::to_owned);
        Some(Self {
            issuer: issuer.to_owned(),
            sub,
            email_verified: email.is_some() && claim_is_true(claims.get("email_verified")),
            email,
            hosted_domain: hosted_domain(claims),
        })
    }
}

/// The `hd` claim, when it is a non-empty string.
pub fn hosted_domain(claims: &serde_json::Value) -> Option<String> {
    claims
        .get("hd")
        .and_then(|v| v.as_str())
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// `email_verified` as providers send it: `true`, or the string `"true"`.
pub fn claim_is_true(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// One spelling per issuer: Google's ID tokens may say `accounts.google.com`.
pub fn canonical_issuer(iss: &str) -> String {
    if iss == "accounts.google.com" {
        GOOGLE_ISSUER.to_owned()
    } else {
        iss.to_owned()
    }
}

/// The payload of a JWT, NOT verified: only for reading back what an ID
/// token stored by an earlier release said (the issuer and email
/// verification of a record written before they were recorded). Never
/// used to sign anyone in.
pub fn unverified_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes)
        .ok()
        .filter(serde_json::Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_counts_as_verified_only_when_the_issuer_says_so() {
        let id = |claims: serde_json::Value| Identity::from_userinfo("https://i", &claims).unwrap();
        assert!(
            id(serde_json::json!({"sub": "1", "email": "a@b.c", "email_verified": true}))
                .email_verified
        );
        assert!(
            id(serde_json::json!({"sub": "1", "email": "a@b.c", "email_verified": "true"}))
                .email_verified
        );
        for unverified in [
            serde_json::json!({"sub": "1", "email": "a@b.c"}),
            serde_json::json!({"sub": "1", "email": "a@b.c", "email_verified": false}),
            serde_json::json!({"sub": "1", "email": "a@b.c", "email_verified": "yes"}),
        ] {
            let i = id(unverified);
            assert!(!i.email_verified);
            assert_eq!(i.verified_email(), None);
        }
        assert!(
            Identity::from_userinfo("https://i", &serde_json::json!({"email": "a@b.c"})).is_none()
        );
    }

    #[test]
    fn stored_claims_are_read_from_the_payload_and_garbage_is_none() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1234","email":"a@b.c"}"#);
        let claims = unverified_claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(claims["sub"], "1234");
        for bad in ["", "a", "a.b.c", "e30.!!!.x", "e30.MQ.x"] {
            assert!(unverified_claims(bad).is_none(), "{bad}");
        }
    }
}
