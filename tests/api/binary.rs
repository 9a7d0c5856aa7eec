//! The `vicinity` binary as an operator runs it: start-up, restarts, signals, key handling.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use vicinity_store::DatabaseUrl;

use crate::helpers::{Backend, test_database};
use crate::on_both_backends;

on_both_backends!(a_restarted_server_keeps_accounts_and_keys);

const BINARY: &str = env!("CARGO_BIN_EXE_vicinity");

pub(crate) fn vicinity(data_dir: &Path, database: Option<&DatabaseUrl>) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VICINITY_BIND", "127.0.0.1:0")
        .env("VICINITY_DATA_DIR", data_dir)
        .env("VICINITY_WORKERS", "1")
        .env("VICINITY_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(DatabaseUrl::Postgres(url)) = database {
        command.env("DATABASE_URL", url);
    }
    command
}

/// Starts the server and waits for the line that says where it listens.
pub(crate) async fn start(mut command: Command) -> (Child, String) {
    let mut child = command.spawn().unwrap();
    // Its log, unless sent elsewhere, is read and dropped: a full pipe would stop the server
    // at its next log line.
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
        });
    }
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("Vicinity listening on ") {
                return address.to_owned();
            }
        }
        panic!("the server exited without saying where it listens");
    })
    .await
    .expect("the server did not start within 30 s");
    // Keep reading, so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

/// Sends SIGTERM and expects a clean exit.
pub(crate) async fn terminate(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the server did not stop within 15 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit}");
}

async fn a_restarted_server_keeps_accounts_and_keys(backend: Backend) {
    let database = test_database(backend);
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (server, address) = start(vicinity(data_dir.path(), Some(database.url()))).await;
    // Bound to port 0 without a public URL, the issuer is the address actually bound.
    let metadata: Value = client
        .get(format!("{address}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], address.as_str());
    assert_eq!(metadata["token_endpoint"], format!("{address}/oauth/token"));
    terminate(server).await;

    // Tokens are bound to their issuer: a restart on another port keeps them valid only
    // under a fixed public URL.
    let fixed = |data_dir: &std::path::Path| {
        let mut command = vicinity(data_dir, Some(database.url()));
        command.env("VICINITY_PUBLIC_URL", "http://vicinity.test");
        command
    };
    let (server, address) = start(fixed(data_dir.path())).await;
    let registered: Value = client
        .post(format!("{address}/v1/auth/register"))
        .json(&json!({"username": "ada", "email": "ada@example.com", "password": "a long passphrase"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = registered["access_token"].as_str().unwrap().to_owned();
    let refresh = registered["refresh_token"].as_str().unwrap().to_owned();
    terminate(server).await;
    assert!(data_dir.path().join("signing-key.pem").exists());

    let (server, address) = start(fixed(data_dir.path())).await;
    // The access token signed before the restart still verifies: the key was kept.
    let me = client
        .get(format!("{address}/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let refreshed = client
        .post(format!("{address}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    terminate(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish() {
    let data_dir = tempfile::tempdir().unwrap();
    let (server, address) = start(vicinity(data_dir.path(), None)).await;
    let body =
        json!({"username": "ada", "email": "ada@example.com", "password": "a long passphrase"})
            .to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{first_half}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = server.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(second_half.as_bytes()).await.unwrap();

    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "in-flight request was cut off: {response:?}"
    );
    let mut server = server;
    let exit = tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_requires_an_existing_signing_key() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = vicinity(data_dir.path(), None);
    command.env("VICINITY_ENV", "production");
    let output = command.output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("vicinity keygen"), "{stderr}");
    // Refused before anything was written: no key, and no database created or migrated.
    let left: Vec<_> = std::fs::read_dir(data_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let key = data_dir.path().join("signing-key.pem");
    let mut keygen = vicinity(data_dir.path(), None);
    keygen.args(["keygen", "--out"]).arg(&key);
    assert!(keygen.output().await.unwrap().status.success());
    let mut again = vicinity(data_dir.path(), None);
    again.args(["keygen", "--out"]).arg(&key);
    assert!(
        !again.output().await.unwrap().status.success(),
        "keygen must not overwrite a key"
    );

    let mut command = vicinity(data_dir.path(), None);
    command.env("VICINITY_ENV", "production");
    let (server, _) = start(command).await;
    terminate(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_pending_migrations_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut command = vicinity(data_dir.path(), None);
        command.arg("migrate");
        command
    };
    let first = run().output().await.unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.starts_with(&format!("{migrations} migration(s) applied")),
        "{stdout}"
    );
    let second = run().output().await.unwrap();
    assert!(String::from_utf8_lossy(&second.stdout).starts_with("0 migration(s) applied"));
}

/// `vicinity seed`: the venues of one seed, read back as (id, name, lat, lng, category).
fn seeded_venues(data_dir: &Path) -> Vec<(i64, String, f64, f64, String)> {
    use diesel::prelude::*;
    use vicinity_store::schema::venues;
    let path = data_dir.join("vicinity.db");
    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    venues::table
        .select((
            venues::id,
            venues::name,
            venues::lat,
            venues::lng,
            venues::category_id,
        ))
        .order(venues::id)
        .load(&mut conn)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_is_deterministic_idempotent_and_follows_population() {
    let seed = |dir: &Path, seed: &str| {
        let mut command = vicinity(dir, None);
        command.args(["seed", "--venues", "3000", "--seed", seed]);
        command
    };
    let (first, second, other) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let output = seed(first.path(), "7").output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("3000 venues generated with seed 7, 3000 inserted"),
        "{stdout}"
    );
    // Again into the same database: nothing new.
    let output = seed(first.path(), "7").output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("0 inserted (3000 already present)"),
        "{stdout}"
    );
    // The same seed elsewhere gives the same venues; another seed, others.
    for (dir, value) in [(second.path(), "7"), (other.path(), "8")] {
        let output = seed(dir, value).output().await.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let venues = seeded_venues(first.path());
    assert_eq!(venues.len(), 3000);
    assert_eq!(venues, seeded_venues(second.path()));
    assert_ne!(venues, seeded_venues(other.path()));
    // More venues around Shanghai (24.9 M people) than around Lyon (0.5 M), all near a city.
    let near = |lat: f64, lng: f64, km: f64| {
        let centre = vicinity_geo::Point::new(lat, lng).unwrap();
        venues
            .iter()
            .filter(|v| {
                centre.distance_m(vicinity_geo::Point::new(v.2, v.3).unwrap()) < km * 1000.0
            })
            .count()
    };
    assert!(
        near(31.22, 121.46, 60.0) >= 10,
        "Shanghai has {}",
        near(31.22, 121.46, 60.0)
    );
    assert!(near(31.22, 121.46, 60.0) > 5 * near(45.76, 4.83, 60.0));
    let categories: std::collections::HashSet<&str> = venues.iter().map(|v| v.4.as_str()).collect();
    assert!(
        categories.len() > 50,
        "a realistic mix: {}",
        categories.len()
    );
    let residences = [
        "private-home",
        "apartment-building",
        "housing-development",
        "assisted-living",
        "mobile-home-park",
    ];
    assert!(
        !categories.iter().any(|c| residences.contains(c)),
        "homes are never seeded"
    );
}
