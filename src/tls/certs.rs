//! Loading the server's certificate chain and key, with start-up errors
//! that name the file and the problem. `SSL_CERT_FILE` is also what
//! OpenSSL-based tools read as their trust store, and many machines point it
//! at the system CA bundle: a bundle with no certificate for the key is
//! reported as exactly that, never served.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_cert::der::Decode;

use crate::clock::UnixTime;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error("{path}: no PEM certificate found (expected a certificate chain, leaf first)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PKCS#8 private key found (expected `BEGIN PRIVATE KEY`; convert a PKCS#1 or SEC1 key with `openssl pkcs8 -topk8 -nocrypt`)")]
    NoKey { path: PathBuf },
    #[error(
        "{path}: the private key is of a type TLS cannot use (RSA or ECDSA P-256/P-384, Ed25519)"
    )]
    UnsupportedKey { path: PathBuf },
    #[error("{cert}: holds {count} certificate(s), none of them for the key in {key} — this looks like a CA bundle (SSL_CERT_FILE is also the trust-store variable of OpenSSL tools); name the server certificate with server.ssl_cert_file instead")]
    BundleWithoutLeaf {
        cert: PathBuf,
        key: PathBuf,
        count: usize,
    },
    #[error("{cert}: the first certificate is not for the key in {key}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{path}: the certificate cannot be read: {why}")]
    Malformed { path: PathBuf, why: String },
}

/// A chain and key ready to serve, with the leaf's validity.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub certified: Arc<CertifiedKey>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

impl LoadedCert {
    /// Whether the leaf is outside its validity at `now` (a warning at
    /// start: an operator may be about to replace it).
    pub fn expired_at(&self, now: UnixTime) -> bool {
        now >= self.not_after || now < self.not_before
    }

    /// Whole days until the leaf expires (negative once expired).
    pub fn days_left(&self, now: UnixTime) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|e| CertError::Unreadable {
        path: path.to_owned(),
        why: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        },
    })
}

/// Loads the chain in `cert_path` and the key in `key_path`.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<LoadedCert, CertError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    parse(&cert_pem, &key_pem, cert_path, key_path)
}

/// A chain and key from PEM text; errors name `cert_path` and `key_path`
/// (files, or where the text came from).
pub fn parse(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<LoadedCert, CertError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = match PrivateKeyDer::from_pem_slice(key_pem) {
        Ok(key @ PrivateKeyDer::Pkcs8(_)) => key,
        _ => {
            return Err(CertError::NoKey {
                path: key_path.to_owned(),
            })
        }
    };
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        CertError::UnsupportedKey {
            path: key_path.to_owned(),
        }
    })?;
    let certified = CertifiedKey::new(certs.clone(), signing.clone());
    if certified.keys_match().is_err() {
        let any_matches = certs.iter().any(|c| {
            CertifiedKey::new(vec![c.clone()], signing.clone())
                .keys_match()
                .is_ok()
        });
        return Err(if any_matches {
            CertError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            }
        } else {
            CertError::BundleWithoutLeaf {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
                count: certs.len(),
            }
        });
    }
    let (not_before, not_after) = validity(&certs[0]).map_err(|why| CertError::Malformed {
        path: cert_path.to_owned(),
        why,
    })?;
    Ok(LoadedCert {
        certified: Arc::new(certified),
        not_before,
        not_after,
    })
}

/// A self-signed certificate for `names`, served while the first ACME
/// certificate is on its way (clients refuse it; readiness says so).
pub fn placeholder(names: &[String]) -> Result<LoadedCert, CertError> {
    let failed = |why: rcgen::Error| CertError::Malformed {
        path: PathBuf::from("(placeholder certificate)"),
        why: why.to_string(),
    };
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = rcgen::CertificateParams::new(names.to_vec())
        .and_then(|p| p.self_signed(&key))
        .map_err(failed)?;
    let label = Path::new("(placeholder certificate)");
    parse(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        label,
        label,
    )
}

/// The DNS names the leaf certificate is for (its subjectAltName).
pub fn names(loaded: &LoadedCert) -> Vec<String> {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let Some(leaf) = loaded.certified.cert.first() else {
        return Vec::new();
    };
    let Ok(cert) = x509_cert::Certificate::from_der(leaf.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some((_, san))) = cert.tbs_certificate.get::<SubjectAltName>() else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|n| match n {
            GeneralName::DnsName(d) => Some(d.as_str().to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The leaf's notBefore and notAfter, in Unix seconds.
fn validity(der: &CertificateDer<'_>) -> Result<(UnixTime, UnixTime), String> {
    let cert = x509_cert::Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
    let v = &cert.tbs_certificate.validity;
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    Ok((secs(&v.not_before), secs(&v.not_after)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::fixture;

    #[test]
    fn a_chain_and_its_key_load_with_the_leafs_validity() {
        let loaded = load(&fixture("localhost.pem"), &fixture("localhost.key")).unwrap();
        // Issued 2026-12-01 for 100 years.
        assert!(loaded.not_before > 1_790_000_000 && loaded.not_before < 1_800_000_000);
        assert!(loaded.not_after - loaded.not_before > 99 * 365 * 86_400);
        assert!(!loaded.expired_at(loaded.not_before + 10));
        assert!(loaded.expired_at(loaded.not_after));
        assert!(loaded.expired_at(loaded.not_before - 1));
        assert_eq!(loaded.days_left(loaded.not_after - 86_400 * 3 - 1), 3);
    }

    #[test]
    fn a_ca_bundle_without_a_certificate_for_the_key_is_named_as_such() {
        let err = load(&fixture("ca.pem"), &fixture("localhost.key")).unwrap_err();
        assert!(
            matches!(err, CertError::BundleWithoutLeaf { count: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("server.ssl_cert_file"), "{err}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let err = load(&fixture("localhost.pem"), &fixture("other.key")).unwrap_err();
        assert!(matches!(err, CertError::BundleWithoutLeaf { .. }), "{err}");
        // The right leaf, but not first: a chain in the wrong order.
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain.pem");
        let mut pem = std::fs::read(fixture("ca.pem")).unwrap();
        pem.extend(std::fs::read(fixture("localhost.pem")).unwrap());
        std::fs::write(&chain, pem).unwrap();
        let err = load(&chain, &fixture("localhost.key")).unwrap_err();
        assert!(matches!(err, CertError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn missing_files_wrong_contents_and_wrong_key_formats_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = load(&missing, &fixture("localhost.key")).unwrap_err();
        assert!(
            err.to_string().contains("missing.pem: no such file"),
            "{err}"
        );
        let err = load(&fixture("localhost.key"), &fixture("localhost.key")).unwrap_err();
        assert!(matches!(err, CertError::NoCertificate { .. }), "{err}");
        let err = load(&fixture("localhost.pem"), &fixture("localhost.pem")).unwrap_err();
        assert!(matches!(err, CertError::NoKey { .. }), "{err}");
        let sec1 = dir.path().join("sec1.key");
        std::fs::write(
            &sec1,
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load(&fixture("localhost.pem"), &sec1).unwrap_err();
        assert!(err.to_string().contains("openssl pkcs8"), "{err}");
    }
}
