//! `GET /metrics`: Prometheus text, with the live-record gauges refreshed
//! (at most every few seconds, since counting walks the store).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::metrics::METRICS;
use crate::storage::Tree;

/// When the gauges were last counted, and how long that took.
static LAST_COUNT: Mutex<Option<(Instant, Duration)>> = Mutex::new(None);
const COUNT_EVERY: Duration = Duration::from_secs(2);
/// Counting walks every record (seconds at a million): never spend more
/// than a tenth of the time counting, however often Prometheus scrapes.
const MAX_COUNTING_SHARE: u32 = 10;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(super::allow("GET")),
    );
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if counting_due() {
        refresh_store_gauges(&state).await;
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(METRICS.render())
}

/// Whether the store's sizes should be counted again for this scrape (at
/// most every `COUNT_EVERY`, and never more than a share of the time).
fn counting_due() -> bool {
    let mut last = LAST_COUNT.lock().unwrap_or_else(|p| p.into_inner());
    let due =
        last.is_none_or(|(at, took)| at.elapsed() >= COUNT_EVERY.max(took * MAX_COUNTING_SHARE));
    if due {
        *last = Some((Instant::now(), Duration::ZERO));
    }
    due
}

/// Counts the store's trees on a blocking thread and sets the gauges.
async fn refresh_store_gauges(state: &AppState) {
    let store = state.store.clone();
    let started = Instant::now();
    let counts = web::block(move || {
        let n = |t| store.len(t).unwrap_or(0) as i64;
        (
            n(Tree::Clients),
            n(Tree::Grants),
            n(Tree::Tokens),
            n(Tree::Users),
            store.size_on_disk() as i64,
        )
    })
    .await;
    if let Some(last) = LAST_COUNT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        last.1 = started.elapsed();
    }
    if let Ok((clients, grants, tokens, users, size)) = counts {
        METRICS.live.with_label_values(&["clients"]).set(clients);
        METRICS.live.with_label_values(&["grants"]).set(grants);
        METRICS.live.with_label_values(&["tokens"]).set(tokens);
        METRICS.live.with_label_values(&["users"]).set(users);
        METRICS.store_size.set(size);
    }
}
