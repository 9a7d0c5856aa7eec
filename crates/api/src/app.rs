//! The application: shared state, the actix app, and the server that runs it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use vicinity_store::Store;
use vicinity_store::access_log::Recorder;
use vicinity_store::fast_checkin::Writer;
use vicinity_store::maintenance::prune;

use crate::auth::access::AccessTokens;
use crate::auth::keys::SigningKeys;
use crate::auth::password::Passwords;
use crate::auth::throttle::{FailureThrottle, LoginThrottle, PerUser};
use crate::config::ApiConfig;
use crate::cursor::Cursors;
use crate::error::ApiError;
use crate::json::BodyLimit;
use crate::limits::request_limits;
use crate::openapi::openapi_yaml;
use crate::request::request_context;
use crate::routes;

/// How long a client has, once connected, to send a request's head.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle keep-alive connection stays open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// What every handler may use; one instance shared by all workers.
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) config: ApiConfig,
    pub(crate) tokens: AccessTokens,
    pub(crate) throttle: LoginThrottle,
    /// Failed client authentications at the token endpoints, per client.
    pub(crate) client_failures: FailureThrottle,
    pub(crate) passwords: Passwords,
    pub(crate) openapi_yaml: String,
    pub(crate) cursors: Cursors,
    pub(crate) location_updates: PerUser,
    pub(crate) nearby_queries: PerUser,
    /// Commits access-log views in batches.
    pub(crate) recorder: Recorder,
    /// Writes check-ins decided by the read model, many per statement.
    pub(crate) checkin_writer: Writer,
    /// Becomes `true` when the server is about to stop.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
    /// Queues webhook deliveries.
    pub(crate) webhooks: crate::webhooks::Webhooks,
    pub(crate) metrics: crate::metrics::Metrics,
    /// Requests allowed per login and per client address.
    pub(crate) limits: crate::limits::RequestLimits,
}

/// A bound, ready-to-run server. Tests build it exactly as the binary does, on port 0.
pub struct Application {
    server: Server,
    address: SocketAddr,
    recorder: Recorder,
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Ends the long-lived responses (event streams) so that a graceful stop does not wait for
/// them: call it before stopping the server. Clients reconnect, to another instance.
#[derive(Clone)]
pub struct StreamCloser(Arc<tokio::sync::watch::Sender<bool>>);

impl StreamCloser {
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such resource"))
}

/// Deletes expired positions and stale records every `maintenance_interval` until the server
/// begins to stop. Every instance runs it; the deletions are idempotent.
fn spawn_maintenance(
    store: Store,
    config: &ApiConfig,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let (period, retention) = (config.maintenance_interval, config.retention);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period.max(std::time::Duration::from_secs(1)));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = closing.wait_for(|closing| *closing) => return,
            }
            let now = chrono::Utc::now();
            store.hot().prune(now);
            match store.run(move |conn| prune(conn, retention, now)).await {
                Ok(pruned) => tracing::debug!(?pruned, "maintenance pass"),
                Err(error) => tracing::warn!(%error, "maintenance pass failed"),
            }
        }
    });
}

impl Application {
    pub fn build(mut config: ApiConfig, store: Store, keys: SigningKeys) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&config.bind)?;
        let address = listener.local_addr()?;
        // The default issuer, `http://BIND`, names the port actually bound (port 0 picks one).
        if config.issuer == format!("http://{}", config.bind) {
            config.issuer = format!("http://{address}");
        }
        let passwords = Passwords::new()
            .map_err(|_| std::io::Error::other("cannot prepare the password hasher"))?;
        store
            .start_read_model()
            .map_err(|e| std::io::Error::other(format!("cannot load the read model: {e}")))?;
        let recorder = Recorder::start(store.clone());
        let checkin_writer = Writer::start(store.clone());
        let store_for_maintenance = store.clone();
        let webhooks = crate::webhooks::Webhooks::new(store.clone());
        let (closing, closing_receiver) = tokio::sync::watch::channel(false);
        let closing = Arc::new(closing);
        let cursors = Cursors::new(keys.derive_secret("pagination cursors"));
        let tokens = AccessTokens::new(
            keys,
            config.issuer.clone(),
            config.audience.clone(),
            config.access_token_ttl,
        );
        let state = web::Data::new(AppState {
            store,
            throttle: LoginThrottle::new(&config.login_throttle),
            client_failures: FailureThrottle::new(10, std::time::Duration::from_secs(60)),
            config: config.clone(),
            tokens,
            passwords,
            openapi_yaml: openapi_yaml(),
            cursors,
            location_updates: PerUser::new(config.location_update_limit),
            nearby_queries: PerUser::new(config.nearby_limit),
            recorder: recorder.clone(),
            checkin_writer,
            closing: closing_receiver,
            webhooks: webhooks.clone(),
            metrics: crate::metrics::Metrics::new()
                .map_err(|e| std::io::Error::other(format!("cannot register the metrics: {e}")))?,
            limits: crate::limits::RequestLimits::new(
                config.request_limit_per_token,
                config.request_limit_per_address,
            ),
        });
        let limit = config.body_limit_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(limit))
                .app_data(BodyLimit(limit))
                .wrap(from_fn(request_limits))
                .wrap(from_fn(request_context))
                .configure(routes::configure)
                .default_service(web::to(unknown_route))
        })
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        // Slow and idle clients cost a connection each and nothing more: a request head must
        // arrive within 5 s of connecting, an idle keep-alive connection closes after 5 s, and
        // handlers only run once their head is in (tests/api/slow_clients.rs).
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(Duration::from_secs(1))
        // The binary installs its signal handlers before announcing itself, so a SIGTERM
        // right after start-up is a graceful stop too (`Application::handle`).
        .disable_signals();
        if let Some(workers) = config.workers {
            server = server.workers(workers.max(1));
        }
        let server = server.listen(listener)?.run();
        spawn_maintenance(store_for_maintenance, &config, closing.subscribe());
        crate::webhooks::spawn_worker(webhooks, config.webhooks.clone(), closing.subscribe());
        Ok(Self {
            server,
            address,
            recorder,
            closing,
        })
    }

    /// Where the server listens (with the real port when bound to port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Ends open event streams; see [`StreamCloser`].
    pub fn stream_closer(&self) -> StreamCloser {
        StreamCloser(Arc::clone(&self.closing))
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`Application::handle`]; a graceful stop lets in-flight
    /// requests finish first, then commits the access-log views still queued.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Err(error) = self.recorder.flush().await {
            tracing::error!(%error, "access-log views queued at the stop were not recorded");
        }
        served
    }
}
