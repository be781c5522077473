//! Whose pages these are: the operator's service name and logo
//! (`[pages]`), shown in every page's header.
//!
//! The pages are rendered deep inside handlers that know nothing of the
//! configuration (an error page can come from any sign-in step), so the
//! branding travels with the request instead: [`branded`] wraps the app and
//! makes the app's [`Branding`] current while a request is handled, and
//! [`current`] reads it. Outside a request (unit tests) it is the default.

use std::sync::{Arc, LazyLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::configuration::PagesConfig;

/// The name the pages show when the operator names none.
pub const DEFAULT_SERVICE_NAME: &str = "Drawbridge";

/// What a page's header shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// The operator's name for the service.
    pub service_name: String,
    /// The logo as a `data:` URI (already checked), if any.
    pub logo: Option<String>,
    /// The development identity provider's pages: they stand in for
    /// Google's, so they carry its own header, not the operator's.
    pub development: bool,
}

impl Branding {
    /// The branding `[pages]` configures.
    pub fn new(config: &PagesConfig) -> Self {
        Self {
            service_name: config.service_name.clone(),
            logo: config.logo.clone(),
            development: false,
        }
    }

    /// The development identity provider's header.
    pub fn development() -> Self {
        Self {
            service_name: "Development identity provider".into(),
            logo: None,
            development: true,
        }
    }

    /// Whether the page credits Drawbridge (when the operator renamed it).
    pub fn credits_drawbridge(&self) -> bool {
        !self.development && self.service_name != DEFAULT_SERVICE_NAME
    }
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            service_name: DEFAULT_SERVICE_NAME.into(),
            logo: None,
            development: false,
        }
    }
}

static DEFAULT: LazyLock<Arc<Branding>> = LazyLock::new(Arc::default);

tokio::task_local! {
    static CURRENT: Arc<Branding>;
}

/// The branding of the request being handled (the default outside one).
pub fn current() -> Arc<Branding> {
    CURRENT
        .try_with(Arc::clone)
        .unwrap_or_else(|_| DEFAULT.clone())
}

/// Middleware (`.wrap(from_fn(pages::branded))`, with a
/// `web::Data<Branding>` in the app's data): the pages rendered while this
/// request is handled carry that branding.
pub async fn branded(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let branding = req
        .app_data::<web::Data<Branding>>()
        .map(|data| data.clone().into_inner())
        .unwrap_or_else(|| DEFAULT.clone());
    CURRENT.scope(branding, next.call(req)).await
}
