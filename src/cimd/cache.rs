//! Fetched documents, kept as long as HTTP caching allows within the
//! operator's bounds. Errors and invalid documents are never kept; one
//! fetch at a time per URL (concurrent sign-ins wait for it and share its
//! answer). The cache is in memory: a restart refetches, which costs one
//! small request per client and never serves a document past a restart's
//! worth of staleness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::document::{validate, DocumentError};
use super::fetch::{FetchError, Fetched};
use crate::clock::{Clock, UnixTime};
use crate::domain::DocumentUrl;
use crate::domain::{ClientMetadata, RegistrationPolicy};
use crate::single_flight::SingleFlight;

/// How long a document is kept, whatever its headers say.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub min_seconds: i64,
    pub max_seconds: i64,
}

/// A valid document as kept.
#[derive(Debug)]
pub struct Cached {
    pub metadata: ClientMetadata,
    /// SHA-256 of the document's bytes: a changed document is a new
    /// version (the next sign-in asks for consent again).
    pub digest: [u8; 32],
    pub fetched_at: UnixTime,
    pub fresh_until: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// Where documents come from: the network in production, a table in tests.
pub type Source =
    Arc<dyn Fn(DocumentUrl) -> BoxFuture<'static, Result<Fetched, FetchError>> + Send + Sync>;

pub struct DocumentCache {
    source: Source,
    policy: RegistrationPolicy,
    lifetimes: Lifetimes,
    clock: Clock,
    entries: Mutex<HashMap<String, Arc<Cached>>>,
    flights: SingleFlight,
}

impl DocumentCache {
    pub fn new(
        source: Source,
        policy: RegistrationPolicy,
        lifetimes: Lifetimes,
        clock: Clock,
    ) -> Self {
        Self {
            source,
            policy,
            lifetimes,
            clock,
            entries: Mutex::default(),
            flights: SingleFlight::default(),
        }
    }

    fn fresh(&self, url: &DocumentUrl) -> Option<Arc<Cached>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(url.as_str())
            .filter(|c| c.fresh_until > self.clock.now())
            .cloned()
    }

    /// The document at `url`: from the cache while fresh, else fetched
    /// (once, however many callers ask at the same time) and validated.
    pub async fn get(&self, url: &DocumentUrl) -> Result<Arc<Cached>, CimdError> {
        if let Some(hit) = self.fresh(url) {
            return Ok(hit);
        }
        let lock = self.flights.lock_for(url.as_str());
        let _guard = lock.lock().await;
        if let Some(hit) = self.fresh(url) {
            return Ok(hit);
        }
        let fetched = (self.source)(url.clone()).await.inspect_err(|e| {
            crate::metrics::client_document(e.outcome());
        })?;
        let metadata = validate(url, &fetched.body, &self.policy).inspect_err(|_| {
            crate::metrics::client_document("invalid_document");
        })?;
        crate::metrics::client_document("fetched");
        let now = self.clock.now();
        let lifetime = http_lifetime(&fetched, now).unwrap_or(0).clamp(
            self.lifetimes.min_seconds,
            self.lifetimes.max_seconds.max(self.lifetimes.min_seconds),
        );
        let cached = Arc::new(Cached {
            metadata,
            digest: Sha256::digest(&fetched.body).into(),
            fetched_at: now,
            fresh_until: now + lifetime,
        });
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, c| c.fresh_until > now);
        entries.insert(url.as_str().to_owned(), cached.clone());
        Ok(cached)
    }

    /// What is cached for `url`, fresh or not (the admin view).
    pub fn peek(&self, url: &str) -> Option<Arc<Cached>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(url).cloned()
    }
}

/// Seconds the response may be kept by RFC 9111's rules (`no-store` and
/// `no-cache` → 0; `max-age` less `Age`; else `Expires`), or `None` when
/// the headers say nothing.
pub fn http_lifetime(fetched: &Fetched, now: UnixTime) -> Option<i64> {
    if let Some(cc) = &fetched.cache_control {
        let mut max_age = None;
        for directive in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            if directive == "no-store" || directive == "no-cache" {
                return Some(0);
            }
            if let Some(v) = directive.strip_prefix("max-age=") {
                max_age = v.trim_matches('"').parse::<i64>().ok();
            }
        }
        if let Some(max_age) = max_age {
            let age = fetched
                .age
                .as_deref()
                .and_then(|a| a.trim().parse::<i64>().ok())
                .unwrap_or(0);
            return Some((max_age - age).max(0));
        }
    }
    let expires = fetched.expires.as_deref()?;
    let at = httpdate::parse_http_date(expires.trim()).ok()?;
    let at = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some((at - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScopeSet;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const URL: &str = "https://client.example/metadata.json";

    fn fetched(cache_control: Option<&str>, body: serde_json::Value) -> Fetched {
        Fetched {
            body: body.to_string().into_bytes(),
            cache_control: cache_control.map(str::to_owned),
            expires: None,
            age: None,
        }
    }

    fn doc(name: &str) -> serde_json::Value {
        json!({"client_id": URL, "client_name": name, "redirect_uris": ["https://client.example/cb"]})
    }

    /// A cache over a source that answers what `answers` holds and counts
    /// its fetches.
    fn cache(
        answers: Arc<Mutex<Result<Fetched, FetchError>>>,
        clock: Clock,
    ) -> (DocumentCache, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        let source: Source = Arc::new(move |_url| {
            counted.fetch_add(1, Ordering::SeqCst);
            let answer = answers.lock().unwrap().clone();
            Box::pin(async move {
                actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
                answer
            })
        });
        let policy = RegistrationPolicy {
            allowed_redirect_uris: Vec::new(),
            supported_scopes: ScopeSet::parse("openid email", false).unwrap(),
            google_scope_aliases: false,
            allow_custom_upstream_clients: false,
        };
        let lifetimes = Lifetimes {
            min_seconds: 60,
            max_seconds: 3600,
        };
        (DocumentCache::new(source, policy, lifetimes, clock), count)
    }

    #[actix_web::test]
    async fn a_document_is_kept_for_its_max_age_within_the_bounds_and_fetched_again_after() {
        let clock = Clock::manual(1_000_000);
        let answers = Arc::new(Mutex::new(Ok(fetched(
            Some("public, max-age=600"),
            doc("One"),
        ))));
        let (cache, count) = cache(answers.clone(), clock.clone());
        let url = DocumentUrl::parse(URL).unwrap();
        let first = cache.get(&url).await.unwrap();
        assert_eq!(first.fresh_until, 1_000_000 + 600);
        clock.advance(599);
        cache.get(&url).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1, "fetched again while fresh");
        *answers.lock().unwrap() = Ok(fetched(Some("max-age=999999"), doc("Two")));
        clock.advance(2);
        let second = cache.get(&url).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(second.metadata.client_name.as_deref(), Some("Two"));
        assert_ne!(
            second.digest, first.digest,
            "a changed document has a new digest"
        );
        assert_eq!(
            second.fresh_until,
            clock.now() + 3600,
            "max-age above the bound"
        );
    }

    #[actix_web::test]
    async fn no_store_and_missing_headers_keep_the_document_for_the_minimum() {
        let clock = Clock::manual(1_000_000);
        for cc in [Some("no-store"), Some("no-cache"), None] {
            let answers = Arc::new(Mutex::new(Ok(fetched(cc, doc("One")))));
            let (cache, _) = cache(answers, clock.clone());
            let got = cache.get(&DocumentUrl::parse(URL).unwrap()).await.unwrap();
            assert_eq!(got.fresh_until, clock.now() + 60, "{cc:?}");
        }
    }

    #[actix_web::test]
    async fn errors_and_invalid_documents_are_never_kept() {
        let clock = Clock::manual(1_000_000);
        let answers = Arc::new(Mutex::new(Err(FetchError::Status(404))));
        let (cache, count) = cache(answers.clone(), clock.clone());
        let url = DocumentUrl::parse(URL).unwrap();
        assert!(cache.get(&url).await.is_err());
        assert!(cache.get(&url).await.is_err());
        assert_eq!(count.load(Ordering::SeqCst), 2, "an error was cached");
        *answers.lock().unwrap() = Ok(fetched(
            Some("max-age=600"),
            json!({"client_id": "https://other.example/x"}),
        ));
        assert!(matches!(
            cache.get(&url).await,
            Err(CimdError::Document(DocumentError::ClientIdMismatch))
        ));
        assert!(cache.get(&url).await.is_err());
        assert_eq!(
            count.load(Ordering::SeqCst),
            4,
            "an invalid document was cached"
        );
        assert!(cache.peek(URL).is_none());
    }

    #[actix_web::test]
    async fn concurrent_sign_ins_share_one_fetch() {
        let clock = Clock::manual(1_000_000);
        let answers = Arc::new(Mutex::new(Ok(fetched(Some("max-age=600"), doc("One")))));
        let (cache, count) = cache(answers, clock);
        let url = DocumentUrl::parse(URL).unwrap();
        let all = futures_util::future::join_all((0..20).map(|_| cache.get(&url))).await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn lifetimes_follow_max_age_less_age_then_expires() {
        let mut f = fetched(Some("max-age=300"), json!({}));
        f.age = Some("100".into());
        assert_eq!(http_lifetime(&f, 0), Some(200));
        let mut f = fetched(None, json!({}));
        f.expires = Some("Thu, 01 Jan 1970 00:10:00 GMT".into());
        assert_eq!(http_lifetime(&f, 0), Some(600));
        f.expires = Some("not a date".into());
        assert_eq!(http_lifetime(&f, 0), None);
        assert_eq!(http_lifetime(&fetched(Some("public"), json!({})), 0), None);
    }
}
