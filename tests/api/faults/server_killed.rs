//! `kill -9` in the middle of a burst of check-ins: the server restarted on the same database
//! has every check-in it acknowledged, and clients retrying every request with its
//! `Idempotency-Key` get one check-in per key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;

use super::ledger::{
    Attempt, HANG, Outcome, Person, add_venue, check_in, checkin_body, client,
    nothing_lost_nothing_doubled, register, tally,
};
use crate::binary::{start, terminate, vicinity};
use crate::helpers::{Backend, test_database};
use crate::on_both_backends;

on_both_backends!(a_server_killed_mid_burst_keeps_every_acknowledged_check_in_once);

/// Clients sending check-ins at once, each one after another.
const CLIENTS: usize = 16;
/// The people they check in as (two clients each: a person's check-ins also race).
const PEOPLE: usize = 8;
/// Check-ins acknowledged before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 60;

async fn a_server_killed_mid_burst_keeps_every_acknowledged_check_in_once(backend: Backend) {
    let database = test_database(backend);
    let data_dir = tempfile::tempdir().unwrap();
    // A fixed public URL keeps the access tokens valid across the restart (they name it).
    let server_command = || {
        let mut command = vicinity(data_dir.path(), Some(database.url()));
        command.env("VICINITY_PUBLIC_URL", "http://vicinity.test");
        command
    };
    let (server, address) = start(server_command()).await;
    let client = client();
    let mut people = Vec::new();
    for n in 0..PEOPLE {
        people.push(register(&client, &address, &format!("walker{n}")).await);
    }
    let venue = add_venue(&client, &address, &people[0]).await;
    let people = Arc::new(people);

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (client, address, people, venue, acknowledged) = (
                client.clone(),
                address.clone(),
                Arc::clone(&people),
                venue.clone(),
                Arc::clone(&acknowledged),
            );
            tokio::spawn(async move {
                send_until_cut_off(&client, &address, &people, &venue, n, &acknowledged).await
            })
        })
        .collect();
    tokio::time::timeout(HANG * 3, async {
        while acknowledged.load(Ordering::SeqCst) < ACKNOWLEDGED_BEFORE_KILL {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the burst never got going");
    let killed_at = Instant::now();
    let mut server = server;
    server.kill().await.unwrap();
    let mut attempts = Vec::new();
    for sender in clients {
        attempts.extend(
            tokio::time::timeout(HANG * 2, sender)
                .await
                .expect("a client hung after the kill")
                .unwrap(),
        );
    }

    // Not vacuous: check-ins were acknowledged before the kill, and requests sent before it
    // were cut off by it.
    let summary = tally(attempts.iter().map(|a| &a.outcome));
    eprintln!("{backend:?}: kill -9 in a burst of check-ins: {summary:?}");
    let created = attempts.iter().filter(|a| a.outcome.acknowledged()).count();
    assert!(created >= ACKNOWLEDGED_BEFORE_KILL, "{summary:?}");
    let cut_off = attempts
        .iter()
        .filter(|a| a.started < killed_at && matches!(a.outcome, Outcome::NoAnswer(_)))
        .count();
    assert!(cut_off > 0, "the kill cut off no request: {summary:?}");
    // Before the kill, every answer was a 201 or, should the burst overwhelm the server, the
    // documented 503; and no request hung.
    for attempt in &attempts {
        assert!(
            !matches!(attempt.outcome, Outcome::Refused { .. })
                || attempt.outcome.is_documented_503(),
            "before the kill: {:?}",
            attempt.outcome
        );
        assert!(attempt.took < HANG, "a request hung: {:?}", attempt.outcome);
    }

    let (server, address) = start(server_command()).await;
    let kept_unacknowledged =
        nothing_lost_nothing_doubled(&client, &address, &people, &attempts).await;
    eprintln!(
        "{backend:?}: after the restart, {kept_unacknowledged} unacknowledged check-ins were \
         found kept and replayed"
    );
    terminate(server).await;
}

/// Sends check-ins one after another until one gets no answer (the server is gone); every
/// attempt, that last one included.
async fn send_until_cut_off(
    client: &Client,
    address: &str,
    people: &[Person],
    venue: &str,
    sender: usize,
    acknowledged: &AtomicUsize,
) -> Vec<Attempt> {
    let person = sender % people.len();
    let mut attempts = Vec::new();
    for n in 0.. {
        let key = format!("burst-{sender}-{n}");
        let body: Value = checkin_body(venue, sender * 100_000 + n);
        let started = Instant::now();
        let (outcome, _) = check_in(client, address, &people[person], &key, &body).await;
        if outcome.acknowledged() {
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        let done = matches!(outcome, Outcome::NoAnswer(_));
        attempts.push(Attempt {
            key,
            person,
            body,
            started,
            took: started.elapsed(),
            outcome,
        });
        if done {
            break;
        }
    }
    attempts
}
