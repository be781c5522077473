//! The plain-HTTP listener beside HTTPS (`server.http_redirect_port`):
//! answers ACME HTTP-01 challenges, and sends everything else to the same
//! path and query on the HTTPS base URL's origin (never to the `Host` the
//! request named: the redirect cannot be pointed elsewhere).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::Method;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::tls::acme::Http01Challenges;

#[derive(Clone)]
struct Redirect {
    /// `BASE_URL`'s origin (`https://host[:port]`).
    origin: String,
    challenges: Option<Arc<Http01Challenges>>,
}

/// Serves the redirect listener on `listener`.
pub fn start(
    listener: TcpListener,
    base_url: &url::Url,
    challenges: Option<Arc<Http01Challenges>>,
) -> std::io::Result<Server> {
    let state = Redirect {
        origin: base_url.origin().ascii_serialization(),
        challenges,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route(
                "/.well-known/acme-challenge/{token}",
                web::get().to(challenge),
            )
            .default_service(web::to(redirect))
    })
    .workers(1)
    .listen(listener)?
    .run();
    Ok(server)
}

async fn challenge(state: web::Data<Redirect>, token: web::Path<String>) -> HttpResponse {
    match state.challenges.as_ref().and_then(|c| c.answer(&token)) {
        Some(key_authorization) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(key_authorization),
        None => HttpResponse::NotFound().finish(),
    }
}

/// 301 for GET and HEAD, 308 otherwise (the method and body are kept).
async fn redirect(state: web::Data<Redirect>, req: HttpRequest) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut res = if matches!(*req.method(), Method::GET | Method::HEAD) {
        HttpResponse::MovedPermanently()
    } else {
        HttpResponse::PermanentRedirect()
    };
    res.insert_header(("Location", format!("{}{path}", state.origin)))
        .finish()
}
