//! Form bodies from strangers at `/oauth/token` (and the revocation and
//! introspection endpoints, which decode forms the same way).
//!
//! `parse_form_body` is what the handlers call once the content type is
//! checked. It must refuse exactly the bodies that repeat a parameter
//! (RFC 6749 §3.2) and otherwise keep every parameter as the plain
//! `application/x-www-form-urlencoded` decoder reads it.
#![no_main]

use std::collections::HashSet;

use drawbridge::http::oauth::parse_form_body;
use libfuzzer_sys::fuzz_target;
use url::form_urlencoded;

fuzz_target!(|body: &[u8]| {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let mut seen = HashSet::new();
    let repeated = pairs.iter().find(|(k, _)| !seen.insert(k));
    match parse_form_body(body) {
        Ok(form) => {
            assert!(repeated.is_none(), "a repeated parameter was accepted");
            assert_eq!(form.len(), pairs.len());
            for (k, v) in &pairs {
                assert_eq!(form.get(k), Some(v), "parameter {k:?}");
            }
            // What a client would send for this form parses to the same form.
            let again: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            assert_eq!(parse_form_body(again.as_bytes()).ok(), Some(form));
        }
        Err(e) => {
            assert_eq!(e.status.as_u16(), 400);
            assert_eq!(e.error.as_str(), "invalid_request");
            let (k, _) = repeated
                .unwrap_or_else(|| panic!("refused a form with no repeated parameter: {e:?}"));
            assert!(
                e.error_description.contains(k.as_str()),
                "{:?}",
                e.error_description
            );
        }
    }
});
