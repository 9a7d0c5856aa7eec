//! Webhooks as an integration sees them: set with a client credentials token, signed
//! deliveries of the check-ins of people who authorized the app, retries with backoff, and no
//! delivery to internal addresses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vicinity_domain::ClientType;

use crate::helpers::{Backend, Session, TestApp, error_code, register_app, send};
use crate::on_both_backends;

on_both_backends!(
    an_app_receives_signed_check_ins_of_the_people_who_authorized_it,
    webhooks_never_reach_internal_addresses,
);

/// What a receiver got: headers (lower-case names) and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A webhook receiver on the loopback address that answers each request with the next of
/// `statuses` (the last one repeating).
async fn receiver(statuses: Vec<u16>) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        let mut answered = 0;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut bytes = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            let (head, body) = loop {
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
                }
                bytes.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&bytes).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        break (head.to_owned(), rest.to_owned());
                    }
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            log.lock().unwrap().push((headers, body));
            let status = statuses[answered.min(statuses.len() - 1)];
            answered += 1;
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (format!("http://{address}/hook"), received)
}

async fn wait_for(received: &Received, count: usize) -> Vec<(Vec<(String, String)>, String)> {
    for _ in 0..200 {
        if received.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received.lock().unwrap().clone()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

/// A client credentials token of `client_id`.
async fn app_token(app: &TestApp, client_id: &str, secret: &str) -> String {
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn put_webhook(app: &TestApp, token: &str, url: &str) -> reqwest::Response {
    app.client
        .put(app.url("/v1/app/webhook"))
        .bearer_auth(token)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap()
}

async fn check_in(app: &TestApp, who: &Session) -> String {
    let venue: Value = send(
        app,
        Method::POST,
        "/v1/venues",
        who,
        Some(
            json!({"name": "Blue Bottle", "category_id": "coffee", "allow_duplicate": true,
            "location": {"lat": 40.758, "lng": -73.9855}}),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    let response = send(
        app,
        Method::POST,
        "/v1/checkins",
        who,
        Some(json!({"venue_id": venue["id"], "visibility": "private",
            "location": {"lat": 40.758, "lng": -73.9855, "accuracy_m": 10}})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["checkin"]["id"].as_str().unwrap().to_owned()
}

/// `who` approves `client_id` for `scope` on the authorization page.
async fn authorize(app: &TestApp, who: &Session, username: &str, client_id: &str, scope: &str) {
    crate::authorization::code_for(app, who, username, client_id, scope).await;
}

async fn an_app_receives_signed_check_ins_of_the_people_who_authorized_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.webhooks.allow_loopback_for_tests = true;
        config.webhooks.retry_base = Duration::from_millis(100);
        config.webhooks.max_attempts = 3;
    })
    .await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let (client_id, secret) = register_app(
        &app,
        ClientType::Confidential,
        &["http://127.0.0.1/callback"],
        "profile checkins:read",
    );
    let secret = secret.unwrap();
    let token = app_token(&app, &client_id, &secret).await;
    let (url, received) = receiver(vec![500, 200, 500]).await;

    // Only an app's own token sets it, to a URL under the rules.
    let response = app
        .client
        .put(app.url("/v1/app/webhook"))
        .bearer_auth(&ada.access_token)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (status, code, _) = error_code(put_webhook(&app, &token, "ftp://x.example/").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let response = put_webhook(&app, &token, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set: Value = response.json().await.unwrap();
    let signing_secret = set["secret"].as_str().unwrap().to_owned();
    assert!(signing_secret.starts_with("whsec_"));
    let shown = app.get_json("/v1/app/webhook", &token).await;
    assert_eq!(shown["url"], url.as_str());
    assert!(shown.get("secret").is_none());

    // Bob never authorized the app: nothing for it. Ada did: her check-in is delivered, the
    // first attempt fails (500), the retry succeeds.
    check_in(&app, &bob).await;
    authorize(&app, &ada, "ada", &client_id, "profile checkins:read").await;
    let checkin = check_in(&app, &ada).await;
    let got = wait_for(&received, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let (headers, body) = &got[1];
    assert_eq!(header(headers, "vicinity-event"), "checkin.created");
    assert_eq!(
        header(headers, "vicinity-delivery"),
        header(&got[0].0, "vicinity-delivery")
    );
    let signed = header(headers, "vicinity-signature");
    let timestamp: i64 = signed
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert_eq!(
        signed,
        vicinity_domain::webhook::signature(&signing_secret, timestamp, body.as_bytes())
    );
    let delivered: Value = serde_json::from_str(body).unwrap();
    assert_eq!(delivered["event"], "checkin.created");
    assert_eq!(delivered["data"]["checkin"]["id"], checkin.as_str());
    assert_eq!(delivered["data"]["checkin"]["visibility"], "private");
    assert!(!body.contains("nearby_friends"), "{body}");
    // Without `location:read`, not the device's position either.
    assert!(
        delivered["data"]["checkin"].get("location").is_none(),
        "{body}"
    );
    assert_eq!(delivered["data"]["checkin"]["venue"]["name"], "Blue Bottle");
    let log = app.get_json("/v1/app/webhook/deliveries", &token).await;
    assert_eq!(log["items"][0]["status"], "delivered", "{log}");
    assert_eq!(log["items"][0]["attempts"], 2);
    assert_eq!(log["items"][0]["id"], header(headers, "vicinity-delivery"));

    // A receiver that keeps failing: three attempts, then given up.
    check_in(&app, &ada).await;
    let got = wait_for(&received, 5).await;
    assert_eq!(got.len(), 5, "{got:?}");
    let mut log = Value::Null;
    for _ in 0..100 {
        log = app.get_json("/v1/app/webhook/deliveries", &token).await;
        if log["items"][0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log["items"][0]["status"], "failed", "{log}");
    assert_eq!(log["items"][0]["attempts"], 3);
    assert_eq!(log["items"][0]["last_error"], "the receiver answered 500");

    // Withdrawn: no more deliveries.
    let response = app
        .client
        .delete(app.url(&format!("/v1/me/apps/{client_id}")))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    check_in(&app, &ada).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(received.lock().unwrap().len(), 5);

    let response = app
        .client
        .delete(app.url("/v1/app/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1/app/webhook", &token).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn webhooks_never_reach_internal_addresses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, secret) = register_app(
        &app,
        ClientType::Confidential,
        &["http://127.0.0.1/callback"],
        "checkins:read",
    );
    let token = app_token(&app, &client_id, &secret.unwrap()).await;
    for url in [
        "http://hooks.trail.example/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://intranet/hook",
    ] {
        let (status, code, _) = error_code(put_webhook(&app, &token, url).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{url}"
        );
    }

    // A public-looking name that resolves to an internal address (here `localhost`, as DNS
    // rebinding would arrange) is refused at delivery: the receiver hears nothing.
    let (url, received) = receiver(vec![200]).await;
    let rebound = url.replace("http://127.0.0.1", "https://localhost");
    let id = vicinity_domain::ClientId::from_trusted(client_id.clone());
    app.store()
        .run_blocking(move |conn| {
            let url = vicinity_domain::webhook::WebhookUrl::from_trusted(&rebound).unwrap();
            vicinity_store::webhooks::set(conn, &id, &url, "whsec_test", chrono::Utc::now())
        })
        .unwrap();
    authorize(&app, &ada, "ada", &client_id, "checkins:read").await;
    check_in(&app, &ada).await;
    let mut log = Value::Null;
    for _ in 0..100 {
        log = app.get_json("/v1/app/webhook/deliveries", &token).await;
        if log["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = log["items"][0]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("internal address"), "{log}");
    assert!(received.lock().unwrap().is_empty());
}
