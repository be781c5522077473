use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Who signed in at the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    pub email: Option<String>,
}

impl Identity {
    /// Claims of an ID token received directly from the token endpoint over
    /// TLS (OpenID Connect Core §3.1.3.7 lets TLS stand in for the signature
    /// check in that case).
    pub fn from_id_token(jwt: &str) -> Option<Self> {
        let payload = jwt.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Self::from_claims(&claims)
    }

    pub fn from_claims(claims: &serde_json::Value) -> Option<Self> {
        let sub = claims
            .get("sub")?
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)?
            .to_owned();
        let email = claims
            .get("email")
            .and_then(|e| e.as_str())
            .map(str::to_owned);
        Some(Self { sub, email })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_payload_and_garbage_is_none() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1234","email":"a@b.c"}"#);
        let id = Identity::from_id_token(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(
            id,
            Identity {
                sub: "1234".into(),
                email: Some("a@b.c".into())
            }
        );
        for bad in ["", "a", "a.b.c", "e30.e30.x", "e30.!!!.x"] {
            assert!(Identity::from_id_token(bad).is_none(), "{bad}");
        }
    }
}
