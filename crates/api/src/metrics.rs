//! The server's Prometheus metrics (`GET /metrics`, text format 0.0.4): requests and their
//! latency by route pattern and status, the database pool, check-ins, nearby queries, live
//! streams and rate-limited requests. Labels hold route patterns, never paths, so their
//! number stays bounded.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use vicinity_store::Store;

/// Latency buckets in seconds: fine below 10 ms, where nearby answers live.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    pub checkins: IntCounter,
    pub nearby_queries: IntCounter,
    pub live_streams: IntGauge,
    pub rate_limited: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("vicinity".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's arrival to its response",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        let pool_max = IntGauge::new("db_pool_max_connections", "The database pool's size")?;
        let checkins = IntCounter::new("checkins_total", "Check-ins recorded")?;
        let nearby_queries = IntCounter::new("nearby_queries_total", "Nearby queries answered")?;
        let live_streams = IntGauge::new("live_streams", "Open nearby event streams")?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by a request limit"),
            &["limit"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(checkins.clone()))?;
        registry.register(Box::new(nearby_queries.clone()))?;
        registry.register(Box::new(live_streams.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            pool,
            pool_max,
            checkins,
            nearby_queries,
            live_streams,
            rate_limited,
        })
    }

    /// Counts one answered request.
    pub fn observe(&self, method: &str, route: &str, status: &str, seconds: f64) {
        let labels = [method, route, status];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Everything, in the text exposition format, with the pool read now.
    pub fn render(&self, store: &Store) -> Result<String, String> {
        let (open, idle, max) = store.pool_usage();
        self.pool.with_label_values(&["idle"]).set(i64::from(idle));
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::from(open.saturating_sub(idle)));
        self.pool_max.set(i64::from(max));
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .map_err(|e| e.to_string())?;
        String::from_utf8(buffer).map_err(|e| e.to_string())
    }
}

/// Keeps `live_streams` up while a stream is open.
pub struct StreamGauge(IntGauge);

impl StreamGauge {
    pub fn open(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}
