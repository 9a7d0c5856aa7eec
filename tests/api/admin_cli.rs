//! `vicinity admin …` as an operator runs it, against either database.

use serde_json::Value;
use vicinity_domain::secret::sha256_hex;
use vicinity_domain::{ClientId, ClientType, Scope};
use vicinity_store::{DatabaseUrl, PoolOptions, Store, clients};

use crate::binary::vicinity;
use crate::helpers::{Backend, TestApp, test_database};
use crate::on_both_backends;

on_both_backends!(
    create_client_registers_an_app_and_shows_its_secret_once,
    short_commands_always_exit_cleanly,
    administrators_are_made_with_the_cli_and_get_tokens_for_curl,
);

/// Runs `vicinity admin ARGS` against `app`'s database and signing key, as the operator of
/// that server would, with `stdin` on standard input: (exit code, stdout, stderr).
async fn admin(app: &TestApp, args: &[&str], stdin: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;

    let data_dir = tempfile::tempdir().unwrap();
    let mut command = vicinity(data_dir.path(), None);
    let url = match app.store().url() {
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
    };
    command
        .env("DATABASE_URL", url)
        .env("VICINITY_SIGNING_KEY_FILE", &app.key_path)
        .env("VICINITY_PUBLIC_URL", &app.config.issuer)
        .stdin(std::process::Stdio::piped())
        .arg("admin")
        .args(args);
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn administrators_are_made_with_the_cli_and_get_tokens_for_curl(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = "correct horse battery staple\n";
    let (code, stdout, stderr) = admin(
        &app,
        &[
            "create-user",
            "--username",
            "operator",
            "--email",
            "operator@example.com",
            "--admin",
        ],
        password,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(created["admin"], true);
    let (code, _, stderr) = admin(
        &app,
        &[
            "create-user",
            "--username",
            "operator",
            "--email",
            "other@example.com",
        ],
        password,
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("username: is already taken"), "{stderr}");
    // The password works for signing in like any other.
    assert_eq!(
        app.login("operator", "correct horse battery staple")
            .await
            .status(),
        200
    );

    // Only the token is printed, ready for curl; it lives as long as asked.
    let (code, stdout, stderr) = admin(
        &app,
        &[
            "token", "--user", "operator", "--scope", "admin", "--ttl", "10m",
        ],
        "",
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let token = stdout.trim().to_owned();
    let claims = crate::helpers::claims_of(&token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(claims["scope"], "admin");
    let response = app
        .client
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Ops", "type": "confidential", "scopes": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // A person who is not an administrator gets no admin token until promoted.
    let ada = app.register("ada").await;
    let (code, stdout, stderr) = admin(&app, &["token", "--user", "ada"], "").await;
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("not an administrator"), "{stderr}");
    let (code, _, stderr) = admin(&app, &["promote", "ada@example.com"], "").await;
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = admin(&app, &["token", "--user", "ada"], "").await;
    assert_eq!(code, 0);
    let ada_admin = stdout.trim().to_owned();
    assert_eq!(
        crate::helpers::claims_of(&ada_admin)["sub"],
        ada.user_id.as_str()
    );
    for bad in [
        vec!["token", "--user", "ada", "--ttl", "8d"],
        vec!["token", "--user", "nobody"],
        vec!["token", "--user", "ada", "--scope", "superpowers"],
        vec!["promote", "nobody"],
    ] {
        let (code, stdout, _) = admin(&app, &bad, "").await;
        assert_eq!(code, 1, "{bad:?}");
        assert!(stdout.is_empty(), "{bad:?}");
    }

    assert_eq!(app.get("/v1/admin/clients", &ada_admin).await.status(), 200);

    // Another administrator demotes her through the API: her admin token dies at once, her
    // ordinary login lives on; and promotes her again.
    let path = format!("/v1/admin/users/{}/admin", ada.user_id);
    let response = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(app.get("/v1/admin/clients", &ada_admin).await.status(), 401);
    assert_eq!(app.get("/v1/me", &ada.access_token).await.status(), 200);
    let (code, _, stderr) = admin(&app, &["token", "--user", "ada"], "").await;
    assert_eq!(code, 1, "{stderr}");
    let response = app
        .client
        .put(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (code, stdout, _) = admin(&app, &["token", "--user", "ada"], "").await;
    assert_eq!(code, 0);
    let again = stdout.trim().to_owned();
    let unknown = app
        .client
        .put(app.url("/v1/admin/users/usr_0000000000000/admin"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // Revoked like any first-party token.
    let response = app.post_form("/oauth/revoke", &[("token", &again)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.get("/v1/admin/clients", &again).await.status(), 401);
}

/// Runs `vicinity admin create-client ARGS` on `database`: (exit code, stdout, stderr).
async fn create_client(database: &DatabaseUrl, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["create-client"];
    all.extend_from_slice(args);
    run_admin(database, &all).await
}

/// Runs `vicinity admin ARGS` on `database`: (exit code, stdout, stderr).
async fn run_admin(database: &DatabaseUrl, args: &[&str]) -> (i32, String, String) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = vicinity(data_dir.path(), None);
    let url = match database {
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
    };
    command.env("DATABASE_URL", url).arg("admin").args(args);
    let output = command.output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn create_client_registers_an_app_and_shows_its_secret_once(backend: Backend) {
    let database = test_database(backend);
    let (code, stdout, stderr) = create_client(
        database.url(),
        &[
            "--name",
            "Trail Log",
            "--redirect-uri",
            "https://trail.example/cb",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--type",
            "public",
            "--scopes",
            "profile,checkins:read",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let public: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(public["name"], "Trail Log");
    assert_eq!(public["type"], "public");
    assert_eq!(public["scopes"], "profile checkins:read");
    assert_eq!(
        public["redirect_uris"],
        serde_json::json!(["https://trail.example/cb", "http://127.0.0.1/cb"])
    );
    assert!(public.get("client_secret").is_none(), "{public}");

    let (code, stdout, stderr) = create_client(
        database.url(),
        &[
            "--name",
            "Nightly export",
            "--type",
            "confidential",
            "--scopes",
            "admin",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let job: Value = serde_json::from_str(stdout.trim()).unwrap();
    let secret = job["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43);

    // What the database holds: both clients, the secret only as its hash.
    let store = Store::connect(database.url(), &PoolOptions::default()).unwrap();
    let public_id = ClientId::from_trusted(public["client_id"].as_str().unwrap().into());
    let job_id = ClientId::from_trusted(job["client_id"].as_str().unwrap().into());
    let (stored_public, stored_hash) = store
        .run_blocking(move |conn| {
            Ok((
                clients::find(conn, &public_id)?,
                clients::secret_hash(conn, &job_id)?,
            ))
        })
        .unwrap();
    assert_eq!(stored_public.client_type, ClientType::Public);
    assert!(stored_public.scopes.contains(Scope::CheckinsRead));
    assert_eq!(stored_hash, Some(sha256_hex(secret)));

    // Bad input: every problem named, exit code 1, nothing registered.
    let (code, stdout, stderr) = create_client(
        database.url(),
        &[
            "--name",
            "",
            "--redirect-uri",
            "http://app.example/cb",
            "--type",
            "public",
            "--scopes",
            "admin",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    for field in ["name:", "redirect_uris[0]:", "scopes:"] {
        assert!(stderr.contains(field), "{field} missing from {stderr}");
    }
    let count = store
        .run_blocking(|conn| {
            use diesel::prelude::*;
            Ok(vicinity_store::schema::oauth_clients::table
                .count()
                .get_result::<i64>(conn)?)
        })
        .unwrap();
    assert_eq!(count, 2);
    store.close(std::time::Duration::from_secs(5));
}

/// A CLI command opens pooled connections on the pool's worker threads. Exiting while one of
/// them was still inside libpq's TLS code crashed in OpenSSL's exit handler, about one run in
/// seven on PostgreSQL; so many runs, two at a time, must all exit with 0.
async fn short_commands_always_exit_cleanly(backend: Backend) {
    const RUNS: usize = 48;
    let database = test_database(backend);
    let args = [
        "--name",
        "Exit check",
        "--type",
        "confidential",
        "--scopes",
        "profile",
    ];
    let mut outcomes = Vec::new();
    for _ in 0..RUNS / 2 {
        let (first, second) = tokio::join!(
            create_client(database.url(), &args),
            create_client(database.url(), &args)
        );
        outcomes.extend([first, second]);
    }
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|(code, _, _)| *code != 0)
        .map(|(code, _, stderr)| format!("exit {code}: {stderr}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {RUNS} runs failed: {failed:#?}",
        failed.len()
    );

    // A command that fails after opening the pool leaves by an error path, which must wait
    // for the pool's threads just the same: exit 1, never a signal.
    let mut outcomes = Vec::new();
    for _ in 0..RUNS / 2 {
        let (first, second) = tokio::join!(
            run_admin(database.url(), &["promote", "nobody-at-all"]),
            run_admin(database.url(), &["promote", "nobody-at-all"])
        );
        outcomes.extend([first, second]);
    }
    let crashed: Vec<_> = outcomes
        .iter()
        .filter(|(code, _, _)| *code != 1)
        .map(|(code, _, stderr)| format!("exit {code}: {stderr}"))
        .collect();
    assert!(
        crashed.is_empty(),
        "{} of {RUNS} failing runs did not exit with 1: {crashed:#?}",
        crashed.len()
    );
}
