//! The ceiling server: what any Rust receiver must at least do for a GitHub delivery, and no
//! more. hyper (HTTP/1.1, keep-alive) reads the whole body, checks `X-Hub-Signature-256` in
//! constant time and answers `202`; it parses nothing and stores nothing. hookbridge's
//! requests/s are compared with it in the same run, on the same machine and load.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::sign::verify_github;

/// Serves `listener` until the task is dropped: `GET /healthz` answers `200`, any `POST`
/// answers `202` when its signature is valid under `secret` and `401` otherwise.
pub async fn serve(listener: TcpListener, secret: Arc<[u8]>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let secret = secret.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, secret.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    secret: Arc<[u8]>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/healthz" {
        return Ok(answer(StatusCode::OK, "ok\n"));
    }
    if req.method() != Method::POST {
        return Ok(answer(StatusCode::METHOD_NOT_ALLOWED, ""));
    }
    let signature = req.headers().get("x-hub-signature-256").cloned();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST, "")),
    };
    match signature {
        Some(sig) if verify_github(&secret, &body, sig.as_bytes()) => {
            Ok(answer(StatusCode::ACCEPTED, "{\"status\":\"accepted\"}"))
        }
        _ => Ok(answer(StatusCode::UNAUTHORIZED, "")),
    }
}

fn answer(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
