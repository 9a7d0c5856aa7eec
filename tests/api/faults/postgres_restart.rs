//! PostgreSQL going away and coming back while clients check in and read, twice: stopped as a
//! crash would (`-m immediate`), then as an operator's restart (`-m fast`). While it is away
//! every request is answered, within a hang bound, with a 200 or the documented 503
//! (`unavailable`, `Retry-After`), never a 500; the server reconnects by itself once it is
//! back; and nothing acknowledged is lost, nor doubled by the clients' retries.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};

use super::ledger::{
    Attempt, HANG, Outcome, Person, add_venue, check_in, checkin_body, client,
    nothing_lost_nothing_doubled, refusal, register, tally,
};
use super::private_cluster::PrivateCluster;
use crate::binary::{start, terminate, vicinity};

/// Clients checking in, one per person, each one check-in after another.
const CLIENTS: usize = 4;
const ACKNOWLEDGED_BEFORE_STOP: usize = 20;
/// Documented 503s to see before PostgreSQL comes back.
const REFUSED_WHILE_DOWN: usize = 4;
const ACKNOWLEDGED_AFTER_RESTART: usize = 10;
/// How long the server may take to find PostgreSQL again: a hang bound, not a target.
const RECOVERY: Duration = Duration::from_secs(30);
/// How long PostgreSQL stays away at least: long enough for the pool's attempts to reconnect
/// to back off, and for every kind of request to meet the outage.
const OUTAGE: Duration = Duration::from_secs(2);

const TEST: &str = "postgres_going_away_under_load_costs_only_503s_and_loses_nothing";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Up = 0,
    Down = 1,
    Back = 2,
}

/// What the clients did, shared with the test while they run.
#[derive(Default)]
struct Load {
    phase: AtomicU8,
    stop: AtomicBool,
    checkins: Mutex<Vec<(Phase, Attempt)>>,
    /// Reads, each with how long it took and, unless it was a 200, what came instead.
    reads: Mutex<Vec<(Phase, Duration, Option<Outcome>)>>,
}

impl Load {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Up,
            1 => Phase::Down,
            _ => Phase::Back,
        }
    }

    /// Check-ins sent in `phase` whose outcome satisfies `test`.
    fn count(&self, phase: Phase, test: impl Fn(&Outcome) -> bool) -> usize {
        let checkins = self.checkins.lock().unwrap();
        checkins
            .iter()
            .filter(|(p, a)| *p == phase && test(&a.outcome))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_under_load_costs_only_503s_and_loses_nothing() {
    let Some(cluster) = private_cluster().await else {
        return;
    };
    let cluster = Arc::new(cluster);
    let data_dir = tempfile::tempdir().unwrap();
    let log = data_dir.path().join("server.log");
    let url = vicinity_store::DatabaseUrl::Postgres(cluster.url());
    let mut command = vicinity(data_dir.path(), Some(&url));
    command.stderr(std::fs::File::create(&log).unwrap());
    let (server, address) = start(command).await;
    let client = client();
    let mut people = Vec::new();
    for n in 0..CLIENTS {
        people.push(register(&client, &address, &format!("walker{n}")).await);
    }
    let venue = add_venue(&client, &address, &people[0]).await;
    let people = Arc::new(people);

    let load = Arc::new(Load::default());
    let mut clients: Vec<_> = (0..CLIENTS)
        .map(|sender| {
            let (client, address, people, venue, load) = (
                client.clone(),
                address.clone(),
                Arc::clone(&people),
                venue.clone(),
                Arc::clone(&load),
            );
            tokio::spawn(async move {
                check_in_until_stopped(&load, &client, &address, &people, &venue, sender).await;
            })
        })
        .collect();
    clients.push(tokio::spawn({
        let (client, address, people, load) = (
            client.clone(),
            address.clone(),
            Arc::clone(&people),
            Arc::clone(&load),
        );
        async move { read_until_stopped(&load, &client, &address, &people[0]).await }
    }));

    let phase_holds = |phase: Phase, test: fn(&Outcome) -> bool, wanted: usize| {
        let load = Arc::clone(&load);
        move || load.count(phase, test) >= wanted
    };
    wait_for(
        "check-ins acknowledged before the stop",
        HANG * 3,
        phase_holds(Phase::Up, Outcome::acknowledged, ACKNOWLEDGED_BEFORE_STOP),
        &log,
    )
    .await;
    // A crash, then an operator's restart.
    for mode in ["immediate", "fast"] {
        let refused_before = load.count(Phase::Down, Outcome::is_documented_503);
        let acknowledged_before = load.count(Phase::Back, Outcome::acknowledged);
        let stopping = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || stopping.stop(mode))
            .await
            .unwrap()
            .unwrap();
        let down_since = Instant::now();
        load.phase.store(Phase::Down as u8, Ordering::SeqCst);
        wait_for(
            &format!("documented 503s while PostgreSQL is down (stopped {mode})"),
            HANG * 2,
            phase_holds(
                Phase::Down,
                Outcome::is_documented_503,
                refused_before + REFUSED_WHILE_DOWN,
            ),
            &log,
        )
        .await;
        tokio::time::sleep_until((down_since + OUTAGE).into()).await;
        let resuming = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || resuming.resume())
            .await
            .unwrap()
            .unwrap();
        load.phase.store(Phase::Back as u8, Ordering::SeqCst);
        wait_for(
            &format!(
                "check-ins acknowledged once PostgreSQL is back after a {mode} stop (the server \
                 must reconnect by itself)"
            ),
            RECOVERY,
            phase_holds(
                Phase::Back,
                Outcome::acknowledged,
                acknowledged_before + ACKNOWLEDGED_AFTER_RESTART,
            ),
            &log,
        )
        .await;
    }
    load.stop.store(true, Ordering::SeqCst);
    for task in clients {
        tokio::time::timeout(HANG * 2, task)
            .await
            .expect("a client hung")
            .unwrap();
    }

    let checkins: Vec<(Phase, Attempt)> = std::mem::take(&mut *load.checkins.lock().unwrap());
    let reads = std::mem::take(&mut *load.reads.lock().unwrap());
    report(&checkins, &reads);
    for (phase, attempt) in &checkins {
        assert!(
            attempt.outcome.acknowledged() || attempt.outcome.is_documented_503(),
            "a check-in sent while PostgreSQL was {phase:?} got {:?} after {:?}\n{}",
            attempt.outcome,
            attempt.took,
            tail(&log)
        );
    }
    for (phase, took, outcome) in &reads {
        assert!(
            outcome.as_ref().is_none_or(Outcome::is_documented_503),
            "a read while PostgreSQL was {phase:?} got {outcome:?} after {took:?}\n{}",
            tail(&log)
        );
    }
    // Readiness says so too, by itself.
    let ready_by = Instant::now() + RECOVERY;
    loop {
        let ready = client
            .get(format!("{address}/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < ready_by,
            "never ready again\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let attempts: Vec<Attempt> = checkins.into_iter().map(|(_, attempt)| attempt).collect();
    let kept_unacknowledged =
        nothing_lost_nothing_doubled(&client, &address, &people, &attempts).await;
    eprintln!("{kept_unacknowledged} unacknowledged check-ins were found kept and replayed");
    terminate(server).await;
}

/// The private cluster, or `None` after saying why the test cannot run here. Where PostgreSQL
/// tests are asked for (`VICINITY_TEST_POSTGRES_URL`), as in CI, a missing cluster fails.
async fn private_cluster() -> Option<PrivateCluster> {
    if !PrivateCluster::installed() {
        let why = "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin for a private \
                   cluster (install the `postgresql` package)";
        assert!(
            std::env::var_os(vicinity_store::testing::POSTGRES_URL_VAR).is_none(),
            "{TEST}: {why}"
        );
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED on PostgreSQL: {TEST} ({why})");
        return None;
    }
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("cannot start a private PostgreSQL cluster: {error}"));
    Some(cluster)
}

/// One client: check-ins one after another until told to stop, pausing a little after a
/// refusal as a client would (less than `Retry-After` asks, to keep the pressure on).
async fn check_in_until_stopped(
    load: &Load,
    client: &Client,
    address: &str,
    people: &[Person],
    venue: &str,
    sender: usize,
) {
    for n in 0.. {
        if load.stop.load(Ordering::SeqCst) {
            break;
        }
        let key = format!("outage-{sender}-{n}");
        let body = checkin_body(venue, sender * 100_000 + n);
        let (phase, started) = (load.phase(), Instant::now());
        let (outcome, _) = check_in(client, address, &people[sender], &key, &body).await;
        let refused = !outcome.acknowledged();
        let attempt = Attempt {
            key,
            person: sender,
            body,
            started,
            took: started.elapsed(),
            outcome,
        };
        load.checkins.lock().unwrap().push((phase, attempt));
        if refused {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A client reading its own recent check-ins until told to stop.
async fn read_until_stopped(load: &Load, client: &Client, address: &str, who: &Person) {
    while !load.stop.load(Ordering::SeqCst) {
        let (phase, started) = (load.phase(), Instant::now());
        let outcome = match client
            .get(format!("{address}/v1/me/checkins?limit=5"))
            .bearer_auth(&who.token)
            .send()
            .await
        {
            Ok(response) if response.status() == StatusCode::OK => None,
            Ok(response) => Some(refusal(response).await),
            Err(error) => Some(Outcome::NoAnswer(error.to_string())),
        };
        load.reads
            .lock()
            .unwrap()
            .push((phase, started.elapsed(), outcome));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `done`, or fails after `bound` with the end of the server's log.
async fn wait_for(what: &str, bound: Duration, done: impl Fn() -> bool, log: &Path) {
    let deadline = Instant::now() + bound;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "no {what} within {bound:?}\n{}",
            tail(log)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the clients saw in each phase, on stderr (shown when the test fails or with
/// `--nocapture`).
fn report(checkins: &[(Phase, Attempt)], reads: &[(Phase, Duration, Option<Outcome>)]) {
    for phase in [Phase::Up, Phase::Down, Phase::Back] {
        let attempts: Vec<&Attempt> = checkins
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, a)| a)
            .collect();
        let slowest = attempts.iter().map(|a| a.took).max().unwrap_or_default();
        let read_count = reads.iter().filter(|(p, ..)| *p == phase).count();
        let read_refused = reads
            .iter()
            .filter(|(p, _, outcome)| *p == phase && outcome.is_some())
            .count();
        eprintln!(
            "PostgreSQL {phase:?}: check-ins {:?} (slowest answer {slowest:?}); reads {read_count}, \
             {read_refused} refused",
            tally(attempts.iter().map(|a| &a.outcome))
        );
    }
}

/// The last lines of the server's log.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!("server log, last lines:\n{}", lines[from..].join("\n"))
}
