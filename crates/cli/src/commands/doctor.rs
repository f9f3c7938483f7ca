//! `mcpgate doctor`: where each recent client's connection stopped, step by step, with
//! what it usually means.

use mcpgate_domain::flows::doctor::{self, ClientReport};
use serde_json::json;

use super::Context;

pub async fn run(ctx: &Context, client: Option<String>, json: bool) -> anyhow::Result<()> {
    let a = ctx.authority().await?;
    let reports = doctor::report(&a, client.as_deref()).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "clients": reports }))?
        );
        return Ok(());
    }
    if reports.is_empty() {
        println!("no client connected in the last week");
    }
    for r in &reports {
        print(r);
    }
    Ok(())
}

fn print(r: &ClientReport) {
    let name = r.client_name.as_deref().unwrap_or("(removed)");
    println!("{name}  {}", r.client_id);
    for s in &r.steps {
        let mark = match s.ok {
            Some(true) => "ok",
            Some(false) => "REFUSED",
            None => "pending",
        };
        println!(
            "  {}  {:<9} {:<8} {}",
            mcpgate_server::pages::when(Some(s.at)),
            s.step.as_str(),
            mark,
            s.detail
        );
    }
    match (&r.stopped_at, &r.advice) {
        (None, _) => println!("  connected: the client made a successful call"),
        (Some(step), advice) => {
            println!("  stopped at: {}", step.as_str());
            if let Some(a) = advice {
                println!("  {a}");
            }
        }
    }
    println!();
}
