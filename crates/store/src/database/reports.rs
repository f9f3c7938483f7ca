//! Reads for the operator's admin pages: searches over users, clients, grants and the
//! audit log, each bounded by a row limit, and the activity of the chart counted in
//! time buckets. Writes go through the ordinary store methods, called by the same
//! domain functions the command line uses.

use async_trait::async_trait;
use mcpgate_domain::store::{Reports, StoreResult};

use crate::timing::timed;

use sqlx::Row;

use super::clients::ClientRow;
use super::{Database, Error, Pool};
use crate::model::*;

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased, with the wildcards in `text` escaped.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl Reports for Database {
    async fn audit_events(&self, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        timed("audit_events", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, AuditEventRow>(
                    "SELECT * FROM audit_events ORDER BY seq DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(AuditEvent::from)
                .collect())
            })
        })
        .await
    }

    async fn search_users(&self, search: &str, limit: i64) -> StoreResult<Vec<User>> {
        timed("search_users", async move {
            let pattern = contains_pattern(search);
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, UserRow>(
                    "SELECT * FROM users WHERE LOWER(username) LIKE $1 ESCAPE '\\' \
                 OR LOWER(COALESCE(email, '')) LIKE $1 ESCAPE '\\' ORDER BY username LIMIT $2",
                )
                .bind(&pattern)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            })
        })
        .await
    }

    async fn search_clients(&self, search: &str, limit: i64) -> StoreResult<Vec<Client>> {
        timed("search_clients", async move {
            let pattern = contains_pattern(search);
            dispatch!(self, pool, {
                let rows = sqlx::query_as::<_, ClientRow>(
                    "SELECT * FROM clients WHERE LOWER(client_id) LIKE $1 ESCAPE '\\' \
                 OR LOWER(name) LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT $2",
                )
                .bind(&pattern)
                .bind(limit)
                .fetch_all(pool)
                .await?;
                Ok(rows.into_iter().map(Client::from).collect())
            })
        })
        .await
    }

    async fn search_grants(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<(GrantView, String)>> {
        timed("search_grants", async move {
        dispatch!(self, pool, {
            let rows = sqlx::query(
                "SELECT g.id, g.user_id, g.client_id, COALESCE(c.name, g.client_id) AS client_name, COALESCE(c.kind, 'unknown') AS client_kind, \
                 g.resource, g.scope, g.withheld, g.expires_at, g.created_at, g.last_used_at, COALESCE(u.username, g.user_id) AS username \
                 FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id LEFT JOIN users u ON u.id = g.user_id \
                 WHERE g.revoked_at IS NULL AND ($1 IS NULL OR g.user_id = $1) AND ($2 IS NULL OR g.client_id = $2) \
                 ORDER BY g.created_at DESC LIMIT $3",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let view = GrantView::from(<GrantViewRow as sqlx::FromRow<_>>::from_row(r)?);
                    Ok((view, r.try_get("username")?))
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(Error::from)
        })
    })
        .await
    }

    async fn grant_views(&self, user_id: Option<&str>) -> StoreResult<Vec<GrantView>> {
        timed("grant_views", async move {
        dispatch!(self, pool, {
            Ok(match user_id {
                Some(u) => sqlx::query_as::<_, GrantViewRow>(
                    "SELECT g.id, g.user_id, COALESCE(u.username, g.user_id) AS username, g.client_id, COALESCE(c.name, g.client_id) AS client_name, \
                     COALESCE(c.kind, 'unknown') AS client_kind, g.resource, g.scope, g.withheld, g.expires_at, g.created_at, g.last_used_at \
                     FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id LEFT JOIN users u ON u.id = g.user_id \
                     WHERE g.revoked_at IS NULL AND g.user_id = $1 ORDER BY g.created_at DESC",
                )
                .bind(u)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(GrantView::from)
                .collect(),
                None => sqlx::query_as::<_, GrantViewRow>(
                    "SELECT g.id, g.user_id, COALESCE(u.username, g.user_id) AS username, g.client_id, COALESCE(c.name, g.client_id) AS client_name, \
                     COALESCE(c.kind, 'unknown') AS client_kind, g.resource, g.scope, g.withheld, g.expires_at, g.created_at, g.last_used_at \
                     FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id LEFT JOIN users u ON u.id = g.user_id \
                     WHERE g.revoked_at IS NULL ORDER BY g.created_at DESC",
                )
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(GrantView::from)
                .collect(),
            })
        })
    })
        .await
    }

    async fn search_audit(&self, f: &AuditFilter, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        timed("search_audit", async move {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, AuditEventRow>(
                "SELECT * FROM audit_events WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR client_id = $2) \
                 AND ($3 IS NULL OR event = $3) AND at >= $4 AND at < $5 ORDER BY seq DESC LIMIT $6",
            )
            .bind(f.user_id.as_deref())
            .bind(f.client_id.as_deref())
            .bind(f.event.as_deref())
            .bind(f.from.unwrap_or(i64::MIN))
            .bind(f.to.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(AuditEvent::from)
            .collect())
        })
    })
        .await
    }

    async fn activity(&self, from: i64, width: i64, buckets: usize) -> StoreResult<Vec<Activity>> {
        timed("activity", async move {
        let width = width.max(1);
        let to = from.saturating_add(width.saturating_mul(buckets as i64));
        // Only the JSON accessor differs between the backends.
        let count = match self.pool {
            Pool::Sqlite(_) => "CAST(json_extract(detail, '$.count') AS BIGINT)",
            Pool::Postgres(_) => "CAST(detail::jsonb ->> 'count' AS BIGINT)",
        };
        // Only the constant accessor above is interpolated; every value is bound.
        let sql = format!(
            "SELECT (at - $1) / $2 AS bucket, \
             CAST(SUM(CASE WHEN event = 'tool_calls' THEN COALESCE({count}, 1) ELSE 0 END) AS BIGINT) AS calls, \
             CAST(SUM(CASE WHEN event = 'login_succeeded' THEN 1 ELSE 0 END) AS BIGINT) AS logins \
             FROM audit_events WHERE at >= $1 AND at < $3 AND event IN ('tool_calls', 'login_succeeded') \
             GROUP BY bucket"
        );
        let mut out = vec![Activity::default(); buckets];
        dispatch!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(from)
                .bind(width)
                .bind(to)
                .fetch_all(pool)
                .await?;
            for r in rows {
                let b: i64 = r.try_get("bucket")?;
                if let Some(slot) = usize::try_from(b).ok().and_then(|i| out.get_mut(i)) {
                    slot.tool_calls = r.try_get::<Option<i64>, _>("calls")?.unwrap_or(0);
                    slot.sign_ins = r.try_get::<Option<i64>, _>("logins")?.unwrap_or(0);
                }
            }
        });
        Ok(out)
    })
        .await
    }

    async fn calls_by_day(
        &self,
        user_id: Option<&str>,
        from: i64,
        days: usize,
    ) -> StoreResult<Vec<CallDay>> {
        timed("calls_by_day", async move {
        let to = from.saturating_add(86_400 * days as i64);
        // Only the JSON accessors differ between the backends.
        let (count, allowed) = match self.pool {
            Pool::Sqlite(_) => (
                "CAST(json_extract(detail, '$.count') AS BIGINT)",
                "json_extract(detail, '$.allowed') = 1",
            ),
            Pool::Postgres(_) => (
                "CAST(detail::jsonb ->> 'count' AS BIGINT)",
                "(detail::jsonb ->> 'allowed') = 'true'",
            ),
        };
        // Only the constant accessors above are interpolated; every value is bound.
        let sql = format!(
            "SELECT user_id, client_id, (at - $1) / 86400 AS day, \
             CAST(SUM(CASE WHEN {allowed} THEN COALESCE({count}, 1) ELSE 0 END) AS BIGINT) AS allowed, \
             CAST(SUM(CASE WHEN {allowed} THEN 0 ELSE COALESCE({count}, 1) END) AS BIGINT) AS refused \
             FROM audit_events WHERE event = 'tool_calls' AND at >= $1 AND at < $2 \
             AND user_id IS NOT NULL AND client_id IS NOT NULL AND ($3 IS NULL OR user_id = $3) \
             GROUP BY user_id, client_id, day"
        );
        dispatch!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(from)
                .bind(to)
                .bind(user_id)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let day: i64 = r.try_get("day")?;
                out.push(CallDay {
                    user_id: r.try_get("user_id")?,
                    client_id: r.try_get("client_id")?,
                    day: usize::try_from(day).unwrap_or(0),
                    allowed: r.try_get::<Option<i64>, _>("allowed")?.unwrap_or(0),
                    refused: r.try_get::<Option<i64>, _>("refused")?.unwrap_or(0),
                });
            }
            Ok(out)
        })
    })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Al"), "%al%");
        assert_eq!(contains_pattern("a%_\\"), "%a\\%\\_\\\\%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
