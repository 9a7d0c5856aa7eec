//! OAuth clients on both backends: what is registered comes back, and a secret is kept only
//! as its hash.

use chrono::{SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use vicinity_domain::secret::sha256_hex;
use vicinity_domain::{ClientId, ClientType, NewClient, Scope};
use vicinity_store::testing::TestDatabase;
use vicinity_store::{PoolOptions, Store, StoreError, clients};

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[test]
fn clients_are_registered_and_read_back_on_both_backends() {
    for db in TestDatabase::each("clients_are_registered") {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        store
            .run_blocking(|conn| {
                let now = Utc::now().trunc_subsecs(6);
                let uris = vec![
                    "https://trail.example/cb".to_owned(),
                    "http://127.0.0.1/cb".to_owned(),
                ];
                let new = NewClient::parse(
                    "Trail Log",
                    ClientType::Public,
                    &uris,
                    "checkins:read profile",
                )
                .unwrap();
                let (public, secret) = clients::create(conn, &new, now)?;
                assert!(secret.is_none(), "a public client has no secret");
                assert_eq!(public.name, "Trail Log");
                assert_eq!(public.client_type, ClientType::Public);
                let stored: Vec<&str> = public.redirect_uris.iter().map(|u| u.as_str()).collect();
                assert_eq!(stored, uris, "the URIs come back as given, in order");
                assert!(public.scopes.contains(Scope::CheckinsRead));
                assert!(!public.scopes.contains(Scope::CheckinsWrite));
                assert_eq!(public.created_at, now);
                assert_eq!(clients::find(conn, &public.id)?, public);
                assert_eq!(clients::secret_hash(conn, &public.id)?, None);

                let new = NewClient::parse("Nightly job", ClientType::Confidential, &[], "admin")
                    .unwrap();
                let (job, secret) = clients::create(conn, &new, now)?;
                let secret = secret.expect("a confidential client gets a secret");
                assert_ne!(job.id, public.id);
                assert!(job.redirect_uris.is_empty());
                assert_eq!(
                    clients::secret_hash(conn, &job.id)?,
                    Some(sha256_hex(secret.expose()))
                );
                // Nothing stored holds the secret itself.
                let columns: Vec<Line> = diesel::sql_query(
                    "SELECT client_id || ' ' || name || ' ' || COALESCE(secret_hash, '') || ' ' \
                     || redirect_uris || ' ' || scopes AS line FROM oauth_clients",
                )
                .load(conn)?;
                assert_eq!(columns.len(), 2);
                assert!(columns.iter().all(|c| !c.line.contains(secret.expose())));

                assert!(matches!(
                    clients::find(conn, &ClientId::from_trusted("no-such-client".into())),
                    Err(StoreError::NotFound)
                ));
                // The schema itself refuses a confidential client without a secret.
                let refused = diesel::sql_query(
                    "INSERT INTO oauth_clients (client_id, name, client_type, secret_hash, \
                     redirect_uris, scopes, created_at) \
                     VALUES ('x', 'x', 'confidential', NULL, '', 'admin', 0)",
                )
                .execute(conn);
                assert!(refused.is_err());
                Ok(())
            })
            .unwrap();
    }
}
