//! Live nearby events over server-sent events, in one process and across two instances that
//! share one PostgreSQL database.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vicinity_geo::Point;

use crate::binary::{start, terminate, vicinity};
use crate::helpers::{
    self, Backend, Session, TestApp, befriend, postgres_configured, send, test_database,
};
use crate::on_both_backends;

on_both_backends!(
    the_stream_says_who_came_near_and_who_left_once_each,
    a_stream_ends_when_its_login_is_revoked,
);

fn origin() -> Point {
    Point::new(40.7580, -73.9855).unwrap()
}

/// `who` moves to `at`, which must be accepted.
async fn moved(app: &TestApp, who: &Session, at: Point) {
    assert_eq!(
        helpers::put_location(app, who, at).await.status(),
        StatusCode::OK
    );
}

/// An open event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, who: &Session, radius: u32) -> Events {
        Self::connect(&app.client, &app.address, &who.access_token, radius).await
    }

    async fn connect(client: &reqwest::Client, base: &str, token: &str, radius: u32) -> Events {
        let response = client
            .get(format!("{base}/v1/me/nearby/stream?radius={radius}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// Whether the stream ends within `wait` (events still on their way are skipped).
    async fn ended(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None) | Err(_)) => return true,
            }
        }
    }

    /// The next event's name and data, skipping keep-alive comments; `None` if none arrives in
    /// `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(value).unwrap());
                    }
                }
                if let (Some(name), Some(data)) = (name, data) {
                    return Some((name, data));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.unwrap()?).unwrap());
        }
    }
}

fn unlimited(config: &mut vicinity_api::ApiConfig) {
    config.presence.max_speed_mps = f64::MAX;
}

async fn the_stream_says_who_came_near_and_who_left_once_each(backend: Backend) {
    let app = TestApp::spawn_with(backend, unlimited).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let cyd = app.register("cyd").await;
    befriend(&app, &ada, &bob).await;
    for who in [&ada, &bob] {
        let body = json!({"location_precision": "exact"});
        assert_eq!(
            send(&app, Method::PATCH, "/v1/me", who, Some(body))
                .await
                .status(),
            StatusCode::OK
        );
    }
    moved(&app, &ada, origin()).await;
    let mut events = Events::open(&app, &ada, 1_000).await;
    let wait = Duration::from_secs(5);
    let quiet = Duration::from_millis(700);

    moved(&app, &bob, origin().destination(90.0, 300.0)).await;
    let (name, data) = events.next(wait).await.expect("a nearby event");
    assert_eq!(name, "nearby");
    assert_eq!(data["user"]["username"], "bob");
    assert_eq!(data["distance_m"], 300);
    // Moving about inside, or just outside the radius (hysteresis), says nothing more; nor do
    // strangers.
    moved(&app, &bob, origin().destination(90.0, 500.0)).await;
    moved(&app, &bob, origin().destination(90.0, 1_150.0)).await;
    moved(&app, &cyd, origin().destination(90.0, 100.0)).await;
    assert_eq!(events.next(quiet).await, None);
    // Well beyond: faraway, once.
    moved(&app, &bob, origin().destination(90.0, 5_000.0)).await;
    let (name, data) = events.next(wait).await.expect("a faraway event");
    assert_eq!(name, "faraway");
    assert_eq!(data["user"]["username"], "bob");
    moved(&app, &bob, origin().destination(90.0, 6_000.0)).await;
    assert_eq!(events.next(quiet).await, None);
    // Back, then invisible: nearby, then faraway.
    moved(&app, &bob, origin().destination(0.0, 200.0)).await;
    assert_eq!(events.next(wait).await.expect("nearby again").0, "nearby");
    assert_eq!(
        send(&app, Method::DELETE, "/v1/me/location", &bob, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        events.next(wait).await.expect("faraway on clearing").0,
        "faraway"
    );
}

async fn a_stream_ends_when_its_login_is_revoked(backend: Backend) {
    let app = TestApp::spawn_with(backend, unlimited).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    befriend(&app, &ada, &bob).await;
    moved(&app, &ada, origin()).await;
    let mut events = Events::open(&app, &ada, 1_000).await;
    moved(&app, &bob, origin().destination(90.0, 300.0)).await;
    assert_eq!(
        events.next(Duration::from_secs(5)).await.expect("nearby").0,
        "nearby"
    );
    // Ada signs out on her phone: the stream she left open must not go on telling where Bob
    // is. His next move wakes it, and it ends instead of speaking.
    let revoked = app
        .post_form("/oauth/revoke", &[("token", ada.refresh_token.as_str())])
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    moved(&app, &bob, origin().destination(90.0, 5_000.0)).await;
    assert!(events.ended(Duration::from_secs(5)).await);
}

/// Registers through `base` and returns (user id, access token).
async fn register(client: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let body = json!({"username": name, "email": format!("{name}@example.com"),
        "password": "correct horse battery staple"});
    let response = client
        .post(format!("{base}/v1/auth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn call(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Two `vicinity` server processes on one PostgreSQL database (sharing the signing key, as
/// instances behind a load balancer do): a check-in through one is nearby through the other,
/// and the stream on each hears the changes made through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgres_share_presence_and_events() {
    if !postgres_configured("two_server_processes_on_one_postgres_share_presence_and_events") {
        return;
    }
    let database = test_database(Backend::Postgres);
    let data_dir = tempfile::tempdir().unwrap();
    // One public URL for both, as behind a load balancer: tokens are bound to it.
    let instance = || {
        let mut command = vicinity(data_dir.path(), Some(database.url()));
        command.env("VICINITY_PUBLIC_URL", "http://vicinity.test");
        command
    };
    let (first_process, first) = start(instance()).await;
    let (second_process, second) = start(instance()).await;
    assert_ne!(first, second);
    let client = reqwest::Client::new();
    let (ada_id, ada) = register(&client, &first, "ada").await;
    let (bob_id, bob) = register(&client, &second, "bob").await;
    let body = json!({"user_id": bob_id});
    let response = call(
        &client,
        Method::POST,
        format!("{first}/v1/me/friend-requests"),
        &ada,
        Some(body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let url = format!("{second}/v1/me/friend-requests/{ada_id}/accept");
    assert_eq!(
        call(&client, Method::POST, url, &bob, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let here = json!({"location": {"lat": origin().lat(), "lng": origin().lng()}});
    let response = call(
        &client,
        Method::PUT,
        format!("{second}/v1/me/location"),
        &ada,
        Some(here),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = Events::connect(&client, &second, &ada, 1_000).await;

    // Bob checks in through the first process.
    let venue = origin().destination(180.0, 250.0);
    let body = json!({"name": "Corner Deli", "category_id": "food",
        "location": {"lat": venue.lat(), "lng": venue.lng()}});
    let response = call(
        &client,
        Method::POST,
        format!("{first}/v1/venues"),
        &bob,
        Some(body),
    )
    .await;
    let venue_id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"venue_id": venue_id, "location": {"lat": venue.lat(), "lng": venue.lng()},
        "visibility": "friends"});
    let response = call(
        &client,
        Method::POST,
        format!("{first}/v1/checkins"),
        &bob,
        Some(body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let (name, data) = events
        .next(Duration::from_secs(5))
        .await
        .expect("an event from the other process");
    assert_eq!(name, "nearby");
    assert_eq!(data["user"]["username"], "bob");
    assert_eq!(data["venue"]["id"], venue_id.as_str());
    let nearby: Value = call(
        &client,
        Method::GET,
        format!("{second}/v1/me/nearby"),
        &ada,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(nearby["items"][0]["user"]["username"], "bob");
    // The other way round: clearing through the second is heard on a stream on the first.
    let mut bobs_events = Events::connect(&client, &first, &bob, 1_000).await;
    assert_eq!(
        bobs_events
            .next(Duration::from_secs(5))
            .await
            .expect("Ada is already near")
            .0,
        "nearby"
    );
    let response = call(
        &client,
        Method::DELETE,
        format!("{second}/v1/me/location"),
        &ada,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        bobs_events
            .next(Duration::from_secs(5))
            .await
            .expect("faraway across processes")
            .0,
        "faraway"
    );
    // A graceful stop ends open streams at once instead of waiting for them (`terminate`
    // allows 15 s; the shutdown timeout is 30 s).
    terminate(first_process).await;
    terminate(second_process).await;
    assert!(
        events.ended(Duration::from_secs(5)).await,
        "Ada's stream ended"
    );
    assert!(
        bobs_events.ended(Duration::from_secs(5)).await,
        "Bob's stream ended"
    );
}
