//! Authorization codes, refresh-token families and rotation, revocations.
//!
//! Codes and refresh tokens are spent by conditional `UPDATE`s, so two racing
//! requests cannot both win, whatever the number of processes.

use async_trait::async_trait;
use mcpgate_domain::store::{StoreResult, Tokens};

use crate::timing::timed;

use sqlx::Row;

use super::{Database, LOGIN_THROTTLE_MEMORY_SECS, Pool};
use crate::model::*;
use crate::notify::Change;

/// Writes a token family with `$conn`: a pool, or a transaction's connection (the
/// body compiles per backend inside [`dispatch!`]).
macro_rules! insert_family {
    ($conn:expr, $f:expr) => {{
        let f: &TokenFamily = $f;
        sqlx::query("INSERT INTO token_families (id, grant_id, client_id, user_id, scope, resource, created_at, expires_at, revoked_at, revoked_reason, dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)")
            .bind(&f.id).bind(&f.grant_id).bind(&f.client_id).bind(&f.user_id).bind(f.scope.to_string()).bind(&f.resource).bind(f.created_at).bind(f.expires_at).bind(&f.dpop_jkt)
            .execute($conn).await?;
    }};
}

/// Writes an unrotated refresh token with `$conn` (see [`insert_family!`]).
macro_rules! insert_refresh {
    ($conn:expr, $t:expr) => {{
        let t: &RefreshToken = $t;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at, rotated_at, grace_answer, grace_until) VALUES ($1, $2, $3, $4, NULL, NULL, NULL)")
            .bind(&t.token_hash).bind(&t.family_id).bind(t.created_at).bind(t.expires_at)
            .execute($conn).await?;
    }};
}

#[async_trait]
impl Tokens for Database {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        timed("insert_code", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO auth_codes (code_hash, client_id, user_id, grant_id, redirect_uri, scope, resource, code_challenge, created_at, expires_at, used_at, family_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)")
                .bind(&c.code_hash).bind(&c.client_id).bind(&c.user_id).bind(&c.grant_id).bind(&c.redirect_uri)
                .bind(c.scope.to_string()).bind(&c.resource).bind(&c.code_challenge).bind(c.created_at).bind(c.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redeem> {
        timed("redeem_code", async move {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1")
                .bind(now).bind(code_hash).execute(pool).await?;
            let row =
                sqlx::query_as::<_, AuthCodeRow>("SELECT * FROM auth_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(pool)
                    .await?
                    .map(Into::into);
            Ok(match (r.rows_affected(), row) {
                (1, Some(c)) => Redeem::Redeemed(c),
                (_, Some(c)) => Redeem::Spent(c),
                (_, None) => Redeem::NotFound,
            })
        })
    })
        .await
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        timed("code", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, AuthCodeRow>(
                    "SELECT * FROM auth_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(pool)
                .await?
                .map(Into::into))
            })
        })
        .await
    }

    async fn redeem_code_into_family(
        &self,
        code_hash: &str,
        now: i64,
        family: &TokenFamily,
        first: &RefreshToken,
    ) -> StoreResult<Exchange> {
        timed("redeem_code_into_family", async move {
        dispatch!(self, pool, {
            let mut tx = pool.begin().await?;
            let r = sqlx::query("UPDATE auth_codes SET used_at = $1, family_id = $2 WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $1")
                .bind(now).bind(&family.id).bind(code_hash).execute(&mut *tx).await?;
            if r.rows_affected() != 1 {
                return Ok(Exchange::CodeSpent);
            }
            // The grant is marked used and its state read in one statement, under the
            // one (exclusive) lock a revocation or a consent also takes: reading under
            // a shared lock and then writing made two exchanges of one grant deadlock
            // on PostgreSQL. A revoked grant's mark is rolled back with the rest.
            let grant: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
                "UPDATE grants SET last_used_at = $1 WHERE id = $2 RETURNING revoked_at, expires_at",
            )
            .bind(now)
            .bind(&family.grant_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((None, grant_ends)) = grant else {
                return Ok(Exchange::GrantRevoked);
            };
            let ends = grant_ends.map_or(family.expires_at, |e| e.min(family.expires_at));
            let family = &TokenFamily {
                expires_at: ends,
                ..family.clone()
            };
            let first = &RefreshToken {
                expires_at: first.expires_at.min(ends),
                ..first.clone()
            };
            insert_family!(&mut *tx, family);
            insert_refresh!(&mut *tx, first);
            tx.commit().await?;
            Ok(Exchange::Issued { ends })
        })
    })
        .await
    }

    async fn delete_expired(&self, now: i64, revocation_cover: i64) -> StoreResult<()> {
        timed("delete_expired", async move {
            dispatch!(self, pool, {
                // Spent codes are kept past expiry for a while, so a late replay is still
                // recognised as one (and revokes what the code issued).
                sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
                    .bind(now - 3600)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM auth_requests WHERE expires_at < $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM revocations WHERE until_at < $1 AND created_at < $2")
                    .bind(now)
                    .bind(now - revocation_cover)
                    .execute(pool)
                    .await?;
                // A grant past the end its person chose is ended like a revoked one (its
                // tokens expired with it: nothing to revoke).
                sqlx::query("UPDATE token_families SET revoked_at = $1, revoked_reason = 'grant_ended' WHERE revoked_at IS NULL AND grant_id IN (SELECT id FROM grants WHERE revoked_at IS NULL AND expires_at <= $1)")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("UPDATE grants SET revoked_at = expires_at WHERE revoked_at IS NULL AND expires_at <= $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM seen_jtis WHERE expires_at < $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM connect_requests WHERE expires_at <= $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM connect_attempts WHERE expires_at <= $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                sqlx::query("DELETE FROM idp_logins WHERE expires_at <= $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                // A name's failed sign-ins are forgotten after a quiet day (`locked_until`
                // is the last failure, or the end of its lock): strangers' names tried
                // once must not pile up.
                sqlx::query("DELETE FROM login_throttle WHERE locked_until < $1")
                    .bind(now - LOGIN_THROTTLE_MEMORY_SECS)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn insert_family(&self, f: &TokenFamily) -> StoreResult<()> {
        timed("insert_family", async move {
            dispatch!(self, pool, {
                insert_family!(pool, f);
                Ok(())
            })
        })
        .await
    }

    async fn family(&self, id: &str) -> StoreResult<Option<TokenFamily>> {
        timed("family", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, FamilyRow>("SELECT * FROM token_families WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                        .map(Into::into),
                )
            })
        })
        .await
    }

    async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> StoreResult<bool> {
        timed("revoke_family", async move {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
                .bind(now).bind(reason).bind(id).execute(pool).await?;
            Ok(r.rows_affected() == 1)
        })
    })
        .await
    }

    async fn insert_refresh(&self, t: &RefreshToken) -> StoreResult<()> {
        timed("insert_refresh", async move {
            dispatch!(self, pool, {
                insert_refresh!(pool, t);
                Ok(())
            })
        })
        .await
    }

    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        timed("refresh", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, RefreshRow>(
                    "SELECT * FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
                .map(Into::into))
            })
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: i64,
        grace_answer: &str,
        grace_until: i64,
        next: &RefreshToken,
    ) -> StoreResult<bool> {
        timed("rotate_refresh", async move {
        dispatch!(self, pool, {
            let mut tx = pool.begin().await?;
            let r = sqlx::query("UPDATE refresh_tokens SET rotated_at = $1, grace_answer = $2, grace_until = $3 WHERE token_hash = $4 AND rotated_at IS NULL AND family_id = $5")
                .bind(now).bind(grace_answer).bind(grace_until).bind(token_hash).bind(&next.family_id).execute(&mut *tx).await?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            insert_refresh!(&mut *tx, next);
            tx.commit().await?;
            Ok(true)
        })
    })
        .await
    }

    async fn insert_revocation(&self, handle: &str, until: i64, now: i64) -> StoreResult<()> {
        timed("insert_revocation", async move {
            notifying!(self, Change::Revocations, conn, {
                sqlx::query(
                    "INSERT INTO revocations (handle, until_at, created_at) VALUES ($1, $2, $3)",
                )
                .bind(handle)
                .bind(until)
                .bind(now)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn revocations_since(&self, after: i64) -> StoreResult<Vec<RevocationRow>> {
        timed("revocations_since", async move {
        dispatch!(self, pool, {
            let rows = sqlx::query(
                "SELECT seq, handle, until_at, created_at FROM revocations WHERE seq > $1 ORDER BY seq",
            )
            .bind(after)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| RevocationRow {
                    seq: r.get(0),
                    handle: r.get(1),
                    until: r.get(2),
                    created_at: r.get(3),
                })
                .collect())
        })
    })
        .await
    }
}
