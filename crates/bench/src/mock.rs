//! The mock API service a sync rule calls: it timestamps every request on arrival and
//! answers `200` at once.
//!
//! The rule's body template carries the delivery id (`{"delivery": "{{ event.delivery_id }}"}`)
//! and the load generator's delivery ids carry their send time, so the time from a
//! delivery's send to the rule's API call arriving here is read off each request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::loadgen::unix_nanos;

/// What arrived, by delivery id.
#[derive(Debug, Default)]
pub struct Arrivals {
    /// First arrival of each delivery id, in nanoseconds since the Unix epoch.
    pub first: HashMap<String, i128>,
    /// Requests that repeated an id already seen (retries).
    pub repeats: u64,
    /// Requests whose body named no delivery.
    pub unreadable: u64,
}

/// A running mock service.
#[derive(Debug)]
pub struct Mock {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Arrivals>>,
    task: JoinHandle<()>,
}

impl Mock {
    /// Starts the mock on an ephemeral port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let arrivals = Arc::new(Mutex::new(Arrivals::default()));
        let shared = arrivals.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let arrivals = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| record(req, arrivals.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            arrivals,
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` on the arrivals so far.
    pub fn with_arrivals<T>(&self, f: impl FnOnce(&Arrivals) -> T) -> T {
        f(&self.arrivals.lock().expect("arrivals lock"))
    }

    /// Forgets the arrivals so far.
    pub fn reset(&self) {
        *self.arrivals.lock().expect("arrivals lock") = Arrivals::default();
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(serde::Deserialize)]
struct Call {
    delivery: String,
}

async fn record(
    req: Request<Incoming>,
    arrivals: Arc<Mutex<Arrivals>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let at = unix_nanos();
    let body = req.into_body().collect().await.map(|c| c.to_bytes());
    {
        let mut a = arrivals.lock().expect("arrivals lock");
        match body
            .ok()
            .and_then(|b| serde_json::from_slice::<Call>(&b).ok())
        {
            Some(call) => match a.first.entry(call.delivery) {
                std::collections::hash_map::Entry::Occupied(_) => a.repeats += 1,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(at);
                }
            },
            None => a.unreadable += 1,
        }
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}
