//! OAuth clients: registering third-party apps and reading them back.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::{
    Client, ClientId, ClientSecret, ClientType, NewClient, RedirectUri, ScopeSet,
};

use crate::schema::oauth_clients;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_clients)]
struct ClientRow {
    client_id: String,
    name: String,
    client_type: String,
    redirect_uris: String,
    scopes: String,
    created_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        Ok(Client {
            id: ClientId::from_trusted(row.client_id),
            name: row.name,
            client_type: ClientType::parse(&row.client_type).map_err(StoreError::Corrupt)?,
            redirect_uris: row
                .redirect_uris
                .lines()
                .map(|uri| RedirectUri::from_trusted(uri.to_owned()))
                .collect(),
            scopes: ScopeSet::parse(&row.scopes)
                .map_err(|e| StoreError::Corrupt(format!("a client's scopes: {e}")))?,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// Registers a client under a new random id. A confidential client gets a new secret, which
/// is returned here and never again: only its hash is stored.
pub fn create(
    conn: &mut DbConnection,
    new: &NewClient,
    now: DateTime<Utc>,
) -> Result<(Client, Option<ClientSecret>), StoreError> {
    let secret = (new.client_type == ClientType::Confidential).then(ClientSecret::generate);
    let client = Client {
        id: ClientId::generate(),
        name: new.name.clone(),
        client_type: new.client_type,
        redirect_uris: new.redirect_uris.clone(),
        scopes: new.scopes,
        // As stored: to the microsecond.
        created_at: from_micros(to_micros(now))?,
    };
    let uris: Vec<&str> = client
        .redirect_uris
        .iter()
        .map(RedirectUri::as_str)
        .collect();
    diesel::insert_into(oauth_clients::table)
        .values((
            oauth_clients::client_id.eq(client.id.as_str()),
            oauth_clients::name.eq(&client.name),
            oauth_clients::client_type.eq(client.client_type.as_str()),
            oauth_clients::secret_hash.eq(secret.as_ref().map(ClientSecret::hash)),
            oauth_clients::redirect_uris.eq(uris.join("\n")),
            oauth_clients::scopes.eq(client.scopes.to_string()),
            oauth_clients::created_at.eq(to_micros(client.created_at)),
        ))
        .execute(conn)?;
    Ok((client, secret))
}

/// The client registered under `id`.
pub fn find(conn: &mut DbConnection, id: &ClientId) -> Result<Client, StoreError> {
    oauth_clients::table
        .find(id.as_str())
        .select(ClientRow::as_select())
        .first::<ClientRow>(conn)
        .optional()?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// The stored hash of a confidential client's secret (`None` for a public client).
pub fn secret_hash(conn: &mut DbConnection, id: &ClientId) -> Result<Option<String>, StoreError> {
    oauth_clients::table
        .find(id.as_str())
        .select(oauth_clients::secret_hash)
        .first::<Option<String>>(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Every registered client, newest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Client>, StoreError> {
    oauth_clients::table
        .order((oauth_clients::created_at.desc(), oauth_clients::client_id))
        .select(ClientRow::as_select())
        .load::<ClientRow>(conn)?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Deletes a client: its codes, consents, grants, webhook and deliveries go with it, and the
/// logins people made through it are revoked. False if there was no such client.
pub fn delete(
    conn: &mut DbConnection,
    id: &ClientId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    crate::transaction(conn, |conn| {
        let which = crate::tokens::Logins {
            client: Some(id.as_str()),
            ..Default::default()
        };
        crate::tokens::revoke_live(conn, which, "client deleted", now)?;
        Ok(diesel::delete(oauth_clients::table.find(id.as_str())).execute(conn)? > 0)
    })
}
