//! Commands: `serve` (the default), `migrate`, `keygen`, `openapi`, `seed`, `admin`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vicinity_api::{Application, SigningKeys};
use vicinity_domain::{ClientType, NewClient};
use vicinity_store::{DatabaseUrl, PoolOptions, Store, clients, users};

use crate::settings::{Environment, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "vicinity",
    version,
    about = "Location check-in backend: venues, check-ins and friends nearby"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default): migrates the database first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600) to a file that must not exist.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Succeed without touching an existing key file (for container start-up).
        #[arg(long)]
        if_missing: bool,
    },
    /// Manage the signing key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the OpenAPI document (the committed openapi.yaml must equal it).
    Openapi,
    /// Add synthetic venues around the world's cities (GeoNames, population ≥ 15,000), in
    /// proportion to population. The same seed gives the same venues; re-running adds nothing.
    Seed {
        /// How many venues to generate.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(0..=20_000_000))]
        venues: u64,
        /// The generator's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Operator tasks on the database the settings name.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Replace the signing key with a new one. Running servers notice within seconds: they
    /// sign with the new key, and keep accepting tokens of the old one until those expire
    /// (the access-token lifetime), unless --revoke-old.
    Rotate {
        /// The old key was compromised: its tokens stop working at once (everyone must
        /// refresh, which works, since refresh tokens do not depend on the key).
        #[arg(long)]
        revoke_old: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account; its password is read from the first line of standard input
    /// (`printf '%s\n' "$PASSWORD" | vicinity admin create-user …`).
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Make an existing account (by username or email) an administrator.
    Promote { name: String },
    /// Print an access token for an account, and nothing else, for
    /// `curl -H "Authorization: Bearer $(vicinity admin token --user NAME --scope admin)"`.
    /// It is a first-party token: revoked like any (POST /oauth/revoke), never refreshed.
    Token {
        /// The account, by username or email.
        #[arg(long)]
        user: String,
        /// Space- or comma-separated scopes; `admin` only for an administrator.
        #[arg(long, default_value = "admin")]
        scope: String,
        /// How long the token lives (at most 7 days).
        #[arg(long, default_value = "1h", value_parser = crate::settings::parse_duration)]
        ttl: Duration,
    },
    /// Register an OAuth client (a third-party app) and print it as JSON. A confidential
    /// client's `client_secret` is printed this once and stored only as a hash.
    CreateClient {
        /// The app's name, shown to people when it asks for their approval.
        #[arg(long)]
        name: String,
        /// A redirect URI, exactly as the app will send it; repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// `confidential` (a server that keeps a secret) or `public` (a phone or browser app,
        /// which proves itself with PKCE alone).
        #[arg(long = "type", value_parser = ClientType::parse)]
        client_type: ClientType,
        /// The most the app may ask for, space- or comma-separated (e.g. "profile checkins:read").
        #[arg(long)]
        scopes: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] vicinity_store::StoreError),
    #[error(transparent)]
    Key(#[from] vicinity_api::KeyError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.settings),
        Command::Migrate => {
            let store = connect(&cli.settings)?;
            let applied = store.migrate()?;
            println!(
                "{} migration(s) applied to {}",
                applied.len(),
                store.url().redacted()
            );
            Ok(())
        }
        Command::Keygen { out, if_missing } => {
            if if_missing && out.exists() {
                println!(
                    "signing key {} already exists; left as it is",
                    out.display()
                );
                return Ok(());
            }
            let keys = SigningKeys::generate();
            keys.write_new(&out)?;
            println!("wrote signing key {} (kid {})", out.display(), keys.kid());
            Ok(())
        }
        Command::Openapi => {
            print!("{}", vicinity_api::openapi_yaml());
            Ok(())
        }
        Command::Admin { command } => admin(&cli.settings, command),
        Command::Keys {
            command: KeysCommand::Rotate { revoke_old },
        } => {
            let path = cli.settings.signing_key_file();
            // Tokens of the old key live at most their lifetime, plus the verification leeway.
            let verify_for = cli.settings.access_token_ttl + Duration::from_secs(60);
            let (new, old_kid) = SigningKeys::rotate(&path, verify_for, revoke_old)?;
            let fate = if revoke_old {
                "revoked: its tokens are refused from now on".to_owned()
            } else {
                format!(
                    "retired: it verifies its tokens for {} s more",
                    verify_for.as_secs()
                )
            };
            announce(&format!(
                "signing key {} rotated: new key {}; old key {old_kid} {fate}",
                path.display(),
                new.kid()
            ));
            Ok(())
        }
        Command::Seed { venues, seed } => {
            let store = connect(&cli.settings)?;
            store.migrate()?;
            let report =
                crate::seed::seed_venues(&store, venues, seed).map_err(CliError::Config)?;
            announce(&format!(
                "{} venues generated with seed {seed}, {} inserted ({} already present) into {} in {:.1} s",
                report.generated,
                report.inserted,
                report.generated.saturating_sub(report.inserted),
                store.url().redacted(),
                report.seconds,
            ));
            store.close(Duration::from_secs(5));
            Ok(())
        }
    }
}

/// The longest `vicinity admin token --ttl`.
const MAX_CLI_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

fn admin(settings: &Settings, command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::CreateUser {
            username,
            email,
            display_name,
            admin,
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let new = vicinity_domain::NewUser::parse(
                &username,
                &email,
                password,
                display_name.as_deref(),
            )
            .map_err(|errors| CliError::Config(errors.to_string()))?;
            let hash = vicinity_api::auth::password::hash_blocking(new.password.expose())
                .map_err(|e| CliError::Config(e.to_string()))?;
            let store = connect(settings)?;
            store.migrate()?;
            let user = store.run_blocking(move |conn| {
                vicinity_store::transaction(conn, |conn| {
                    let user = users::create(conn, &new, &hash, chrono::Utc::now())?;
                    if admin {
                        users::set_admin(conn, user.id, true)?;
                    }
                    Ok(user)
                })
            });
            let user = match user {
                Err(vicinity_store::StoreError::Taken(field)) => {
                    return Err(CliError::Config(format!("{field}: is already taken")));
                }
                other => other?,
            };
            announce(
                &serde_json::json!({
                    "id": user.id.to_string(),
                    "username": user.username.as_str(),
                    "email": user.email.as_str(),
                    "admin": admin,
                })
                .to_string(),
            );
            store.close(Duration::from_secs(5));
            Ok(())
        }
        AdminCommand::Promote { name } => {
            let store = connect(settings)?;
            store.migrate()?;
            let lookup = name.clone();
            let found = store.run_blocking(move |conn| users::find_for_login(conn, &lookup))?;
            let Some((user, _)) = found else {
                return Err(CliError::Config(format!("no account named `{name}`")));
            };
            store.run_blocking(move |conn| users::set_admin(conn, user.id, true))?;
            announce(&format!(
                "{} is now an administrator",
                user.username.as_str()
            ));
            store.close(Duration::from_secs(5));
            Ok(())
        }
        AdminCommand::Token { user, scope, ttl } => {
            let scope = vicinity_domain::ScopeSet::parse(&scope.replace(',', " "))
                .map_err(|e| CliError::Config(format!("scope: {e}")))?;
            if scope.is_empty() {
                return Err(CliError::Config("scope: name at least one".into()));
            }
            if ttl > MAX_CLI_TOKEN_TTL {
                return Err(CliError::Config("ttl: at most 7d".into()));
            }
            let (keys, _) = SigningKeys::load_or_create(&settings.signing_key_file(), false)?;
            let store = connect(settings)?;
            store.migrate()?;
            let lookup = user.clone();
            let found = store.run_blocking(move |conn| users::find_for_login(conn, &lookup))?;
            let Some((account, _)) = found else {
                return Err(CliError::Config(format!("no account named `{user}`")));
            };
            if scope.contains(vicinity_domain::Scope::Admin) && !account.is_admin {
                return Err(CliError::Config(format!(
                    "{} is not an administrator: `vicinity admin promote {}` first",
                    account.username.as_str(),
                    account.username.as_str()
                )));
            }
            let now = chrono::Utc::now();
            let grant = store.run_blocking(move |conn| {
                vicinity_store::tokens::open_family(
                    conn,
                    account.id,
                    vicinity_api::FIRST_PARTY_CLIENT_ID,
                    scope,
                    now,
                )
            })?;
            let config = settings.api_config();
            let tokens = vicinity_api::auth::access::AccessTokens::new(
                keys,
                config.issuer,
                config.audience,
                config.access_token_ttl,
            );
            let token = tokens
                .issue_for(
                    grant.user_id,
                    grant.family_id,
                    vicinity_api::FIRST_PARTY_CLIENT_ID,
                    scope,
                    now,
                    ttl,
                )
                .map_err(|e| CliError::Config(format!("cannot sign a token: {e}")))?;
            announce(&token);
            store.close(Duration::from_secs(5));
            Ok(())
        }
        AdminCommand::CreateClient {
            name,
            redirect_uris,
            client_type,
            scopes,
        } => {
            let new = NewClient::parse(
                &name,
                client_type,
                &redirect_uris,
                &scopes.replace(',', " "),
            )
            .map_err(|errors| CliError::Config(errors.to_string()))?;
            let store = connect(settings)?;
            store.migrate()?;
            let (client, secret) =
                store.run_blocking(move |conn| clients::create(conn, &new, chrono::Utc::now()))?;
            let mut printed = serde_json::json!({
                "client_id": client.id.as_str(),
                "name": client.name,
                "type": client.client_type.as_str(),
                "redirect_uris": client.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
                "scopes": client.scopes.to_string(),
            });
            if let (Some(secret), Some(fields)) = (&secret, printed.as_object_mut()) {
                fields.insert("client_secret".into(), secret.expose().into());
            }
            announce(&printed.to_string());
            store.close(Duration::from_secs(5));
            Ok(())
        }
    }
}

fn connect(settings: &Settings) -> Result<Store, CliError> {
    let url = DatabaseUrl::parse(&settings.database_url()).map_err(CliError::Config)?;
    let options = PoolOptions {
        max_connections: settings.db_pool_size.max(1),
        ..PoolOptions::default()
    };
    Store::connect(&url, &options).map_err(|error| {
        CliError::Config(format!("cannot open database {}: {error}", url.redacted()))
    })
}

/// Prints the start-up banner; a closed stdout (`vicinity | head -1`) must not stop the server.
fn announce(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

fn serve(settings: &Settings) -> Result<(), CliError> {
    // The key first: a server that cannot sign must not have touched the database.
    let key_file = settings.signing_key_file();
    let allow_create = settings.environment == Environment::Development;
    let (keys, created) = SigningKeys::load_or_create(&key_file, allow_create)?;
    if created {
        tracing::info!(path = %key_file.display(), "generated a new signing key");
    }
    let store = connect(settings)?;
    let applied = store.migrate()?;
    if !applied.is_empty() {
        tracing::info!(migrations = applied.len(), "database migrated");
    }
    let config = settings.api_config();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let app = Application::build(config, store.clone(), keys)?;
        let address = app.address();
        let handle = app.handle();
        let streams = app.stream_closer();
        let stop_requested = stop_signal()?;
        let mut server = tokio::spawn(app.run_until_stopped());
        announce(&format!(
            "Vicinity listening on http://{address}\n  database: {}\n  signing key: {}\n  \
             create an account: curl -X POST http://{address}/v1/auth/register \
             -H 'Content-Type: application/json' \
             -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"a long passphrase\"}}'",
            store.url().redacted(),
            key_file.display(),
        ));
        tracing::info!(%address, "listening");
        tokio::select! {
            finished = &mut server => return finished.map_err(std::io::Error::other)?.map_err(Into::into),
            signal = stop_requested => tracing::info!(signal, "stopping: finishing in-flight requests"),
        }
        streams.close();
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)??;
        Ok::<(), CliError>(())
    });
    // Orderly teardown: blocking tasks end, the workers release the pool, and the connections
    // close here, before the process exits.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if !store.close(Duration::from_secs(5)) {
        tracing::warn!("database connections still in use at exit");
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves with the signal's name on the first SIGINT or SIGTERM. The handlers are
/// registered when this is called, before the server announces itself.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}
