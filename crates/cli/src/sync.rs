//! `ferry sync`: run a link now, see where links stand, and their history.

use crate::client::{Client, segment};
use crate::output::{Output, table};
use anyhow::{Result, bail};
use clap::Subcommand;
use ferry_proto::{LinkSyncStatus, SyncNow, SyncRun};
use reqwest::Method;

/// LINK is a peer connection id, COLLABORATION/WORKSPACE (names or ids), or a link key as
/// `ferry sync status` shows it.
#[derive(Subcommand, Debug)]
pub(crate) enum SyncCmd {
    /// Sync a link now: pull what its other side has for this instance.
    Now { link: String },
    /// Every link: which way data flows, the last run, whether one is running.
    Status,
    /// The latest runs of a link (or of all links), newest first.
    History {
        link: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

fn run_line(r: &SyncRun) -> String {
    format!(
        "{} {}: {} item(s), {} row(s), {} retracted, {} bytes",
        r.trigger, r.status, r.items_received, r.rows_received, r.items_retracted, r.bytes_received
    )
}

fn runs_table(runs: &[SyncRun]) -> comfy_table::Table {
    let mut t = table(&[
        "started",
        "link",
        "trigger",
        "status",
        "items",
        "rows",
        "retracted",
        "bytes",
        "errors",
    ]);
    for r in runs {
        let mut errors: Vec<String> = r
            .errors
            .iter()
            .map(|e| format!("{} {}: {} [{}]", e.title, e.origin_item, e.message, e.code))
            .collect();
        if let Some(m) = &r.message {
            errors.insert(0, m.clone());
        }
        t.add_row(vec![
            r.started_at.clone(),
            r.link.clone(),
            r.trigger.clone(),
            r.status.clone(),
            r.items_received.to_string(),
            r.rows_received.to_string(),
            r.items_retracted.to_string(),
            r.bytes_received.to_string(),
            errors.join("\n"),
        ]);
    }
    t
}

pub(crate) async fn sync(client: &Client, out: Output, cmd: SyncCmd) -> Result<()> {
    match cmd {
        SyncCmd::Now { link } => {
            let run: SyncRun = client
                .call(Method::POST, "/api/v1/sync/now", &SyncNow { link })
                .await?;
            let failed = run.status == "failed";
            out.show(&run, |r| runs_table(std::slice::from_ref(r)))?;
            if failed {
                bail!(
                    "the run failed: {}",
                    run.message.clone().unwrap_or_default()
                );
            }
            if !out.json {
                eprintln!("{}", run_line(&run));
            }
            Ok(())
        }
        SyncCmd::Status => {
            let links: Vec<LinkSyncStatus> = client.get("/api/v1/sync/status").await?;
            out.show(&links, |list| {
                let mut t = table(&["link", "name", "receives", "sends", "last run", "running"]);
                for l in list {
                    t.add_row(vec![
                        l.link.clone(),
                        l.name.clone(),
                        l.receives.to_string(),
                        l.sends.to_string(),
                        l.last_run.as_ref().map(run_line).unwrap_or_default(),
                        l.running.to_string(),
                    ]);
                }
                t
            })
        }
        SyncCmd::History { link, limit } => {
            let mut path = format!("/api/v1/sync/history?limit={limit}");
            if let Some(l) = link {
                path.push_str(&format!("&link={}", segment(&l)));
            }
            let runs: Vec<SyncRun> = client.get(&path).await?;
            out.show(&runs, |r| runs_table(r))
        }
    }
}
