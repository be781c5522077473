//! Who last signed in with this browser, so that a returning person's
//! consent page can tell the scopes they already granted a client from the
//! new ones (a step-up asks for both).
//!
//! After a sign-in, the browser keeps a cookie naming the user (the
//! Vault's random id, never an email) with an expiry, signed with
//! HMAC-SHA256 under a key derived from the Vault's keyring (so it is the
//! same after a restart and for every instance with the same key file, and
//! is never stored; without encryption, a key of this process). The cookie
//! only decides what the consent page lists as new: the person still
//! approves every scope the sign-in asks for, and whoever signs in at the
//! identity provider gets the grant. A cookie that is absent, expired,
//! altered or signed under another key is ignored: every scope is then
//! shown as new.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::actors::vault::DerivedKey;
use crate::service::Services;

/// What the signing key is derived for.
const PURPOSE: &str = "returning browser cookie";
const KEY_LEN: usize = 32;
/// What the MAC covers before the cookie's fields (a version and purpose).
const CONTEXT: &[u8] = b"drawbridge returning browser v1";
/// The longest user id a cookie may name (the Vault's are `u_` + 16).
const MAX_USER: usize = 64;

/// The signing key, asked of the Vault once.
#[derive(Default)]
pub struct BrowserKey(OnceCell<[u8; KEY_LEN]>);

impl BrowserKey {
    /// The key; `None` when the Vault cannot answer now (asked again next
    /// time).
    async fn get(&self, services: &Services) -> Option<&[u8; KEY_LEN]> {
        self.0.get_or_try_init(|| derive(services)).await.ok()
    }
}

async fn derive(services: &Services) -> Result<[u8; KEY_LEN], ()> {
    let msg = DerivedKey { purpose: PURPOSE };
    match services.vault.read(msg).await {
        Ok(Ok(Some(key))) => Ok(key),
        Ok(Ok(None)) => {
            // Storage without encryption: a key of this process (a cookie
            // from before a restart then shows every scope as new).
            let mut key = [0u8; KEY_LEN];
            getrandom::fill(&mut key).map_err(|_| ())?;
            Ok(key)
        }
        _ => Err(()),
    }
}

/// The cookie value remembering `user` until `expires_at` (unix seconds);
/// `None` when the key is unavailable.
pub async fn remember(services: &Services, user: &str, expires_at: i64) -> Option<String> {
    let key = services.browser_key.get(services).await?;
    let mac = sign(key, user, expires_at);
    Some(format!("{user}.{expires_at}.{}", crate::crypto::hex(&mac)))
}

/// The user a cookie value names, when it is intact, signed under this
/// server's key and not expired at `now`.
pub async fn recall(services: &Services, value: &str, now: i64) -> Option<String> {
    let (user, expires_at, mac) = parse(value)?;
    if expires_at <= now {
        return None;
    }
    let key = services.browser_key.get(services).await?;
    verify(key, user, expires_at, &mac).then(|| user.to_owned())
}

fn parse(value: &str) -> Option<(&str, i64, Vec<u8>)> {
    let mut parts = value.rsplitn(3, '.');
    let mac = unhex(parts.next()?)?;
    let expires_at = parts.next()?.parse().ok()?;
    let user = parts.next()?;
    let well_formed = !user.is_empty()
        && user.len() <= MAX_USER
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    well_formed.then_some((user, expires_at, mac))
}

fn mac(key: &[u8; KEY_LEN], user: &str, expires_at: i64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(CONTEXT);
    mac.update(&[0]);
    mac.update(user.as_bytes());
    mac.update(&[0]);
    mac.update(expires_at.to_string().as_bytes());
    mac
}

fn sign(key: &[u8; KEY_LEN], user: &str, expires_at: i64) -> Vec<u8> {
    mac(key, user, expires_at).finalize().into_bytes().to_vec()
}

/// Constant-time comparison (`verify_slice`).
fn verify(key: &[u8; KEY_LEN], user: &str, expires_at: i64, presented: &[u8]) -> bool {
    mac(key, user, expires_at).verify_slice(presented).is_ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = [7; KEY_LEN];

    fn value(user: &str, expires_at: i64) -> String {
        format!(
            "{user}.{expires_at}.{}",
            crate::crypto::hex(&sign(&KEY, user, expires_at))
        )
    }

    fn check(value: &str) -> bool {
        parse(value).is_some_and(|(user, exp, mac)| verify(&KEY, user, exp, &mac))
    }

    #[test]
    fn a_signed_value_is_recognised_and_any_change_is_not() {
        let good = value("u_abc-DEF_123", 2_000_000_000);
        assert!(check(&good));
        assert_eq!(parse(&good).unwrap().0, "u_abc-DEF_123");
        let other_user = good.replacen("u_abc", "u_abd", 1);
        let later = good.replacen("2000000000", "2000000001", 1);
        let flipped = format!("{}0", &good[..good.len() - 1]);
        for bad in [other_user, later, flipped] {
            assert!(!check(&bad), "{bad}");
        }
        let other_key = format!(
            "u_x.5.{}",
            crate::crypto::hex(&sign(&[8; KEY_LEN], "u_x", 5))
        );
        assert!(!check(&other_key));
    }

    #[test]
    fn malformed_values_are_refused_without_panicking() {
        let mac = "0".repeat(64);
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            format!("u_x.notanumber.{mac}"),
            format!(".5.{mac}"),
            format!("u x.5.{mac}"),
            format!("{}.5.{mac}", "u".repeat(65)),
            "u_x.5.zz".into(),
            format!("u_x.5.{}", "é".repeat(32)),
            format!("u_x.5.{mac}0"),
        ] {
            assert!(!check(&bad), "{bad:?}");
        }
    }
}
