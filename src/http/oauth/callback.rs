//! `GET /oauth/callback` (alias `/oauth2callback`): the upstream sends the
//! browser back here; [`crate::service::signin::callback`] finishes the
//! sign-in. The browser binding cookie (see [`super::cookies`]) is removed
//! whatever the outcome.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{answers, cookies};
use crate::domain::SecretToken;
use crate::http::{client_ip, AppState};
use crate::pages::error_page;
use crate::service::signin::{self, UpstreamAnswer};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/oauth/callback", "/oauth2callback"])
            .route(web::get().to(callback))
            .default_service(crate::http::allow("GET")),
    );
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Option<web::Query<CallbackQuery>>,
) -> HttpResponse {
    let Some(web::Query(query)) = query else {
        return error_page(400, "invalid_request", "The callback is malformed.");
    };
    let Some(raw_state) = query.state.filter(|s| !s.is_empty()) else {
        return error_page(400, "invalid_request", "The callback has no state.");
    };
    let txn_state = SecretToken::presented(raw_state);
    let answer = UpstreamAnswer {
        browser: cookies::presented_binding(&state, &req, &txn_state),
        state: txn_state.clone(),
        code: query.code,
        error: query.error,
        ip: client_ip(&req),
    };
    let mut res = match signin::callback(&state, answer).await {
        Ok(signed_in) => {
            let mut res = answers::client_redirect(&state, &signed_in.redirect);
            if let Some((value, max_age)) = signed_in.returning {
                let _ = res.add_cookie(&cookies::returning_cookie(&state, value, max_age));
            }
            res
        }
        Err(refused) => answers::refusal(&state, &refused),
    };
    let _ = res.add_cookie(&cookies::binding_removal(&state, &txn_state));
    res
}
