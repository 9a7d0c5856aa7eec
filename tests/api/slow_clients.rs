//! Slow and idle clients do not starve the others (issue 7): while a crowd of connections sits
//! idle, trickles a request head byte by byte or stalls in the middle of a body, every ordinary
//! request is still answered, and the server closes the idle and the half-sent heads itself.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vicinity_api::{CLIENT_REQUEST_TIMEOUT, KEEP_ALIVE};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(slow_and_idle_clients_do_not_starve_the_others);

const IDLE: usize = 200;
const TRICKLING: usize = 20;
const STALLED_BODIES: usize = 20;

/// Far beyond the server's own timeouts: reaching it means a hang, not slowness.
const HANG: Duration = Duration::from_secs(30);

/// Whether the server closes `stream` (end of file or a reset) before `HANG`.
async fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut buffer = [0_u8; 1024];
    loop {
        match tokio::time::timeout(HANG, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or 400 answer before closing is fine; keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

async fn slow_and_idle_clients_do_not_starve_the_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let address = app.address.trim_start_matches("http://").to_owned();

    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    // Heads that never finish: a byte at a time, slower than the server waits for.
    let mut trickling = Vec::new();
    for _ in 0..TRICKLING {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        trickling.push(stream);
    }
    // Bodies that stall: the head promises 10 kB and 10 bytes come.
    let mut stalled = Vec::new();
    for _ in 0..STALLED_BODIES {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let head = "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 10000\r\n\r\n{\"username";
        stream.write_all(head.as_bytes()).await.unwrap();
        stalled.push(stream);
    }

    // Everyone else is served meanwhile, each on a fresh connection.
    for _ in 0..20 {
        let client = reqwest::Client::builder()
            .timeout(HANG)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let response = client
            .get(app.url("/v1/me"))
            .bearer_auth(&ada.access_token)
            .send()
            .await
            .expect("an ordinary request is answered while slow clients hold connections");
        assert_eq!(response.status(), StatusCode::OK);
    }

    // The server sheds the idle connections and the unfinished heads by itself, after its
    // keep-alive and head timeouts (5 s each), well before `HANG`.
    assert!(KEEP_ALIVE < HANG && CLIENT_REQUEST_TIMEOUT < HANG);
    let closes = idle
        .into_iter()
        .chain(trickling)
        .map(|stream| tokio::spawn(closed_by_server(stream)));
    for close in closes {
        assert!(
            close.await.unwrap(),
            "a connection stayed open past {HANG:?}"
        );
    }
    // A stalled body holds only its own connection: the server still answers.
    let response = app.get("/v1/me", &ada.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    drop(stalled);
}
