//! `mcpgate audit`: recent audit events, oldest first; `--json` prints one JSON object
//! per line.

use super::Context;
use super::views::AuditRow;

pub async fn run(ctx: &Context, limit: i64, json: bool) -> anyhow::Result<()> {
    let events = ctx
        .store()
        .await?
        .audit_events(limit.clamp(1, 10_000))
        .await?;
    for e in events.iter().rev() {
        let row = AuditRow::from(e);
        match json {
            true => println!("{}", serde_json::to_string(&row)?),
            false => println!("{row}"),
        }
    }
    Ok(())
}
