//! Connections and the pool: which backend a URL names, how each is tuned, how work runs.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self as r2d2, ConnectionManager, CustomizeConnection, ManageConnection, Pool};
use diesel::sqlite::SqliteConnection;

use crate::StoreError;
use crate::events;
use crate::hot::Hot;

/// A connection to either backend; every repository function is written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A parsed `DATABASE_URL`: `postgres://…`/`postgresql://…`, or `sqlite://PATH` / a file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path == ":memory:" || path.contains("://") {
            return Err(format!(
                "unsupported database URL `{url}`: use postgres://… or sqlite://PATH (a file; \
                 in-memory databases cannot be shared by a pool)"
            ));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL without credentials (nor query parameters, which may carry a password), for
    /// logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => {
                let url = url.split('?').next().unwrap_or(url);
                match (url.find("://"), url.rfind('@')) {
                    (Some(scheme_end), Some(at)) if at > scheme_end => {
                        format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
                    }
                    _ => url.to_owned(),
                }
            }
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }

    fn connection_string(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        }
    }

    /// Opens a connection to the backend this URL names. Not `DbConnection::establish`: the
    /// derived multi-connection tries each backend in turn, so a PostgreSQL server that refuses
    /// a connection sends the URL on to SQLite as a file name, and the caller learns only
    /// "Invalid connection url for multiconnection", never why PostgreSQL refused.
    fn open(&self) -> diesel::ConnectionResult<DbConnection> {
        match self {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Pg),
            DatabaseUrl::Sqlite(_) => {
                SqliteConnection::establish(&self.connection_string()).map(DbConnection::Sqlite)
            }
        }
    }

    /// A connection outside the pool (migrations, start-up checks), tuned like pooled ones.
    pub(crate) fn establish(&self) -> Result<DbConnection, StoreError> {
        let mut connection = self
            .open()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        tune(&mut connection)?;
        Ok(connection)
    }
}

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered 503 (not at all
    /// while the database cannot be reached: see `checkout`).
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Per-connection settings SQLite needs to behave like a server database: WAL so readers do
/// not block the writer, enforced foreign keys (cascading deletes), and waiting for the write
/// lock instead of failing at once.
#[derive(Debug)]
struct SqliteTuning;

impl CustomizeConnection<Pooled, diesel::r2d2::Error> for SqliteTuning {
    fn on_acquire(&self, conn: &mut Pooled) -> Result<(), diesel::r2d2::Error> {
        tune(&mut conn.conn).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                e.to_string(),
            ))
        })
    }
}

/// How long a pooled connection whose last work succeeded is trusted without a ping.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection, and until when it is trusted to work without a ping.
pub struct Pooled {
    conn: DbConnection,
    trusted_until: Option<Instant>,
    /// Declared after `conn`, so the connection is closed before the census hears of it.
    _counted: Counted,
}

/// The connections a store has open or is opening, on any thread: the pool opens them on its
/// own worker threads, and the change follower on its thread. Exiting the process while one of
/// those threads is inside libpq's TLS code crashes in OpenSSL's exit handler (a segfault in
/// about one run in seven of a short CLI command), so [`Store::close`] waits for the count to
/// reach zero.
#[derive(Debug, Default)]
pub(crate) struct Census {
    open: Mutex<usize>,
    changed: Condvar,
}

impl Census {
    /// Counts one connection until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Counted {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Counted(Arc::clone(self))
    }

    /// Waits until no connection is open or being opened; false if `deadline` came first.
    fn wait_until_empty(&self, deadline: Instant) -> bool {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while *open > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            open = self
                .changed
                .wait_timeout(open, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// One connection counted by a [`Census`].
#[derive(Debug)]
pub(crate) struct Counted(Arc<Census>);

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        *open = open.saturating_sub(1);
        self.0.changed.notify_all();
    }
}

/// What the pool's latest attempt to open a connection said: why it failed, or nothing once
/// one succeeded. r2d2 retries a failed attempt by itself (every half acquire timeout at
/// most) until one succeeds, so a failure recorded here clears soon after the database is
/// back, even with no request asking.
#[derive(Debug, Default)]
struct LastConnect(Mutex<Option<String>>);

impl LastConnect {
    fn record(&self, failure: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    }

    fn failure(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// How often a request waiting for a connection looks whether the database became
/// unreachable meanwhile.
const CHECKOUT_SLICE: Duration = Duration::from_millis(100);

/// A pooled connection, waiting up to the pool's acquire timeout for one, but no longer than
/// it takes to learn that the database cannot be reached: the pool holds no connection at all
/// and its latest attempt to open one failed. Waiting out the timeout then would only delay
/// the same 503 by seconds, holding a blocking thread all along, and during an outage a busy
/// server would pile requests up behind those threads.
fn checkout(
    pool: &Pool<Manager>,
    last_connect: &LastConnect,
) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
    let deadline = Instant::now() + pool.connection_timeout();
    loop {
        if pool.state().connections == 0
            && let Some(why) = last_connect.failure()
        {
            // Asking without waiting still starts another attempt to connect (up to the
            // pool's size), as every waiting request does: once the database is back, the
            // pool finds it as soon as before, not only at its next scheduled retry.
            return pool.get_timeout(Duration::ZERO).map_err(|_| {
                StoreError::Unavailable(format!("cannot connect to the database: {why}"))
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match pool.get_timeout(left.min(CHECKOUT_SLICE)) {
            Ok(conn) => return Ok(conn),
            Err(error) if left <= CHECKOUT_SLICE => return Err(error.into()),
            Err(_) => {}
        }
    }
}

impl Pooled {
    /// Records how the work on this connection ended: trusted for a while after success; an
    /// error (which may be a cut connection) means a ping before the next use.
    fn worked(&mut self, ok: bool) {
        self.trusted_until = ok.then(|| Instant::now() + TRUSTED_FOR);
    }
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// diesel's connection manager, except that a connection whose work succeeded less than
/// [`TRUSTED_FOR`] ago is given out again without a `SELECT 1`. Pinging every checkout cost a
/// round trip per request (a third of PostgreSQL's statements under load). A connection idle
/// for longer (and so possibly cut by a database restart), or whose last work failed, is
/// pinged first, and one that fails the ping is dropped by the pool. Connections are opened
/// to the backend the URL names ([`DatabaseUrl::open`]).
struct Manager {
    url: DatabaseUrl,
    inner: ConnectionManager<DbConnection>,
    census: Arc<Census>,
    last_connect: Arc<LastConnect>,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        // Counted from before libpq is entered, and uncounted if it fails.
        let counted = self.census.enter();
        let opened = self.url.open();
        self.last_connect
            .record(opened.as_ref().err().map(ToString::to_string));
        Ok(Pooled {
            conn: opened.map_err(diesel::r2d2::Error::ConnectionError)?,
            trusted_until: None,
            _counted: counted,
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), Self::Error> {
        if conn
            .trusted_until
            .is_some_and(|until| Instant::now() < until)
        {
            return Ok(());
        }
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        self.inner.has_broken(&mut conn.conn)
    }
}

/// Per-connection SQLite settings. (WAL is a property of the file, set once at start-up:
/// switching to it needs an exclusive lock, which concurrent pool connections would contend.)
fn tune(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Sqlite(sqlite) = conn {
        sqlite.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
    }
    Ok(())
}

/// Puts a SQLite file in WAL mode. The switch needs the file to itself, and SQLite answers
/// "locked" at once, without its busy handler, while another process is creating or migrating
/// the same new file; so the switch is retried for as long as the busy timeout would wait.
fn switch_to_wal(sqlite: &mut SqliteConnection) -> Result<(), StoreError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sqlite.batch_execute("PRAGMA journal_mode = WAL") {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() < deadline && error.to_string().contains("locked") => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The connection pool and what it points at. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    url: DatabaseUrl,
    /// The in-memory read model, shared by the clones.
    hot: Arc<Hot>,
    /// The connections open on any thread, which closing waits for.
    census: Arc<Census>,
    /// Whether the pool could open its latest connection, which checking one out consults.
    last_connect: Arc<LastConnect>,
    /// Counts the clones, so shutdown can wait until no other thread still holds the pool.
    /// Declared last: fields drop in order, so when the last clone drops it, the pool and the
    /// read model (whose follower thread then stops) are already released, and [`LastOut`]
    /// can wait for their connections to close.
    holders: Arc<LastOut>,
}

/// Dropped with the last clone of a store: waits (a few seconds at most) until every
/// connection the store opened on another thread is closed, so that the process may exit
/// whichever way it leaves, an error path included: exiting while a pool thread is inside
/// libpq's TLS code crashes in OpenSSL's exit handler.
struct LastOut(Arc<Census>);

impl Drop for LastOut {
    fn drop(&mut self) {
        if !self
            .0
            .wait_until_empty(Instant::now() + Duration::from_secs(5))
        {
            tracing::warn!("database connections still open after the store was dropped");
        }
    }
}

impl Store {
    /// Opens a pool; fails with a clear message when the database cannot be reached.
    pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Store, StoreError> {
        if let DatabaseUrl::Sqlite(path) = url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // Surface a wrong URL or a stopped server now, not at the first request.
        let mut first = url.establish()?;
        match &mut first {
            DbConnection::Sqlite(sqlite) => switch_to_wal(sqlite)?,
            DbConnection::Pg(pg) => pg.batch_execute("SELECT 1")?,
        }
        drop(first);
        let census = Arc::new(Census::default());
        let last_connect = Arc::new(LastConnect::default());
        let manager = Manager {
            url: url.clone(),
            inner: ConnectionManager::new(url.connection_string()),
            census: Arc::clone(&census),
            last_connect: Arc::clone(&last_connect),
        };
        let pool = Pool::builder()
            .max_size(options.max_connections)
            .min_idle(Some(1))
            .connection_timeout(options.acquire_timeout)
            .connection_customizer(Box::new(SqliteTuning))
            .build_unchecked(manager);
        Ok(Store {
            pool,
            url: url.clone(),
            holders: Arc::new(LastOut(Arc::clone(&census))),
            hot: Arc::new(Hot::default()),
            census,
            last_connect,
        })
    }

    /// The in-memory read model. It answers nothing until [`Store::start_read_model`].
    /// The pool's connections right now: `(open, idle, maximum)`.
    pub fn pool_usage(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    pub fn hot(&self) -> &Arc<Hot> {
        &self.hot
    }

    /// Loads the read model and keeps it current: on PostgreSQL a follower thread (which
    /// lives as long as the model) follows every instance's changes and reloads after any
    /// interruption; on SQLite this process makes every change, so one load suffices.
    pub fn start_read_model(&self) -> Result<(), StoreError> {
        match &self.url {
            DatabaseUrl::Postgres(connection_string) => {
                self.hot.set_through_database(true);
                let weak = Arc::downgrade(&self.hot);
                let connection_string = connection_string.clone();
                let census = Arc::clone(&self.census);
                std::thread::Builder::new()
                    .name("change-follower".into())
                    .spawn(move || crate::events::follow(&connection_string, &weak, &census))
                    .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
                Ok(())
            }
            DatabaseUrl::Sqlite(_) => {
                let mut conn = checkout(&self.pool, &self.last_connect)?;
                self.hot.load(&mut conn)
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Runs blocking database work on the blocking thread pool with a pooled connection.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (pool, last_connect) = (self.pool.clone(), Arc::clone(&self.last_connect));
        let hot = Arc::clone(&self.hot);
        tokio::task::spawn_blocking(move || {
            let mut conn = checkout(&pool, &last_connect)?;
            let outcome = applying_changes(&hot, || work(&mut conn));
            conn.worked(outcome.is_ok());
            outcome
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Closes the pool once every other clone is gone, then waits until every connection the
    /// store opened on another thread (the pool's workers may still be opening one; the change
    /// follower holds its own) is closed, so that the process can exit: exiting while another
    /// thread is inside libpq's TLS code crashes in OpenSSL's exit handler. Returns whether all
    /// of that happened within `patience`.
    pub fn close(self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while Arc::strong_count(&self.holders) > 1 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let census = Arc::clone(&self.census);
        drop(self);
        census.wait_until_empty(deadline)
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }

    /// The same as [`Store::run`] for callers that are not async (CLI commands, tests).
    pub fn run_blocking<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = checkout(&self.pool, &self.last_connect)?;
        let outcome = applying_changes(&self.hot, || work(&mut conn));
        conn.worked(outcome.is_ok());
        outcome
    }
}

/// Runs `work` and applies the changes it announced (and committed) to `hot`.
fn applying_changes<T>(hot: &Hot, work: impl FnOnce() -> T) -> T {
    // Left over from work that panicked: nothing says it committed.
    drop(events::take_pending());
    let outcome = work();
    for (seq, change) in events::take_pending() {
        hot.apply_local(seq, &change);
    }
    outcome
}

/// Runs `work` in one write transaction: committed if it returns `Ok`, rolled back otherwise.
/// Inside another transaction it becomes a savepoint, on both backends.
///
/// SQLite gets `BEGIN IMMEDIATE`, which takes the write lock up front (waiting up to the busy
/// timeout); a deferred transaction that reads and then writes would fail outright when
/// another writer committed in between. Diesel's multi-connection transaction cannot choose
/// the mode, so the outermost SQLite transaction is begun here, through diesel's own
/// transaction manager so that nesting and its bookkeeping stay right.
pub fn transaction<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Changes announced inside are forgotten if it rolls back (see `events::announce`).
    let mark = events::pending_mark();
    let outcome = transaction_inner(conn, work);
    if outcome.is_err() {
        events::roll_back_to(mark);
    }
    outcome
}

fn transaction_inner<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
    let status = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::
        transaction_manager_status_mut(sqlite);
    if status.transaction_depth()?.is_some() {
        return conn.transaction(work);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    let outcome = work(conn);
    let DbConnection::Sqlite(sqlite) = conn else {
        return Err(StoreError::Corrupt(
            "connection changed backend mid-transaction".into(),
        ));
    };
    match outcome {
        Ok(value) => {
            <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(
                sqlite,
            )?;
            Ok(value)
        }
        Err(error) => {
            // A failed ROLLBACK leaves nothing more to undo; the work's error is what matters.
            let _ = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::
                rollback_transaction(sqlite);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/v.db").unwrap(),
            DatabaseUrl::Sqlite("data/v.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("./v.db").unwrap(),
            DatabaseUrl::Sqlite("./v.db".into())
        );
        assert!(DatabaseUrl::parse("sqlite://:memory:").is_err());
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
    }

    #[test]
    fn a_refused_postgres_connection_says_why() {
        // Nothing listens on port 1 of the loopback: refused at once.
        let url = DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/vicinity").unwrap();
        let Err(StoreError::Unavailable(why)) = url.establish() else {
            panic!("a refused connection must be unavailable");
        };
        assert!(
            why.contains("127.0.0.1") && why.contains("refused"),
            "{why}"
        );
        let url = DatabaseUrl::Sqlite("/nonexistent-dir/vicinity.db".into());
        let Err(StoreError::Unavailable(why)) = url.establish() else {
            panic!("an unopenable file must be unavailable");
        };
        assert!(!why.contains("multiconnection"), "{why}");
    }

    #[test]
    fn credentials_never_appear_in_redacted_urls() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/vicinity").unwrap();
        assert_eq!(url.redacted(), "postgres://…@db:5432/vicinity");
        let url = DatabaseUrl::parse("postgres://db/vicinity?user=app&password=s3cret").unwrap();
        assert_eq!(url.redacted(), "postgres://db/vicinity");
    }
}
