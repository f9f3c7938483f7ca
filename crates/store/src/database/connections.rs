//! Connected accounts: people's tokens for upstreams, sealed under the key-encryption
//! key as signing keys are (the row's name binds each sealed value to its row), and
//! the single-use connect pages.

use async_trait::async_trait;
use mcpgate_domain::store::{Connections, StoreResult};
use sqlx::Row;

use super::{Database, Pool};
use crate::model::*;
use crate::timing::timed;

/// The name a token is sealed under: a sealed value moved to another row does not open.
fn row(user_id: &str, upstream: &str) -> String {
    format!("connection:{user_id}:{upstream}")
}

fn client_row(upstream: &str, issuer: &str) -> String {
    format!("upstream-client:{upstream}:{issuer}")
}

fn attempt_row(state_hash: &str) -> String {
    format!("connect-attempt:{state_hash}")
}

#[async_trait]
impl Connections for Database {
    async fn put_connection(
        &self,
        user_id: &str,
        upstream: &str,
        secret: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sealed = self.seal(&row(user_id, upstream), secret).await?;
        timed("put_connection", async move {
            dispatch!(self, pool, {
                sqlx::query(
                    "INSERT INTO connections (user_id, upstream, secret, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, upstream) DO UPDATE SET secret = $3, created_at = $4, last_used_at = NULL, \
                     generation = connections.generation + 1, refreshing_until = NULL",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(&sealed)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn connection(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> StoreResult<Option<StoredConnection>> {
        let stored: Option<(String, i64)> = timed("connection", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query(
                    "SELECT secret, generation FROM connections WHERE user_id = $1 AND upstream = $2",
                )
                .bind(user_id)
                .bind(upstream)
                .fetch_optional(pool)
                .await?
                .map(|r| (r.get(0), r.get(1))))
            })
        })
        .await?;
        match stored {
            None => Ok(None),
            Some((s, generation)) => Ok(Some(StoredConnection {
                secret: self.opener().await?.open(&row(user_id, upstream), &s)?,
                generation,
            })),
        }
    }

    async fn claim_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        generation: i64,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        timed("claim_refresh", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "UPDATE connections SET refreshing_until = $5 WHERE user_id = $1 AND upstream = $2 \
                     AND generation = $3 AND (refreshing_until IS NULL OR refreshing_until <= $4)",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(generation)
                .bind(now)
                .bind(until)
                .execute(pool)
                .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn finish_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        generation: i64,
        until: i64,
        secret: &str,
    ) -> StoreResult<bool> {
        let sealed = self.seal(&row(user_id, upstream), secret).await?;
        timed("finish_refresh", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "UPDATE connections SET secret = $4, generation = generation + 1, refreshing_until = NULL \
                     WHERE user_id = $1 AND upstream = $2 AND generation = $3 AND refreshing_until = $5",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(generation)
                .bind(&sealed)
                .bind(until)
                .execute(pool)
                .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn release_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        generation: i64,
    ) -> StoreResult<()> {
        timed("release_refresh", async move {
            dispatch!(self, pool, {
                sqlx::query(
                    "UPDATE connections SET refreshing_until = NULL \
                     WHERE user_id = $1 AND upstream = $2 AND generation = $3",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(generation)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn upstream_client(
        &self,
        upstream: &str,
        issuer: &str,
    ) -> StoreResult<Option<UpstreamClient>> {
        let stored: Option<(String, Option<String>)> = timed("upstream_client", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query(
                    "SELECT client_id, secret FROM upstream_clients WHERE upstream = $1 AND issuer = $2",
                )
                .bind(upstream)
                .bind(issuer)
                .fetch_optional(pool)
                .await?
                .map(|r| (r.get(0), r.get(1))))
            })
        })
        .await?;
        let Some((client_id, secret)) = stored else {
            return Ok(None);
        };
        let secret = match secret {
            None => None,
            Some(s) => Some(
                self.opener()
                    .await?
                    .open(&client_row(upstream, issuer), &s)?,
            ),
        };
        Ok(Some(UpstreamClient { client_id, secret }))
    }

    async fn put_upstream_client(
        &self,
        upstream: &str,
        issuer: &str,
        client: &UpstreamClient,
        now: i64,
    ) -> StoreResult<UpstreamClient> {
        let sealed = match &client.secret {
            None => None,
            Some(s) => Some(self.seal(&client_row(upstream, issuer), s).await?),
        };
        timed("put_upstream_client", async move {
            dispatch!(self, pool, {
                sqlx::query(
                    "INSERT INTO upstream_clients (upstream, issuer, client_id, secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (upstream, issuer) DO NOTHING",
                )
                .bind(upstream)
                .bind(issuer)
                .bind(&client.client_id)
                .bind(&sealed)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(self
            .upstream_client(upstream, issuer)
            .await?
            .unwrap_or_else(|| client.clone()))
    }

    async fn insert_connect_attempt(
        &self,
        state_hash: &str,
        a: &ConnectAttempt,
        keep: i64,
    ) -> StoreResult<()> {
        let sealed = self.seal(&attempt_row(state_hash), &a.verifier).await?;
        timed("insert_connect_attempt", async move {
            dispatch!(self, pool, {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO connect_attempts (state_hash, user_id, upstream, verifier, request_hash, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(state_hash)
                .bind(&a.user_id)
                .bind(&a.upstream)
                .bind(&sealed)
                .bind(&a.request_hash)
                .bind(a.expires_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM connect_attempts WHERE user_id = $1 AND state_hash NOT IN \
                     (SELECT state_hash FROM connect_attempts WHERE user_id = $1 \
                      ORDER BY expires_at DESC LIMIT $2)",
                )
                .bind(&a.user_id)
                .bind(keep)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    async fn take_connect_attempt(&self, state_hash: &str) -> StoreResult<Option<ConnectAttempt>> {
        let taken = timed("take_connect_attempt", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query(
                    "DELETE FROM connect_attempts WHERE state_hash = $1 \
                     RETURNING user_id, upstream, verifier, request_hash, expires_at",
                )
                .bind(state_hash)
                .fetch_optional(pool)
                .await?
                .map(|r| ConnectAttempt {
                    user_id: r.get(0),
                    upstream: r.get(1),
                    verifier: r.get(2),
                    request_hash: r.get(3),
                    expires_at: r.get(4),
                }))
            })
        })
        .await?;
        match taken {
            None => Ok(None),
            Some(mut a) => {
                a.verifier = self
                    .opener()
                    .await?
                    .open(&attempt_row(state_hash), &a.verifier)?;
                Ok(Some(a))
            }
        }
    }

    async fn touch_connection(&self, user_id: &str, upstream: &str, now: i64) -> StoreResult<()> {
        timed("touch_connection", async move {
            dispatch!(self, pool, {
                sqlx::query(
                    "UPDATE connections SET last_used_at = $3 WHERE user_id = $1 AND upstream = $2",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_connection(&self, user_id: &str, upstream: &str) -> StoreResult<bool> {
        timed("delete_connection", async move {
            dispatch!(self, pool, {
                let r = sqlx::query("DELETE FROM connections WHERE user_id = $1 AND upstream = $2")
                    .bind(user_id)
                    .bind(upstream)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    async fn delete_connections_of(&self, user_id: &str) -> StoreResult<u64> {
        timed("delete_connections_of", async move {
            dispatch!(self, pool, {
                let r = sqlx::query("DELETE FROM connections WHERE user_id = $1")
                    .bind(user_id)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected())
            })
        })
        .await
    }

    async fn connections_of(&self, user_id: &str) -> StoreResult<Vec<Connection>> {
        timed("connections_of", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT upstream, created_at, last_used_at FROM connections WHERE user_id = $1 ORDER BY upstream",
                )
                .bind(user_id)
                .fetch_all(pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| Connection {
                        upstream: r.get(0),
                        created_at: r.get(1),
                        last_used_at: r.get(2),
                    })
                    .collect())
            })
        })
        .await
    }

    async fn insert_connect_request(
        &self,
        handle_hash: &str,
        c: &ConnectRequest,
        keep: i64,
    ) -> StoreResult<()> {
        timed("insert_connect_request", async move {
            dispatch!(self, pool, {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO connect_requests (handle_hash, user_id, upstream, elicitation_id, expires_at, scope) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(handle_hash)
                .bind(&c.user_id)
                .bind(&c.upstream)
                .bind(&c.elicitation_id)
                .bind(c.expires_at)
                .bind(&c.scope)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM connect_requests WHERE user_id = $1 AND upstream = $2 AND handle_hash NOT IN \
                     (SELECT handle_hash FROM connect_requests WHERE user_id = $1 AND upstream = $2 \
                      ORDER BY expires_at DESC LIMIT $3)",
                )
                .bind(&c.user_id)
                .bind(&c.upstream)
                .bind(keep)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    async fn connect_request(&self, handle_hash: &str) -> StoreResult<Option<ConnectRequest>> {
        timed("connect_request", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query(
                    "SELECT user_id, upstream, elicitation_id, expires_at, scope FROM connect_requests WHERE handle_hash = $1",
                )
                .bind(handle_hash)
                .fetch_optional(pool)
                .await?
                .map(|r| ConnectRequest {
                    user_id: r.get(0),
                    upstream: r.get(1),
                    elicitation_id: r.get(2),
                    expires_at: r.get(3),
                    scope: r.get(4),
                }))
            })
        })
        .await
    }

    async fn take_connect_request(&self, handle_hash: &str) -> StoreResult<bool> {
        timed("take_connect_request", async move {
            dispatch!(self, pool, {
                let r = sqlx::query("DELETE FROM connect_requests WHERE handle_hash = $1")
                    .bind(handle_hash)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }
}
