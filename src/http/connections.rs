//! Connection hygiene: a deadline for reading request bodies, and a cap on
//! the connections one client address holds open at once.
//!
//! actix reads a connection's first request head within
//! `client_request_timeout` (`server.head_read_timeout_seconds`) but has no
//! deadline for bodies: a client sending a byte every few seconds,
//! or nothing after the head, held the connection (and a file descriptor)
//! for ever. [`guard`] gives every request body `server.body_read_timeout_seconds`
//! from the end of its head; a body still unread then is answered 408 and
//! the connection closed. A request answered before its body arrived (a 401
//! at the gateway) has its connection closed too, instead of the server
//! draining a body that may never end. Over HTTP/2 the connection carries
//! other streams and is not closed: the rest of a small body is read
//! (at most [`H2_DRAIN_BYTES`], for at most [`H2_DRAIN_WAIT`]) before the
//! answer goes out, because a stream whose body is left unread is reset
//! with `CANCEL`, and clients such as curl then report a network error
//! instead of the answer (a 401 that starts a sign-in, a 429).
//!
//! actix also times only the first request head of a connection; the
//! watchdog in [`ConnectionLimits`] closes a connection whose next request
//! head has not reached the handlers `server.head_read_timeout_seconds`
//! after the previous answer (or the connection's start). To shut a socket
//! down while actix owns it, the watchdog keeps a duplicate descriptor of
//! each connection: a connection costs two file descriptors.
//!
//! [`ConnectionLimits::on_connect`] counts open connections per address (the
//! TCP peer: forwarding headers are not believed here; an IPv6 client counts
//! by its /64); requests on a connection over `server.max_connections_per_address`
//! are answered 429 and the connection closed. Connections that never send a
//! head are closed by the head time-out. Trusted proxies
//! (`rate_limit.trusted_proxies`) are not capped: they carry many clients.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, Version};
use actix_web::middleware::Next;
use actix_web::rt::time::{sleep, Sleep};
use actix_web::web::{self, Bytes};
use actix_web::{Error, HttpMessage};
use futures_util::Stream;

use super::client_addr::Cidr;
use super::errors::OAuthError;
use super::AppState;
use crate::configuration::Config;
use crate::domain::ErrorCode;

/// Open connections per client address, shared by every worker.
#[derive(Clone)]
pub struct ConnectionLimits {
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
    cap: u32,
    trusted: Arc<[Cidr]>,
    watchdog: Arc<Watchdog>,
}

/// Closes connections that take longer than the head time-out to deliver
/// a request's head. actix times only the first head of a connection
/// (`client_request_timeout`); on a kept-alive connection, a client that
/// starts its next request within the keep-alive time can then send the
/// rest of the head a byte at a time for ever. Here every connection gets
/// the head time-out from its start or from the end of its last answer to
/// bring its next request to the handlers; idle connections are closed
/// sooner by keep-alive (5 s).
struct Watchdog {
    epoch: Instant,
    head_timeout: Duration,
    connections: Mutex<Vec<Weak<Activity>>>,
}

/// What the watchdog knows of one connection.
struct Activity {
    /// A duplicate of the connection's socket, to shut it down with.
    socket: Option<std::net::TcpStream>,
    /// Requests under way (reached [`guard`], answer not yet sent).
    busy: AtomicU32,
    /// When the connection opened or last finished an answer (ms since `epoch`).
    idle_since: AtomicU64,
}

impl Watchdog {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Shuts down the connections stuck outside a request too long.
    fn sweep(&self) {
        let now = self.now();
        let limit = self.head_timeout.as_millis() as u64;
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.retain(|weak| {
            let Some(c) = weak.upgrade() else {
                return false;
            };
            let stuck = c.busy.load(Ordering::SeqCst) == 0
                && now.saturating_sub(c.idle_since.load(Ordering::SeqCst)) > limit;
            if stuck {
                if let Some(socket) = &c.socket {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
            }
            !stuck
        });
    }

    /// Sweeps every quarter second while the server (its limits) lives.
    fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("connection-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(250));
                match weak.upgrade() {
                    Some(w) => w.sweep(),
                    None => return,
                }
            });
    }
}

/// One request under way on a connection; when it ends (its answer sent or
/// abandoned), the connection's head time-out starts again.
struct Busy {
    activity: Arc<Activity>,
    watchdog: Arc<Watchdog>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity
            .idle_since
            .store(self.watchdog.now(), Ordering::SeqCst);
        self.activity.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Attached to each connection: releases its place when the connection ends.
pub struct ConnectionSlot {
    key: Option<IpAddr>,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
    /// The cap, when this connection is over it.
    over_cap: Option<u32>,
    activity: Arc<Activity>,
    watchdog: Arc<Watchdog>,
}

impl ConnectionSlot {
    fn busy(&self) -> Busy {
        self.activity.busy.fetch_add(1, Ordering::SeqCst);
        Busy {
            activity: self.activity.clone(),
            watchdog: self.watchdog.clone(),
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

impl ConnectionLimits {
    /// Also starts the head watchdog's thread, which ends with the server.
    pub fn new(config: &Config) -> Self {
        let watchdog = Arc::new(Watchdog {
            epoch: Instant::now(),
            head_timeout: config.server.head_read_timeout,
            connections: Mutex::default(),
        });
        watchdog.start();
        Self {
            open: Arc::default(),
            cap: config.server.max_connections_per_address,
            trusted: config.server.trusted_proxies.clone().into(),
            watchdog,
        }
    }

    /// For `HttpServer::on_connect`: counts the connection and attaches its slot.
    pub fn on_connect(&self, io: &dyn Any, extensions: &mut Extensions) {
        // Plain HTTP, or the TCP stream under HTTPS.
        let stream = io.downcast_ref::<actix_web::rt::net::TcpStream>().or_else(|| {
            io.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
                .map(|tls| tls.get_ref().0)
        });
        let peer = stream.and_then(|s| s.peer_addr().ok()).map(|a| a.ip());
        let activity = Arc::new(Activity {
            socket: stream.and_then(duplicate),
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.watchdog.now()),
        });
        self.watchdog
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&activity));
        let key = peer
            .filter(|ip| self.cap > 0 && !self.trusted.iter().any(|c| c.contains(*ip)))
            .map(super::client_addr::subscriber);
        let mut over_cap = None;
        if let Some(key) = key {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(key).or_insert(0);
            *n += 1;
            if *n > self.cap {
                over_cap = Some(self.cap);
            }
        }
        extensions.insert(ConnectionSlot {
            key,
            open: self.open.clone(),
            over_cap,
            activity,
            watchdog: self.watchdog.clone(),
        });
    }
}

/// A second handle on the connection's socket (a duplicated descriptor),
/// so the watchdog can shut it down while actix owns the stream.
#[cfg(unix)]
fn duplicate(stream: &actix_web::rt::net::TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    stream
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::net::TcpStream::from)
}

#[cfg(not(unix))]
fn duplicate(_: &actix_web::rt::net::TcpStream) -> Option<std::net::TcpStream> {
    None
}

/// A request body that must have arrived by a deadline.
struct Deadline {
    payload: Rc<RefCell<Payload>>,
    timer: Pin<Box<Sleep>>,
    fired: Rc<Cell<bool>>,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = {
            let mut payload = self.payload.borrow_mut();
            Pin::new(&mut *payload).poll_next(cx)
        };
        match next {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    self.done = true;
                    self.fired.set(true);
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request body read timed out",
                    )))))
                }
            },
        }
    }
}

/// The most of an HTTP/2 request body read after its answer is ready.
pub const H2_DRAIN_BYTES: usize = 64 * 1024;
/// The longest an HTTP/2 answer waits for the rest of its request's body.
pub const H2_DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Reads and drops what is left of a request body (nothing when the
/// handler read it all), within [`H2_DRAIN_BYTES`] and [`H2_DRAIN_WAIT`].
async fn read_rest(payload: &Rc<RefCell<Payload>>) {
    let rest = async {
        let mut read = 0;
        while read <= H2_DRAIN_BYTES {
            let next = std::future::poll_fn(|cx| {
                let mut payload = payload.borrow_mut();
                Pin::new(&mut *payload).poll_next(cx)
            })
            .await;
            match next {
                Some(Ok(chunk)) => read += chunk.len(),
                Some(Err(_)) | None => break,
            }
        }
    };
    let _ = actix_web::rt::time::timeout(H2_DRAIN_WAIT, rest).await;
}

/// A response body that keeps the request's payload alive until it is sent,
/// so the server sees the body unfinished (when it is) and closes the
/// connection after the answer instead of reading on.
struct Holding {
    body: BoxBody,
    _payload: Option<Rc<RefCell<Payload>>>,
    _busy: Option<Busy>,
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

fn close(res: &mut actix_web::HttpResponse) {
    res.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
}

/// Refuses requests on connections over the per-address cap, and bounds the
/// time a request's body may take (408, connection closed).
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let (over_cap, busy) = match req.conn_data::<ConnectionSlot>() {
        Some(slot) => (slot.over_cap, Some(slot.busy())),
        None => (None, None),
    };
    if let Some(cap) = over_cap {
        let mut e = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TemporarilyUnavailable,
            format!(
                "too many open connections from this address (at most {cap}); close some and retry"
            ),
        );
        e.retry_after = Some(1);
        let mut res = e.into_response();
        close(&mut res);
        return Ok(req.into_response(res));
    }
    let http2 = req.version() == Version::HTTP_2;
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        // No body to wait for.
        let res = next.call(req).await?.map_into_boxed_body();
        return Ok(res.map_body(|_, body| {
            BoxBody::new(Holding {
                body,
                _payload: None,
                _busy: busy,
            })
        }));
    }
    let seconds = req
        .app_data::<web::Data<AppState>>()
        .map_or(10, |s| s.config.server.body_read_timeout.as_secs());
    let payload = Rc::new(RefCell::new(payload));
    let fired = Rc::new(Cell::new(false));
    let stream = Deadline {
        payload: payload.clone(),
        timer: Box::pin(sleep(Duration::from_secs(seconds))),
        fired: fired.clone(),
        done: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(stream),
    });
    let mut res = next.call(req).await?.map_into_boxed_body();
    if http2 && !fired.get() {
        read_rest(&payload).await;
    }
    if fired.get() {
        let e = OAuthError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidRequest,
            format!("the request body did not arrive within {seconds} s"),
        );
        let mut answer = e.into_response();
        close(&mut answer);
        res = res.into_response(answer);
    }
    Ok(res.map_body(|_, body| {
        BoxBody::new(Holding {
            body,
            _payload: Some(payload),
            _busy: busy,
        })
    }))
}
