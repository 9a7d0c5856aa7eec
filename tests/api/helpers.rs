//! Spawning the real application for a test, on a fresh database of either backend, and the
//! small HTTP vocabulary the tests share.

use std::time::Duration;

use actix_web::dev::ServerHandle;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use vicinity_api::{ApiConfig, Application, SigningKeys};
use vicinity_store::testing::TestDatabase;
use vicinity_store::{DatabaseUrl, PoolOptions, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named scenario `async fn name(backend: Backend)`, a module with one
/// test per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_configured(stringify!($name)) {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}

/// Whether PostgreSQL tests can run; says so on stderr (past the harness's capture) if not.
pub fn postgres_configured(test: &str) -> bool {
    let configured = std::env::var_os(vicinity_store::testing::POSTGRES_URL_VAR).is_some();
    if !configured {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED on PostgreSQL: {test} (set {} to run it there)",
            vicinity_store::testing::POSTGRES_URL_VAR
        );
    }
    configured
}

pub fn test_database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres("test")
            .unwrap_or_else(|| panic!("PostgreSQL requested but not configured")),
    }
}

/// A running application with its own database, torn down when dropped.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub config: ApiConfig,
    /// The private key the server signs with, so tests can forge tokens it would accept.
    pub key_pem: String,
    /// The id of that key, as access tokens name it.
    pub kid: String,
    /// The key file, for rotating it under the running server.
    pub key_path: std::path::PathBuf,
    handle: ServerHandle,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    store: Option<Store>,
    _key_dir: tempfile::TempDir,
    // Dropped last: the server must not outlive its database.
    _database: TestDatabase,
}

/// A signed-in user as the tests see them.
pub struct Session {
    pub user_id: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut ApiConfig)) -> TestApp {
        let database = test_database(backend);
        Self::spawn_on(database, adjust).await
    }

    pub async fn spawn_on(database: TestDatabase, adjust: impl FnOnce(&mut ApiConfig)) -> TestApp {
        let url: DatabaseUrl = database.url().clone();
        let key_dir = tempfile::tempdir().unwrap();
        let key_path = key_dir.path().join("signing-key.pem");
        let (keys, _) = SigningKeys::load_or_create(&key_path, true).unwrap();
        let key_pem = std::fs::read_to_string(&key_path).unwrap();
        let kid = keys.kid().to_owned();
        let mut config = ApiConfig {
            bind: "127.0.0.1:0".into(),
            workers: Some(1),
            issuer: "http://vicinity.test".into(),
            shutdown_timeout: Duration::from_secs(1),
            ..ApiConfig::default()
        };
        adjust(&mut config);
        let store = tokio::task::spawn_blocking(move || {
            let store = Store::connect(&url, &PoolOptions::default()).unwrap();
            store.migrate().unwrap();
            store
        })
        .await
        .unwrap();
        let app = Application::build(config.clone(), store.clone(), keys).unwrap();
        // As a load balancer would (/readyz), wait for the read model to load.
        let loaded_by = std::time::Instant::now() + Duration::from_secs(20);
        while !store.hot().is_ready() {
            assert!(
                std::time::Instant::now() < loaded_by,
                "the read model never loaded"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let address = format!("http://{}", app.address());
        let handle = app.handle();
        let server = tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            config,
            key_pem,
            kid,
            key_path,
            handle,
            server: Some(server),
            store: Some(store),
            _key_dir: key_dir,
            _database: database,
        }
    }

    /// Takes the database away under the running server (PostgreSQL only).
    pub fn lose_database(&self) {
        assert!(
            self._database.drop_now(),
            "only a PostgreSQL database can be taken away"
        );
    }

    /// The server's own store, for arranging what no public route can (registering apps).
    pub fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// An authenticated GET whose answer is JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token).await.json().await.unwrap()
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/v1/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// An unauthenticated GET whose answer is JSON.
    pub async fn get_public_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(params)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, username: &str) -> Session {
        let password = "correct horse battery staple".to_owned();
        let response = self
            .post_json(
                "/v1/auth/register",
                &json!({"username": username, "email": format!("{username}@example.com"),
                    "password": password}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {username}"
        );
        let body: Value = response.json().await.unwrap();
        Session {
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            password,
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }
}

impl Drop for TestApp {
    /// Stops the server and closes its connections before the database is dropped, as the
    /// binary does at exit (no thread may still hold a PostgreSQL TLS connection then).
    fn drop(&mut self) {
        let (handle, server, store) = (self.handle.clone(), self.server.take(), self.store.take());
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                handle.stop(false).await;
                if let Some(server) = server {
                    let _ = server.await;
                }
            });
        });
        if let Some(store) = store {
            store.close(Duration::from_secs(5));
        }
    }
}

/// Signs `claims` with the server's own key, as header `typ` and key id `kid` say.
pub fn sign_with_kid(app: &TestApp, claims: &Value, typ: &str, kid: Option<&str>) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some(typ.into());
    header.kid = kid.map(str::to_owned);
    let key = jsonwebtoken::EncodingKey::from_ed_pem(app.key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The claims of a JWT, read without verifying it (to inspect or forge variants).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The error envelope's `code`, asserting the envelope's shape on the way.
pub async fn error_code(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("every response carries X-Request-Id");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["request_id"], request_id.as_str(), "envelope: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "envelope: {body}"
    );
    assert!(error["details"].is_array(), "envelope: {body}");
    (status, error["code"].as_str().unwrap().to_owned(), body)
}

/// The `field` of each detail in an error envelope, in order.
pub fn error_fields(body: &Value) -> Vec<&str> {
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect()
}

/// A request as `who`, with an optional JSON body.
pub async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    who: &Session,
    body: Option<Value>,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&who.access_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `a` asks `b`, and `b` accepts.
pub async fn befriend(app: &TestApp, a: &Session, b: &Session) {
    let body = json!({"user_id": b.user_id});
    let response = send(
        app,
        reqwest::Method::POST,
        "/v1/me/friend-requests",
        a,
        Some(body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let path = format!("/v1/me/friend-requests/{}/accept", a.user_id);
    let response = send(app, reqwest::Method::POST, &path, b, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// `who` shares a position (accuracy 10 m).
pub async fn put_location(app: &TestApp, who: &Session, at: vicinity_geo::Point) -> Response {
    let body = json!({"location": {"lat": at.lat(), "lng": at.lng(), "accuracy_m": 10}});
    send(
        app,
        reqwest::Method::PUT,
        "/v1/me/location",
        who,
        Some(body),
    )
    .await
}

/// Registers a third-party app as `vicinity admin create-client` would: its client id, and its
/// secret if it is confidential.
pub fn register_app(
    app: &TestApp,
    client_type: vicinity_domain::ClientType,
    redirect_uris: &[&str],
    scopes: &str,
) -> (String, Option<String>) {
    let redirect_uris: Vec<String> = redirect_uris.iter().map(|u| (*u).to_owned()).collect();
    let new = vicinity_domain::NewClient::parse("Trail Log", client_type, &redirect_uris, scopes)
        .unwrap();
    let (client, secret) = app
        .store()
        .run_blocking(move |conn| vicinity_store::clients::create(conn, &new, chrono::Utc::now()))
        .unwrap();
    (
        client.id.as_str().to_owned(),
        secret.map(|s| s.expose().to_owned()),
    )
}

/// A confidential app registered with `scopes`, and its own client-credentials token (an
/// operator's tool, when `scopes` holds `admin`).
pub async fn client_credentials_token(app: &TestApp, scopes: &str) -> String {
    let (id, secret) = register_app(app, vicinity_domain::ClientType::Confidential, &[], scopes);
    token_of_client(app, &id, secret.as_deref().unwrap_or_default(), None).await
}

/// A confidential app's own client-credentials token, for `scope` (default: all it holds).
pub async fn token_of_client(app: &TestApp, id: &str, secret: &str, scope: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend(scope.map(|scope| ("scope", scope)));
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Adds a coffee place at `(lat, lng)` as `who`, skipping the duplicate check; its id.
pub async fn add_venue(app: &TestApp, who: &Session, name: &str, (lat, lng): (f64, f64)) -> String {
    let body = json!({"name": name, "category_id": "coffee", "allow_duplicate": true,
        "location": {"lat": lat, "lng": lng}});
    let response = send(app, reqwest::Method::POST, "/v1/venues", who, Some(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED, "adding {name}");
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}
