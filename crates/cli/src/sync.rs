//! `ferry sync`: run a link now, see where links stand, and their history.

use crate::client::{Client, segment};
use crate::output::{Output, table};
use anyhow::{Result, bail};
use clap::Subcommand;
use ferry_proto::{LinkSyncStatus, SetSchedule, SyncNow, SyncRun, SyncSchedule};
use reqwest::Method;

/// LINK is a peer connection id, COLLABORATION/WORKSPACE (names or ids), or a link key as
/// `ferry sync status` shows it.
#[derive(Subcommand, Debug)]
pub(crate) enum SyncCmd {
    /// Sync a link now: pull what its other side has for this instance.
    Now {
        /// The link: a peer connection id, COLLABORATION/WORKSPACE (names or ids), a workspace name
        /// alone when only one collaboration has it, or a link key (`peer:ID`, `collab:C:W`) as
        /// `sync status` shows.
        link: String,
        /// Answer at once with the run submitted; `ferry sync history LINK` tells how it went.
        #[arg(long)]
        no_wait: bool,
    },
    /// Every link: which way data flows, the last run, whether one is running.
    Status,
    /// When each link syncs: interval, start, paused, next run.
    Schedules,
    /// Set a link's schedule: every 1h to 24h (default 24h), from a first run time.
    Schedule {
        /// The link: a peer connection id, COLLABORATION/WORKSPACE (names or ids), a workspace name
        /// alone when only one collaboration has it, or a link key (`peer:ID`, `collab:C:W`) as
        /// `sync status` shows.
        link: String,
        /// Interval, e.g. 6h or 90m (1h to 24h).
        #[arg(long)]
        every: Option<String>,
        /// RFC 3339 time of the first run, e.g. 2026-11-23T06:00:00Z.
        #[arg(long)]
        start: Option<String>,
    },
    /// Stop a link's scheduled runs (on-demand and realtime runs still happen).
    Pause {
        /// The link: a peer connection id, COLLABORATION/WORKSPACE (names or ids), a workspace name
        /// alone when only one collaboration has it, or a link key (`peer:ID`, `collab:C:W`) as
        /// `sync status` shows.
        link: String,
    },
    /// Resume a link's scheduled runs.
    Resume {
        /// The link: a peer connection id, COLLABORATION/WORKSPACE (names or ids), a workspace name
        /// alone when only one collaboration has it, or a link key (`peer:ID`, `collab:C:W`) as
        /// `sync status` shows.
        link: String,
    },
    /// The latest runs of a link (or of all links), newest first.
    History {
        /// The link: a peer connection id, COLLABORATION/WORKSPACE (names or ids), a workspace name
        /// alone when only one collaboration has it, or a link key (`peer:ID`, `collab:C:W`) as
        /// `sync status` shows.
        link: Option<String>,
        /// How many runs to show, newest first.
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

/// Items, rows and bytes a run moved: received by a receive run, sent by a send run.
fn moved(r: &SyncRun) -> [i64; 3] {
    match r.direction.as_str() {
        "send" => [r.items_sent, r.rows_sent, r.bytes_sent],
        _ => [r.items_received, r.rows_received, r.bytes_received],
    }
}

fn runs_table(runs: &[SyncRun]) -> comfy_table::Table {
    let mut t = table(&[
        "started",
        "link",
        "direction",
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
        let [items, rows, bytes] = moved(r);
        t.add_row(vec![
            r.started_at.clone(),
            r.link.clone(),
            r.direction.clone(),
            r.trigger.clone(),
            r.status.clone(),
            items.to_string(),
            rows.to_string(),
            r.items_retracted.to_string(),
            bytes.to_string(),
            errors.join("\n"),
        ]);
    }
    t
}

fn schedules_table(list: &Vec<SyncSchedule>) -> comfy_table::Table {
    let mut t = table(&["link", "every", "start", "paused", "next run", "set here"]);
    for s in list {
        t.add_row(vec![
            s.link.clone(),
            format!("{}h{:02}m", s.every_secs / 3600, s.every_secs % 3600 / 60),
            s.start_at.clone().unwrap_or_default(),
            s.paused.to_string(),
            s.next_run.clone().unwrap_or_default(),
            if s.owned {
                "yes"
            } else {
                "no: the guests set it"
            }
            .to_string(),
        ]);
    }
    t
}

pub(crate) async fn set(client: &Client, out: Output, body: SetSchedule) -> Result<()> {
    let start_in_past = body
        .start
        .as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| t < jiff::Timestamp::now());
    let schedule: SyncSchedule = client
        .call(Method::PUT, "/api/v1/sync/schedules", &body)
        .await?;
    let shown = out.show(&schedule, |s| schedules_table(&vec![s.clone()]));
    if start_in_past && out.for_people() {
        eprintln!(
            "The start is in the past: runs follow it every interval, so the next run is at {}.",
            schedule.next_run.as_deref().unwrap_or("(none: paused)")
        );
    }
    shown
}

pub(crate) async fn sync(client: &Client, out: Output, cmd: SyncCmd) -> Result<()> {
    match cmd {
        SyncCmd::Now { link, no_wait } => {
            let body = SyncNow {
                link,
                wait: !no_wait,
            };
            let run: SyncRun = client.call(Method::POST, "/api/v1/sync/now", &body).await?;
            let failed = run.status == "failed";
            out.show(&run, |r| runs_table(std::slice::from_ref(r)))?;
            if failed {
                bail!(
                    "the run failed: {}",
                    run.message.clone().unwrap_or_default()
                );
            }
            if out.for_people() && run.status == "submitted" {
                eprintln!(
                    "Submitted run {}; `ferry sync history {}` tells how it goes.",
                    run.id, run.link
                );
            } else if out.for_people() {
                eprintln!("{}", crate::output::for_terminal(&run_line(&run)));
            }
            Ok(())
        }
        SyncCmd::Status => {
            let links: Vec<LinkSyncStatus> = client.get("/api/v1/sync/status").await?;
            out.show(&links, |list| {
                let mut t = table(&[
                    "link",
                    "name",
                    "receives",
                    "sends",
                    "last run",
                    "last run that moved data",
                    "running",
                ]);
                for l in list {
                    let moved = match (&l.last_data_run, &l.last_run) {
                        (Some(run), _) => run_line(run),
                        (None, Some(_)) => "the last run".into(),
                        (None, None) => String::new(),
                    };
                    t.add_row(vec![
                        l.link.clone(),
                        l.name.clone(),
                        l.receives.to_string(),
                        l.sends.to_string(),
                        l.last_run.as_ref().map(run_line).unwrap_or_default(),
                        moved,
                        l.running.to_string(),
                    ]);
                }
                t
            })
        }
        SyncCmd::Schedules => {
            let list: Vec<SyncSchedule> = client.get("/api/v1/sync/schedules").await?;
            out.show(&list, schedules_table)
        }
        SyncCmd::Schedule { link, every, start } => {
            set(
                client,
                out,
                SetSchedule {
                    link,
                    every,
                    start,
                    paused: None,
                },
            )
            .await
        }
        SyncCmd::Pause { link } => {
            set(
                client,
                out,
                SetSchedule {
                    link,
                    every: None,
                    start: None,
                    paused: Some(true),
                },
            )
            .await
        }
        SyncCmd::Resume { link } => {
            set(
                client,
                out,
                SetSchedule {
                    link,
                    every: None,
                    start: None,
                    paused: Some(false),
                },
            )
            .await
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
