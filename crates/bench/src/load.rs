//! A closed-loop HTTP load generator: `concurrency` keep-alive connections, each sending its
//! next request as soon as the previous answer has been read, for a fixed time. Both HTTP
//! targets of a comparison are driven by this same client, so its own cost is the same for
//! both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request a connection may send.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub bearer: Option<HeaderValue>,
    pub json: Option<Bytes>,
    /// Send a fresh `Idempotency-Key` each time, as a mobile client does per check-in.
    pub idempotency_key: bool,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            bearer: None,
            json: None,
            idempotency_key: false,
        }
    }

    pub fn bearer(mut self, token: &str) -> Result<Self, String> {
        self.bearer =
            Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?);
        Ok(self)
    }
}

/// What one run measured.
pub struct Outcome {
    /// Latencies of the answers received inside the measured window.
    pub latencies: Vec<Duration>,
    /// Successful answers inside the measured window, per second.
    pub throughput: f64,
    /// Answers by status outside 2xx, inside the measured window.
    pub failures: BTreeMap<u16, u64>,
    /// Answers outside 2xx during the warm-up (not measured, but reported).
    pub warm_up_failures: u64,
    /// The body of the first failure, for the report.
    pub first_failure: Option<String>,
}

/// Drives `calls` (round-robin, each connection starting at its own offset) at `address` for
/// `warm_up` unmeasured and then `measure` measured.
pub async fn run(
    address: SocketAddr,
    calls: Arc<Vec<Call>>,
    concurrency: usize,
    warm_up: Duration,
    measure: Duration,
) -> Result<Outcome, String> {
    if calls.is_empty() {
        return Err("nothing to send".into());
    }
    let start = Instant::now() + warm_up;
    let end = start + measure;
    let keys = Arc::new(AtomicU64::new(rand::random::<u32>().into()));
    let mut tasks = Vec::with_capacity(concurrency);
    for connection in 0..concurrency {
        let calls = Arc::clone(&calls);
        let keys = Arc::clone(&keys);
        tasks.push(tokio::spawn(async move {
            connection_loop(address, &calls, connection, concurrency, &keys, start, end).await
        }));
    }
    let mut outcome = Outcome {
        latencies: Vec::new(),
        throughput: 0.0,
        failures: BTreeMap::new(),
        warm_up_failures: 0,
        first_failure: None,
    };
    let mut succeeded = 0_u64;
    for task in tasks {
        let part = task.await.map_err(|e| e.to_string())??;
        succeeded += part.succeeded;
        outcome.warm_up_failures += part.warm_up_failures;
        outcome.latencies.extend(part.latencies);
        for (status, count) in part.failures {
            *outcome.failures.entry(status).or_default() += count;
        }
        if outcome.first_failure.is_none() {
            outcome.first_failure = part.first_failure;
        }
    }
    outcome.throughput = succeeded as f64 / measure.as_secs_f64();
    Ok(outcome)
}

struct Part {
    succeeded: u64,
    warm_up_failures: u64,
    latencies: Vec<Duration>,
    failures: BTreeMap<u16, u64>,
    first_failure: Option<String>,
}

async fn connection_loop(
    address: SocketAddr,
    calls: &[Call],
    first: usize,
    step: usize,
    keys: &AtomicU64,
    start: Instant,
    end: Instant,
) -> Result<Part, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let host = HeaderValue::from_str(&address.to_string()).map_err(|e| e.to_string())?;
    let json = HeaderValue::from_static("application/json");
    let mut part = Part {
        succeeded: 0,
        warm_up_failures: 0,
        latencies: Vec::new(),
        failures: BTreeMap::new(),
        first_failure: None,
    };
    let mut index = first;
    loop {
        let Some(call) = calls.get(index % calls.len()) else {
            return Err("nothing to send".into());
        };
        index += step;
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header(HOST, host.clone());
        if let Some(bearer) = &call.bearer {
            request = request.header(AUTHORIZATION, bearer.clone());
        }
        if call.json.is_some() {
            request = request.header(CONTENT_TYPE, json.clone());
        }
        if call.idempotency_key {
            let key = keys.fetch_add(1, Ordering::Relaxed);
            request = request.header("Idempotency-Key", format!("bench-{key:016x}"));
        }
        let request = request
            .body(Full::new(call.json.clone().unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let sent = Instant::now();
        if sent >= end {
            return Ok(part);
        }
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{}: {e}", call.path))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let received = Instant::now();
        // Throughput counts the answers that arrive inside the window; latency is kept for
        // every request sent inside it, including the last one, answered after the end.
        if status.is_success() {
            if received >= start && received <= end {
                part.succeeded += 1;
            }
            if sent >= start {
                part.latencies.push(received - sent);
            }
        } else if sent < start {
            part.warm_up_failures += 1;
        } else {
            *part.failures.entry(status.as_u16()).or_default() += 1;
            if part.first_failure.is_none() {
                part.first_failure = Some(format!(
                    "{} {}: {status} {}",
                    call.method,
                    call.path,
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
}

/// The status of one `GET path` on a fresh connection; `None` when there is no answer.
pub async fn get_status(address: SocketAddr, path: &str) -> Option<u16> {
    let stream = TcpStream::connect(address).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header(HOST, address.to_string())
        .body(Full::new(Bytes::new()))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    Some(response.status().as_u16())
}
