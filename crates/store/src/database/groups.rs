//! Groups of people, their memberships and the scopes restricted to them.
//! Memberships are read at each consent, exchange, refresh and introspection that
//! meets a restricted scope, so a change of one needs no announcement (what it revokes
//! is announced by the revocation it writes). The restrictions are remembered
//! ([`crate::remembered`]): a step that changes them announces a
//! [`Change::Config`](crate::Change::Config).

use async_trait::async_trait;
use mcpgate_domain::store::{Groups, StoreResult};
use sqlx::Row;

use super::{Database, Pool};
use crate::model::*;
use crate::notify::Change;
use crate::remembered::List;
use crate::timing::timed;

#[async_trait]
impl Groups for Database {
    async fn groups(&self) -> StoreResult<Vec<Group>> {
        timed("groups", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, GroupRow>("SELECT * FROM user_groups ORDER BY name")
                        .fetch_all(pool)
                        .await?
                        .into_iter()
                        .map(Into::into)
                        .collect(),
                )
            })
        })
        .await
    }

    async fn group(&self, name: &str) -> StoreResult<Option<Group>> {
        timed("group", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, GroupRow>("SELECT * FROM user_groups WHERE name = $1")
                        .bind(name)
                        .fetch_optional(pool)
                        .await?
                        .map(Into::into),
                )
            })
        })
        .await
    }

    async fn insert_group(&self, g: &Group) -> StoreResult<()> {
        timed("insert_group", async move {
            dispatch!(self, pool, {
                sqlx::query(
                    "INSERT INTO user_groups (name, description, provider, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&g.name)
                .bind(&g.description)
                .bind(&g.provider)
                .bind(g.created_at)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_group(&self, name: &str) -> StoreResult<Option<Vec<String>>> {
        timed("delete_group", async move {
            notifying!(self, Change::Config, conn, {
                let mut tx = sqlx::Acquire::begin(conn).await?;
                let members: Vec<String> =
                    sqlx::query("SELECT DISTINCT user_id FROM group_members WHERE group_name = $1")
                        .bind(name)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                let r = sqlx::query("DELETE FROM user_groups WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() != 1 {
                    return Ok(None);
                }
                sqlx::query("DELETE FROM group_members WHERE group_name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM scope_groups WHERE group_name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(members))
            })
        })
        .await
    }

    async fn add_member(
        &self,
        group: &str,
        user_id: &str,
        source: MemberSource,
        now: i64,
    ) -> StoreResult<bool> {
        timed("add_member", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "INSERT INTO group_members (group_name, user_id, source, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(group)
                .bind(user_id)
                .bind(source.as_str())
                .bind(now)
                .execute(pool)
                .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn remove_member(
        &self,
        group: &str,
        user_id: &str,
        source: MemberSource,
    ) -> StoreResult<bool> {
        timed("remove_member", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "DELETE FROM group_members WHERE group_name = $1 AND user_id = $2 AND source = $3",
                )
                .bind(group)
                .bind(user_id)
                .bind(source.as_str())
                .execute(pool)
                .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn members(&self, group: &str) -> StoreResult<Vec<Member>> {
        timed("members", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT m.user_id, COALESCE(u.username, m.user_id), m.source FROM group_members m \
                     LEFT JOIN users u ON u.id = m.user_id WHERE m.group_name = $1 \
                     ORDER BY 2, m.source",
                )
                .bind(group)
                .fetch_all(pool)
                .await?;
                Ok(rows
                    .iter()
                    .filter_map(|r| {
                        Some(Member {
                            user_id: r.get(0),
                            username: r.get(1),
                            source: MemberSource::parse(r.get(2))?,
                        })
                    })
                    .collect())
            })
        })
        .await
    }

    async fn groups_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        timed("groups_of", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT DISTINCT group_name FROM group_members WHERE user_id = $1 ORDER BY group_name",
                )
                .bind(user_id)
                .fetch_all(pool)
                .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }

    async fn scope_groups(&self) -> StoreResult<Vec<(String, String)>> {
        let read = timed("scope_groups", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT scope, group_name FROM scope_groups ORDER BY scope, group_name",
                )
                .fetch_all(pool)
                .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        });
        self.remembered.list(List::Restrictions, read).await
    }

    async fn set_scope_groups(&self, scope: &str, groups: &[String]) -> StoreResult<()> {
        timed("set_scope_groups", async move {
            notifying!(self, Change::Config, conn, {
                let mut tx = sqlx::Acquire::begin(conn).await?;
                sqlx::query("DELETE FROM scope_groups WHERE scope = $1")
                    .bind(scope)
                    .execute(&mut *tx)
                    .await?;
                for g in groups {
                    sqlx::query("INSERT INTO scope_groups (scope, group_name) VALUES ($1, $2)")
                        .bind(scope)
                        .bind(g)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }
}
