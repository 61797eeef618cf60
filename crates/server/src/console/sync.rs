//! Sync: every link on one page (which way each data type flows, the schedule and next run, the
//! last run and whether one runs now), "Sync now" whose progress the page follows without a
//! reload (`console.js` polls `/sync/live`), a schedule per link this instance owns, and a
//! link's history of runs.

use super::layout::{Checked, csrf_field, failure, failure_page, page, paged};
use super::session::SignedIn;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_node::sessions::Session;
use ferry_proto::{LinkSyncStatus, Role, SetSchedule, SyncNow, SyncRun, SyncSchedule};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Schedule intervals offered, as `set_schedule` reads them.
const EVERY: [(&str, &str); 6] = [
    ("1h", "every hour"),
    ("2h", "every 2 hours"),
    ("4h", "every 4 hours"),
    ("6h", "every 6 hours"),
    ("12h", "every 12 hours"),
    ("24h", "every 24 hours"),
];

fn last_run_text(run: &SyncRun) -> String {
    let moved = format!(
        "{} items and {} rows in, {} items and {} rows out",
        run.items_received, run.rows_received, run.items_sent, run.rows_sent
    );
    match &run.ended_at {
        Some(ended) => format!("{ended} · {moved}"),
        None => format!("started {}", run.started_at),
    }
}

async fn render(
    node: &Node,
    session: &Session,
    said: Option<Markup>,
    status: StatusCode,
) -> Response {
    let caller = &session.caller;
    let loaded = tokio::try_join!(
        ferry_node::sync::status::sync_status(node, caller),
        ferry_node::sync::status::list_schedules(node, caller),
        ferry_node::spaces::list_spaces(node, caller),
    );
    let (links, schedules, spaces) = match loaded {
        Ok(found) => found,
        Err(e) => return failure_page(node, session, "Sync", &e),
    };
    // What each link carries each way, per data type, as its connection or workspace says.
    let peers = match caller.role {
        Role::Admin => ferry_node::peers::list_peers(node, caller)
            .await
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let flows: HashMap<String, Vec<(String, &'static str)>> = peers
        .iter()
        .map(|p| (format!("peer:{}", p.id), per_type(&p.sends, &p.receives)))
        .chain(
            spaces
                .iter()
                .flat_map(|s| s.links.iter())
                .filter(|l| l.kind == "collaboration")
                .map(|l| {
                    let all = [
                        "datasets".to_string(),
                        "features".to_string(),
                        "files".to_string(),
                    ];
                    let sends = matches!(l.mode.as_str(), "send" | "send_receive");
                    let receives = matches!(l.mode.as_str(), "receive" | "send_receive");
                    let pick = |on: bool| if on { all.to_vec() } else { Vec::new() };
                    (l.link.clone(), per_type(&pick(sends), &pick(receives)))
                }),
        )
        .collect();
    let schedules: HashMap<&str, &SyncSchedule> =
        schedules.iter().map(|s| (s.link.as_str(), s)).collect();
    let admin = caller.role == Role::Admin;
    let body = html! {
        h1 { "Sync" }
        @if let Some(said) = said { (said) }
        @if links.is_empty() {
            p.empty { "No link yet: peer connections and collaboration workspaces appear here once approved." }
        } @else {
            table.list #links data-live="/sync/live" {
                thead { tr {
                    th { "Link" } th { "Flow" } th { "Schedule" } th { "Last run" } th { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for link in &links {
                        (link_row(link, flows.get(&link.link), schedules.get(link.link.as_str()).copied(), admin, session))
                    }
                }
            }
        }
    };
    (
        status,
        Html(page(node, Some(session), "Sync", body).into_string()),
    )
        .into_response()
}

/// Each data type with its arrow: `⇄` both ways, `←` received, `→` sent.
fn per_type(sends: &[String], receives: &[String]) -> Vec<(String, &'static str)> {
    ["datasets", "features", "files"]
        .into_iter()
        .filter_map(|kind| {
            let (out, into) = (
                sends.iter().any(|s| s == kind),
                receives.iter().any(|r| r == kind),
            );
            let arrow = match (out, into) {
                (true, true) => "⇄",
                (false, true) => "←",
                (true, false) => "→",
                (false, false) => return None,
            };
            Some((kind.to_string(), arrow))
        })
        .collect()
}

/// How long ago the last run ended, for people.
fn lag(run: &SyncRun) -> Option<String> {
    let ended: jiff::Timestamp = run.ended_at.as_deref()?.parse().ok()?;
    let secs = (jiff::Timestamp::now() - ended).get_seconds().max(0);
    Some(match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    })
}

fn link_row(
    link: &LinkSyncStatus,
    flows: Option<&Vec<(String, &'static str)>>,
    schedule: Option<&SyncSchedule>,
    admin: bool,
    session: &Session,
) -> Markup {
    let flow = match (link.receives, link.sends) {
        (true, true) => "⇄ both ways",
        (true, false) => "← receives",
        (false, true) => "→ sends",
        (false, false) => "nothing flows now",
    };
    html! {
        tr data-link=(link.link) {
            td { a href={ "/sync/history?link=" (link.link) } { (link.name) } }
            td.flow {
                (flow)
                @if let Some(flows) = flows {
                    @for (kind, arrow) in flows { br; span.hint { (arrow) " " (kind) } }
                }
            }
            td { (schedule_cell(schedule, admin, &link.link, session)) }
            td {
                span.run-status data-status=[link.last_run.as_ref().map(|r| r.status.as_str())] {
                    @if link.running { "running" }
                    @else if let Some(run) = &link.last_run { (run.status) }
                    @else { "never ran" }
                }
                " "
                span.run-detail { (link.last_run.as_ref().map(last_run_text).unwrap_or_default()) }
                br;
                span.hint.lag { (link.last_run.as_ref().and_then(lag).map(|ago| format!("ended {ago}")).unwrap_or_default()) }
            }
            td {
                @if admin && link.receives {
                    form.button method="post" action="/sync/now" {
                        (csrf_field(session))
                        input type="hidden" name="link" value=(link.link);
                        button.sync-now type="submit" aria-label={ "Sync " (link.name) " now" } { "Sync now" }
                    }
                }
            }
        }
    }
}

fn schedule_cell(
    schedule: Option<&SyncSchedule>,
    admin: bool,
    link: &str,
    session: &Session,
) -> Markup {
    let Some(schedule) = schedule else {
        return html! {};
    };
    // As `set_schedule` reads it back: whole hours, else minutes (an interval set elsewhere,
    // such as 90m, stays offered as it is, so saving a pause does not change it).
    let every = if schedule.every_secs % 3600 == 0 {
        format!("{}h", schedule.every_secs / 3600)
    } else {
        format!("{}m", schedule.every_secs / 60)
    };
    let listed = EVERY.iter().any(|(value, _)| *value == every);
    html! {
        @if !schedule.owned {
            "run by the other side"
        } @else {
            (if schedule.paused { "paused".to_string() } else { format!("every {every}") })
            @if let Some(next) = &schedule.next_run { br; span.hint { "next " (next) } }
            @if admin {
                form.inline.schedule method="post" action="/sync/schedule" {
                    (csrf_field(session))
                    input type="hidden" name="link" value=(link);
                    select name="every" aria-label="Interval" {
                        @if !listed { option value=(every) selected { "every " (every) } }
                        @for (value, label) in EVERY {
                            option value=(value) selected[value == every] { (label) }
                        }
                    }
                    input type="datetime-local" name="start" aria-label="First run (UTC)"
                        value=(schedule.start_at.as_deref().map(|s| s.chars().take(16).collect::<String>()).unwrap_or_default());
                    select name="paused" aria-label="Paused or running" {
                        option value="false" selected[!schedule.paused] { "running" }
                        option value="true" selected[schedule.paused] { "paused" }
                    }
                    button type="submit" { "Save" }
                }
            }
        }
    }
}

pub(crate) async fn list(State(node): State<Node>, signed_in: SignedIn) -> Response {
    render(&node, &signed_in.session, None, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
pub(crate) struct LinkField {
    #[serde(default)]
    link: String,
}

/// Submits a run and comes back at once: the page follows its progress.
pub(crate) async fn sync_now(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<LinkField>,
) -> Response {
    let session = &signed_in.session;
    let body = SyncNow {
        link: fields.link,
        wait: false,
    };
    match ferry_node::sync::status::sync_now(&node, &session.caller, body).await {
        Ok(run) => {
            let said = html! {
                div.notice role="status" #run-submitted data-run=(run.id) data-link=(run.link) {
                    "Run " code { (run.id) } " " (run.status) ": this page follows it."
                }
            };
            render(&node, session, Some(said), StatusCode::ACCEPTED).await
        }
        Err(e) => {
            let said = failure(&e.0.message, e.0.code.as_str());
            render(&node, session, Some(said), crate::status_of(e.0.code)).await
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ScheduleFields {
    #[serde(default)]
    link: String,
    #[serde(default)]
    every: String,
    #[serde(default)]
    paused: String,
    /// `YYYY-MM-DDTHH:MM` from the page's date and time field, read as UTC.
    #[serde(default)]
    start: String,
}

pub(crate) async fn set_schedule(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<ScheduleFields>,
) -> Response {
    let session = &signed_in.session;
    let body = SetSchedule {
        link: fields.link,
        every: Some(fields.every).filter(|e| !e.is_empty()),
        start: Some(fields.start)
            .filter(|s| !s.is_empty())
            .map(|s| if s.len() == 16 { format!("{s}:00Z") } else { s }),
        paused: Some(fields.paused == "true"),
    };
    let said = match ferry_node::sync::status::set_schedule(&node, &session.caller, body).await {
        Ok(_) => html! { div.notice role="status" { "The schedule is saved." } },
        Err(e) => failure(&e.0.message, e.0.code.as_str()),
    };
    render(&node, session, Some(said), StatusCode::OK).await
}

/// What `console.js` needs to follow runs: per link, whether one runs and the last one's
/// status and summary.
#[derive(Serialize)]
pub(crate) struct LiveLink {
    link: String,
    /// The last run's id: the page waits for the run it submitted.
    run: Option<String>,
    status: String,
    detail: String,
    /// How long ago the last run ended (`ended 2 min ago`), or nothing.
    lag: String,
}

pub(crate) async fn live(State(node): State<Node>, signed_in: SignedIn) -> Response {
    let caller = &signed_in.session.caller;
    match ferry_node::sync::status::sync_status(&node, caller).await {
        Ok(links) => Json(
            links
                .iter()
                .map(|l| LiveLink {
                    link: l.link.clone(),
                    run: l.last_run.as_ref().map(|r| r.id.clone()),
                    status: if l.running {
                        "running".into()
                    } else {
                        l.last_run
                            .as_ref()
                            .map_or("never ran".into(), |r| r.status.clone())
                    },
                    detail: l.last_run.as_ref().map(last_run_text).unwrap_or_default(),
                    lag: l
                        .last_run
                        .as_ref()
                        .and_then(lag)
                        .map(|ago| format!("ended {ago}"))
                        .unwrap_or_default(),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => crate::error::ApiFailure(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct HistoryQuery {
    link: Option<String>,
    page: Option<usize>,
}

/// How many runs the history reads back.
const HISTORY_RUNS: usize = 1_000;

pub(crate) async fn history(
    State(node): State<Node>,
    Query(query): Query<HistoryQuery>,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let raw = {
        let mut raw = form_urlencoded::Serializer::new(String::new());
        raw.append_pair("limit", &HISTORY_RUNS.to_string());
        if let Some(link) = query.link.as_deref().filter(|l| !l.is_empty()) {
            raw.append_pair("link", link);
        }
        raw.finish()
    };
    let runs = match ferry_node::sync::status::sync_history(&node, &session.caller, Some(raw)).await
    {
        Ok(runs) => runs,
        Err(e) => return failure_page(&node, session, "Sync history", &e),
    };
    let link = query.link.clone().unwrap_or_default();
    let (shown, pager) = paged(&runs, query.page.unwrap_or(1), |n| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("link", &link);
        q.append_pair("page", &n.to_string());
        format!("/sync/history?{}", q.finish())
    });
    let body = html! {
        h1 { "Sync history" }
        p.lead { @if link.is_empty() { "Every link, newest run first." } @else { "Link " code { (link) } ", newest run first. " a href="/sync/history" { "All links" } } }
        @if shown.is_empty() {
            p.empty { "No run yet." }
        } @else {
            table.list #runs {
                thead { tr {
                    th { "Started" } th { "Direction" } th { "Trigger" } th { "Status" }
                    th { "Items" } th { "Rows" } th { "Bytes" } th { "Took" } th { "Failures" }
                } }
                tbody {
                    @for run in shown { (run_row(run)) }
                }
            }
            (pager)
        }
    };
    Html(page(&node, Some(session), "Sync history", body).into_string()).into_response()
}

fn run_row(run: &SyncRun) -> Markup {
    let sent = run.direction == "send";
    let took = run.ended_at.as_deref().and_then(|end| {
        let start: jiff::Timestamp = run.started_at.parse().ok()?;
        let end: jiff::Timestamp = end.parse().ok()?;
        Some(format!(
            "{:.1} s",
            (end - start).total(jiff::Unit::Second).ok()?
        ))
    });
    html! {
        tr data-run=(run.id) data-status=(run.status) {
            td { (run.started_at) }
            td { (run.direction) }
            td { (run.trigger) }
            td { (run.status) @if let Some(m) = &run.message { br; span.hint { (m) } } }
            td { (if sent { run.items_sent } else { run.items_received }) @if run.items_retracted > 0 { " (" (run.items_retracted) " retracted)" } }
            td { (if sent { run.rows_sent } else { run.rows_received }) }
            td { (if sent { run.bytes_sent } else { run.bytes_received }) }
            td { (took.unwrap_or_default()) }
            td {
                @for error in &run.errors {
                    div { (error.title) ": " code { (error.code) } " " (error.message) }
                }
            }
        }
    }
}
