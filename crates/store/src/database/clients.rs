//! OAuth clients: registration, lookup, ownership and clean-up of unused ones.

use async_trait::async_trait;
use mcpgate_domain::store::{Clients, StoreResult};

use crate::timing::timed;

use sqlx::Row;

use super::{Database, Error, Pool};
use crate::model::*;
use crate::notify::Change;
use mcpgate_core::ScopeSet;

/// A client row as stored; lists are JSON text.
#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    client_id: String,
    secret_hash: Option<String>,
    name: String,
    redirect_uris: String,
    kind: String,
    auth_method: String,
    can_introspect: bool,
    owner_user_id: Option<String>,
    registration_hash: Option<String>,
    metadata: String,
    fetched_until: Option<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
    machine_scopes: Option<String>,
    machine_resources: Option<String>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        // Written only from the enum; a row edited by hand falls back to what its
        // secret implies.
        let auth_method = AuthMethod::parse(&r.auth_method)
            .unwrap_or(AuthMethod::for_secret(r.secret_hash.is_some()));
        Client {
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            name: r.name,
            redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
            kind: ClientKind::parse(&r.kind),
            auth_method,
            can_introspect: r.can_introspect,
            owner_user_id: r.owner_user_id,
            registration_hash: r.registration_hash,
            metadata: serde_json::from_str(&r.metadata).unwrap_or_default(),
            fetched_until: r.fetched_until,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            machine: r.machine_scopes.map(|scopes| Machine {
                scopes: ScopeSet::parse(&scopes).unwrap_or_default(),
                resources: r
                    .machine_resources
                    .and_then(|v| serde_json::from_str(&v).ok())
                    .unwrap_or_default(),
            }),
            keys: match (r.jwks, r.jwks_uri) {
                (Some(set), _) => serde_json::from_str(&set).ok().map(ClientKeys::Set),
                (None, Some(uri)) => Some(ClientKeys::Uri(uri)),
                (None, None) => None,
            },
        }
    }
}

/// The columns a client is written with, in the order [`bind_client!`] binds them.
macro_rules! client_columns {
    () => {
        "client_id, secret_hash, name, redirect_uris, kind, auth_method, can_introspect, owner_user_id, registration_hash, metadata, fetched_until, created_at, last_used_at, machine_scopes, machine_resources, jwks, jwks_uri"
    };
}

/// `$1` to `$17` of [`client_columns!`].
macro_rules! client_values {
    () => {
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17"
    };
}

/// Binds a client's columns to `$q`, in [`client_columns!`]'s order.
macro_rules! bind_client {
    ($q:expr, $c:expr) => {{
        let c: &Client = $c;
        let (jwks, jwks_uri) = match &c.keys {
            Some(ClientKeys::Set(v)) => (Some(v.to_string()), None),
            Some(ClientKeys::Uri(u)) => (None, Some(u.clone())),
            None => (None, None),
        };
        $q.bind(&c.client_id)
            .bind(&c.secret_hash)
            .bind(&c.name)
            .bind(serde_json::to_string(&c.redirect_uris).unwrap_or_default())
            .bind(c.kind.as_str())
            .bind(c.auth_method.as_str())
            .bind(c.can_introspect)
            .bind(&c.owner_user_id)
            .bind(&c.registration_hash)
            .bind(c.metadata.to_string())
            .bind(c.fetched_until)
            .bind(c.created_at)
            .bind(c.last_used_at)
            .bind(c.machine.as_ref().map(|m| m.scopes.to_string()))
            .bind(
                c.machine
                    .as_ref()
                    .map(|m| serde_json::to_string(&m.resources).unwrap_or_default()),
            )
            .bind(jwks)
            .bind(jwks_uri)
    }};
}

#[async_trait]
impl Clients for Database {
    async fn insert_client(&self, c: &Client) -> StoreResult<()> {
        timed("insert_client", async move {
            dispatch!(self, pool, {
                bind_client!(
                    sqlx::query(concat!(
                        "INSERT INTO clients (",
                        client_columns!(),
                        ") VALUES (",
                        client_values!(),
                        ")"
                    )),
                    c
                )
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn insert_owned_client(&self, c: &Client, max: i64) -> StoreResult<bool> {
        timed("insert_owned_client", async move {
            let Some(owner) = c.owner_user_id.as_deref() else {
                return Err(Error::Conflict("an owned client needs its owner".into()));
            };
            // One transaction, the count and the insert together. PostgreSQL locks the
            // owner's row first, so two requests of one person are counted one after the
            // other; SQLite runs one writer at a time, and the transaction takes the
            // write lock at its first statement (the count reads after it).
            let sql = concat!(
                "INSERT INTO clients (",
                client_columns!(),
                ") SELECT ",
                client_values!(),
                " WHERE (SELECT COUNT(*) FROM clients WHERE owner_user_id = $8) < $18"
            );
            macro_rules! insert {
                ($conn:expr) => {
                    bind_client!(sqlx::query(sql), c)
                        .bind(max)
                        .execute($conn)
                        .await?
                        .rows_affected()
                };
            }
            let inserted = match &self.pool {
                Pool::Postgres(pool) => {
                    let mut tx = pool.begin().await?;
                    sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                        .bind(owner)
                        .execute(&mut *tx)
                        .await?;
                    let n = insert!(&mut *tx);
                    tx.commit().await?;
                    n
                }
                Pool::Sqlite(pool) => {
                    let mut tx = pool.begin().await?;
                    let n = insert!(&mut *tx);
                    tx.commit().await?;
                    n
                }
            };
            Ok(inserted == 1)
        })
        .await
    }

    async fn upsert_document_client(&self, c: &Client) -> StoreResult<()> {
        timed("upsert_document_client", async move {
        dispatch!(self, pool, {
            let q = sqlx::query(concat!(
                "INSERT INTO clients (", client_columns!(), ") VALUES (", client_values!(), ") \
                 ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris, \
                 metadata = excluded.metadata, fetched_until = excluded.fetched_until, \
                 auth_method = excluded.auth_method, jwks = excluded.jwks, jwks_uri = excluded.jwks_uri \
                 WHERE clients.kind = 'metadata_document'"
            ));
            bind_client!(q, c).execute(pool).await?;
            // A document fetched again: this process reads the row again; another
            // instance keeps its copy at most a second (a public document, fetched
            // by whichever instance needs it).
            self.remembered.forget_row(&self.remembered.clients, &c.client_id);
            Ok(())
        })
    })
        .await
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let read = timed("client", async move {
            dispatch!(self, pool, {
                let row =
                    sqlx::query_as::<_, ClientRow>("SELECT * FROM clients WHERE client_id = $1")
                        .bind(client_id)
                        .fetch_optional(pool)
                        .await?;
                Ok(row.map(Client::from))
            })
        });
        let r = &self.remembered;
        r.row(&r.clients, client_id, read).await
    }

    async fn client_by_registration_hash(&self, hash: &str) -> StoreResult<Option<Client>> {
        timed("client_by_registration_hash", async move {
            dispatch!(self, pool, {
                let row = sqlx::query_as::<_, ClientRow>(
                "SELECT * FROM clients WHERE registration_hash = $1 AND kind = 'dynamic' LIMIT 1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?;
                Ok(row.map(Client::from))
            })
        })
        .await
    }

    async fn clients(&self, owner: Option<&str>) -> StoreResult<Vec<Client>> {
        timed("clients", async move {
            dispatch!(self, pool, {
                let rows = match owner {
                    Some(o) => {
                        sqlx::query_as::<_, ClientRow>(
                            "SELECT * FROM clients WHERE owner_user_id = $1 ORDER BY created_at",
                        )
                        .bind(o)
                        .fetch_all(pool)
                        .await?
                    }
                    None => {
                        sqlx::query_as::<_, ClientRow>("SELECT * FROM clients ORDER BY created_at")
                            .fetch_all(pool)
                            .await?
                    }
                };
                Ok(rows.into_iter().map(Client::from).collect())
            })
        })
        .await
    }

    async fn count_dynamic_clients(&self) -> StoreResult<i64> {
        timed("count_dynamic_clients", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query("SELECT COUNT(*) FROM clients WHERE kind = 'dynamic'")
                        .fetch_one(pool)
                        .await?
                        .get(0),
                )
            })
        })
        .await
    }

    async fn delete_client(&self, client_id: &str, owner: Option<&str>) -> StoreResult<bool> {
        timed("delete_client", async move {
            notifying!(self, Change::Config, conn, {
                let r = match owner {
                    Some(o) => {
                        sqlx::query(
                            "DELETE FROM clients WHERE client_id = $1 AND owner_user_id = $2",
                        )
                        .bind(client_id)
                        .bind(o)
                        .execute(conn)
                        .await?
                    }
                    None => {
                        sqlx::query("DELETE FROM clients WHERE client_id = $1")
                            .bind(client_id)
                            .execute(conn)
                            .await?
                    }
                };
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn touch_client(&self, client_id: &str, now: i64) -> StoreResult<()> {
        timed("touch_client", async move {
            dispatch!(self, pool, {
                sqlx::query("UPDATE clients SET last_used_at = $1 WHERE client_id = $2")
                    .bind(now)
                    .bind(client_id)
                    .execute(pool)
                    .await?;
                // Its last use decides nothing: no announcement; this process forgets
                // the row once the change committed.
                self.remembered
                    .forget_row(&self.remembered.clients, client_id);
                Ok(())
            })
        })
        .await
    }

    async fn evict_oldest_unused_dynamic_client(
        &self,
        created_before: i64,
    ) -> StoreResult<Option<String>> {
        timed("evict_oldest_unused_dynamic_client", async move {
            notifying!(self, Change::Config, conn, {
                let row = sqlx::query(
                    "DELETE FROM clients WHERE client_id = (SELECT c.client_id FROM clients c \
                 WHERE c.kind = 'dynamic' AND c.last_used_at IS NULL AND c.created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = c.client_id) \
                 ORDER BY c.created_at, c.client_id LIMIT 1) RETURNING client_id",
                )
                .bind(created_before)
                .fetch_optional(conn)
                .await?;
                Ok(row.map(|r| r.get(0)))
            })
        })
        .await
    }

    async fn sweep_unused_dynamic_clients(&self, before: i64) -> StoreResult<u64> {
        timed("sweep_unused_dynamic_clients", async move {
        dispatch!(self, pool, {
            let r = sqlx::query("DELETE FROM clients WHERE kind = 'dynamic' AND last_used_at IS NULL AND created_at < $1").bind(before).execute(pool).await?;
            // Announced only when it deleted one: every instance sweeps every few
            // minutes, and an announcement makes every instance read again.
            if r.rows_affected() > 0 {
                self.announce(Change::Config).await?;
            }
            Ok(r.rows_affected())
        })
    })
        .await
    }
}
