//! What the clients of a fault test sent and heard, and the checks that follow the fault: every
//! acknowledged check-in is still there, and retrying every request with its key and body
//! answers each with one check-in, the acknowledged ones with the check-in they were told of.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

/// Far beyond anything the server should take to answer: reaching it means a hang.
pub const HANG: Duration = Duration::from_secs(10);

const VENUE_AT: (f64, f64) = (48.8530, 2.3499);

/// Someone the clients check in as.
pub struct Person {
    pub token: String,
}

/// One check-in request and what came of it.
pub struct Attempt {
    pub key: String,
    /// Index of the person in the test's list.
    pub person: usize,
    pub body: Value,
    pub started: Instant,
    /// How long until the answer (or the failure).
    pub took: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 201, with the check-in's id (`None` if the connection broke during the body).
    Created(Option<String>),
    /// Any other answer: its status, the error envelope's `code` (`None` unless the body is a
    /// well-formed envelope naming this request's `X-Request-Id`) and `Retry-After`.
    Refused {
        status: StatusCode,
        code: Option<String>,
        retry_after: Option<String>,
    },
    /// No answer at all: the connection failed, or nothing came within [`HANG`].
    NoAnswer(String),
}

impl Outcome {
    pub fn acknowledged(&self) -> bool {
        matches!(self, Outcome::Created(_))
    }

    /// A 503 in the documented shape: envelope `unavailable` and a `Retry-After`.
    pub fn is_documented_503(&self) -> bool {
        matches!(self, Outcome::Refused { status, code, retry_after }
            if *status == StatusCode::SERVICE_UNAVAILABLE
                && code.as_deref() == Some("unavailable")
                && retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok()))
    }
}

/// A client that gives up on a request after [`HANG`].
pub fn client() -> Client {
    Client::builder().timeout(HANG).build().unwrap()
}

pub async fn register(client: &Client, address: &str, username: &str) -> Person {
    let response = client
        .post(format!("{address}/v1/auth/register"))
        .json(
            &json!({"username": username, "email": format!("{username}@example.com"),
            "password": "correct horse battery staple"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "registering {username}"
    );
    let body: Value = response.json().await.unwrap();
    Person {
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// A café for everyone to check in at; its id.
pub async fn add_venue(client: &Client, address: &str, who: &Person) -> String {
    let response = client
        .post(format!("{address}/v1/venues"))
        .bearer_auth(&who.token)
        .json(
            &json!({"name": "Café des Fautes", "category_id": "coffee", "allow_duplicate": true,
            "location": {"lat": VENUE_AT.0, "lng": VENUE_AT.1}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `n`th check-in of a test: at the venue, each with its own shout.
pub fn checkin_body(venue: &str, n: usize) -> Value {
    json!({"venue_id": venue, "location": {"lat": VENUE_AT.0, "lng": VENUE_AT.1, "accuracy_m": 15},
        "shout": format!("check-in {n}"), "visibility": "friends"})
}

/// Sends one check-in with its key: what came of it, and whether a 201 was a replay.
pub async fn check_in(
    client: &Client,
    address: &str,
    who: &Person,
    key: &str,
    body: &Value,
) -> (Outcome, bool) {
    let sent = client
        .post(format!("{address}/v1/checkins"))
        .bearer_auth(&who.token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return (Outcome::NoAnswer(error.to_string()), false),
    };
    if response.status() != StatusCode::CREATED {
        return (refusal(response).await, false);
    }
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let id = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|body| body["checkin"]["id"].as_str().map(str::to_owned));
    (Outcome::Created(id), replayed)
}

/// Reads an error answer: its status, envelope code and `Retry-After`.
pub async fn refusal(response: Response) -> Outcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Option<Value> = response.json().await.ok();
    let code = body.and_then(|body| {
        let error = &body["error"];
        let well_formed = request_id.is_some()
            && error["request_id"].as_str() == request_id.as_deref()
            && error["message"].as_str().is_some_and(|m| !m.is_empty())
            && error["details"].is_array();
        well_formed
            .then(|| error["code"].as_str().map(str::to_owned))
            .flatten()
    });
    Outcome::Refused {
        status,
        code,
        retry_after,
    }
}

/// After the fault: every acknowledged check-in reads back, retrying every attempt (acknowledged
/// or not) with its key and body answers 201 (an acknowledged one as a replay of the check-in
/// it was told of), and each person has exactly the check-ins their keys answered, once each.
/// Returns how many unacknowledged attempts had been kept all the same (their retry was a
/// replay), for the test's report.
pub async fn nothing_lost_nothing_doubled(
    client: &Client,
    address: &str,
    people: &[Person],
    attempts: &[Attempt],
) -> usize {
    for attempt in attempts {
        if let Outcome::Created(Some(id)) = &attempt.outcome {
            let response = client
                .get(format!("{address}/v1/checkins/{id}"))
                .bearer_auth(&people[attempt.person].token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "acknowledged check-in {id} (key {}) was lost",
                attempt.key
            );
        }
    }
    let retried: Vec<(usize, String, bool)> = futures_util::stream::iter(attempts)
        .map(|attempt| async move {
            let who = &people[attempt.person];
            let (outcome, replayed) =
                check_in(client, address, who, &attempt.key, &attempt.body).await;
            let Outcome::Created(Some(id)) = outcome else {
                panic!("retrying key {} answered {outcome:?}", attempt.key);
            };
            if attempt.outcome.acknowledged() {
                assert!(replayed, "key {} created a second check-in", attempt.key);
            }
            if let Outcome::Created(Some(first)) = &attempt.outcome {
                assert_eq!(&id, first, "key {} answered another check-in", attempt.key);
            }
            (attempt.person, id, replayed)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (index, who) in people.iter().enumerate() {
        let mut expected: Vec<&str> = retried
            .iter()
            .filter(|(person, ..)| *person == index)
            .map(|(_, id, _)| id.as_str())
            .collect();
        expected.sort_unstable();
        let mut listed = all_checkins(client, address, who).await;
        listed.sort_unstable();
        assert_eq!(
            listed, expected,
            "person {index}: their check-ins are not exactly one per key"
        );
    }
    let acknowledged = attempts.iter().filter(|a| a.outcome.acknowledged()).count();
    let replayed = retried.iter().filter(|(.., replayed)| *replayed).count();
    replayed - acknowledged
}

/// The ids of all of a person's check-ins, every page.
async fn all_checkins(client: &Client, address: &str, who: &Person) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_owned())];
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let page: Value = client
            .get(format!("{address}/v1/me/checkins"))
            .bearer_auth(&who.token)
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// How many attempts came out each way, for the test's own report.
pub fn tally<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for outcome in outcomes {
        let kind = match outcome {
            Outcome::Created(_) => "201".to_owned(),
            Outcome::Refused { status, .. } => status.as_u16().to_string(),
            Outcome::NoAnswer(_) => "no answer".to_owned(),
        };
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}
