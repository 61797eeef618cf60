//! `ferry bench console`: the web console's pages on a loaded instance. A real `ferry serve`
//! process gets many peer connections (one of them active, with a second process on the other
//! end), tokens and audit entries through its REST API; then every main page is fetched with a
//! signed-in session, and the server's own time for each answer (its `Server-Timing` header) is
//! compared with the same page's on the other process, which holds one connection, one token and
//! a few audit entries: the ratio is what the load costs.

use crate::bench_kit::{Api, Server, peer, prepare_sender};
use crate::output::fields;
use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::json;
use std::path::Path;

/// Requests the seeding keeps in flight.
const IN_FLIGHT: usize = 8;
/// Times each page is fetched; the median and the slowest are reported.
const FETCHES: usize = 30;
/// What every page must answer within, in server time.
pub(crate) const TARGET_MS: f64 = 50.0;

#[derive(clap::Args, Debug)]
pub(crate) struct ConsoleBench {
    /// Peer connections to create (one of them active).
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Audit entries to reach, at least.
    #[arg(long, default_value_t = 10_000)]
    audit_entries: usize,
    /// API tokens to create.
    #[arg(long, default_value_t = 1_000)]
    tokens: usize,
    /// Items in the space whose page is measured.
    #[arg(long, default_value_t = 10_000)]
    items: usize,
    /// Work directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub(crate) dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PageTime {
    page: String,
    median_ms: f64,
    slowest_ms: f64,
    /// The same page's median on an instance with one connection, one token, a few entries.
    baseline_ms: f64,
    /// The median against the baseline's.
    vs_baseline: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct ConsoleReport {
    connections: usize,
    audit_entries: i64,
    tokens: usize,
    items_in_space: usize,
    fetches_per_page: usize,
    pages: Vec<PageTime>,
    target_ms: f64,
    all_within_target: bool,
}

pub(crate) fn render(r: &ConsoleReport) -> comfy_table::Table {
    let mut rows = vec![
        (
            "loaded with".to_string(),
            format!(
                "{} connections, {} audit entries, {} tokens, {} items in one space",
                r.connections, r.audit_entries, r.tokens, r.items_in_space
            ),
        ),
        (
            "each page".to_string(),
            format!(
                "server time of {} fetches; baseline: the same page on an instance with one connection",
                r.fetches_per_page
            ),
        ),
    ];
    for p in &r.pages {
        rows.push((
            p.page.clone(),
            format!(
                "{:.2} ms median, {:.2} ms slowest; baseline {:.2} ms, {:.1}×",
                p.median_ms, p.slowest_ms, p.baseline_ms, p.vs_baseline
            ),
        ));
    }
    rows.push((
        format!("every page within {} ms", r.target_ms),
        if r.all_within_target { "yes" } else { "NO" }.to_string(),
    ));
    let borrowed: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    fields(&borrowed)
}

pub(crate) async fn console_bench(dir: &Path, args: &ConsoleBench) -> Result<ConsoleReport> {
    let a = Server::start(&dir.join("a")).await?;
    let b = Server::start(&dir.join("b")).await?;
    let api = Api {
        http: reqwest::Client::new(),
    };
    prepare_sender(&api, &a).await?;
    let active = peer(&api, &a, &b).await?;
    eprintln!(
        "loading: {} connections, {} tokens, audit entries up to {}...",
        args.connections, args.tokens, args.audit_entries
    );
    seed(&api, &b, args).await?;
    let audit_entries = newest_audit_seq(&api, &b).await?;

    let on_a = api
        .send(&a, reqwest::Method::GET, "/api/v1/peers", None)
        .await?[0]["id"]
        .as_str()
        .context("no connection on the baseline instance")?
        .to_string();
    let (loaded, empty) = (sign_in(&b).await?, sign_in(&a).await?);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let pages = [
        "/",
        "/peers",
        "/peers?id=ID",
        "/peers?page=10",
        "/peers/new",
        "/peers/enter",
        "/peers/response",
        "/peers/ID/delete",
        "/policy",
        "/audit",
        "/audit?kind=peer",
        "/tokens",
        "/spaces",
        "/spaces/SPACE",
        "/spaces/SPACE?page=50",
        "/collabs",
        "/sync",
        "/sync/history",
    ];
    let mut times = Vec::new();
    for page in pages {
        let on_b = page.replace("ID", &active).replace("SPACE", "inbox");
        let on_baseline = page.replace("ID", &on_a).replace("SPACE", "bench");
        let runs = server_times(&browser, &b, &on_b, &loaded).await?;
        let baseline = server_times(&browser, &a, &on_baseline, &empty).await?;
        let (median_ms, baseline_ms) = (median(&runs), median(&baseline));
        times.push(PageTime {
            page: page.to_string(),
            median_ms,
            slowest_ms: runs.iter().copied().fold(0.0, f64::max),
            baseline_ms,
            vs_baseline: median_ms / baseline_ms.max(1e-6),
        });
    }
    Ok(ConsoleReport {
        connections: args.connections,
        audit_entries,
        tokens: args.tokens,
        items_in_space: args.items,
        fetches_per_page: FETCHES,
        all_within_target: times.iter().all(|p| p.slowest_ms < TARGET_MS),
        pages: times,
        target_ms: TARGET_MS,
    })
}

/// Requests (each a connection and an audit entry), tokens, items, then policy rules added and
/// removed until the audit log holds `audit_entries`.
async fn seed(api: &Api, server: &Server, args: &ConsoleBench) -> Result<()> {
    let requests = (1..args.connections).map(|_| {
        (
            "/api/v1/peers/requests".to_string(),
            json!({"space": "inbox", "export": ["features"], "import": ["datasets"]}),
        )
    });
    post_all(api, server, requests).await?;
    let tokens = (0..args.tokens).map(|i| {
        (
            "/api/v1/tokens".to_string(),
            json!({"name": format!("bench-{i}"), "role": "viewer"}),
        )
    });
    post_all(api, server, tokens).await?;
    let items = (0..args.items).map(|i| {
        (
            "/api/v1/items".to_string(),
            json!({"space": "inbox", "kind": "dataset", "title": format!("Table {i}"),
                   "schema": {"fields": [{"name": "id", "type": "integer"}], "primary_key": "id"}}),
        )
    });
    post_all(api, server, items).await?;
    let so_far = usize::try_from(newest_audit_seq(api, server).await?)?;
    let pairs = args.audit_entries.saturating_sub(so_far).div_ceil(2);
    futures_util::stream::iter(0..pairs)
        .map(|i| async move {
            let rule = api
                .post(
                    server,
                    "/api/v1/policies",
                    json!({"direction": "ingress", "effect": "allow", "pattern": format!("10.{}.{}.0/24", i / 256 % 256, i % 256)}),
                )
                .await?;
            let id = rule["id"].as_str().context("no rule id")?;
            api.send(
                server,
                reqwest::Method::DELETE,
                &format!("/api/v1/policies/{id}"),
                None,
            )
            .await
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn post_all(
    api: &Api,
    server: &Server,
    calls: impl Iterator<Item = (String, serde_json::Value)>,
) -> Result<()> {
    futures_util::stream::iter(calls)
        .map(|(path, body)| async move { api.post(server, &path, body).await })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn newest_audit_seq(api: &Api, server: &Server) -> Result<i64> {
    let newest = api
        .send(
            server,
            reqwest::Method::GET,
            "/api/v1/audit?newest=true&limit=1",
            None,
        )
        .await?;
    newest[0]["seq"].as_i64().context("an empty audit log")
}

/// A console session for the server's admin token: the cookie's `name=value`.
pub(crate) async fn sign_in(server: &Server) -> Result<String> {
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(format!("{}/sign-in", server.url))
        .form(&[("token", server.token.as_str())])
        .send()
        .await?;
    let cookie = answer
        .headers()
        .get("set-cookie")
        .context("signing in set no cookie")?
        .to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_string())
}

/// The server's time for `FETCHES` answers of `path`, in ms.
async fn server_times(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    session: &str,
) -> Result<Vec<f64>> {
    Ok(fetch_times(http, server, path, session, FETCHES).await?.0)
}

/// The server's time for `fetches` answers of `path`, in ms, and the last answer's body.
pub(crate) async fn fetch_times(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    session: &str,
    fetches: usize,
) -> Result<(Vec<f64>, Vec<u8>)> {
    let mut times = Vec::with_capacity(fetches);
    let mut body = Vec::new();
    for _ in 0..fetches {
        let answer = http
            .get(format!("{}{path}", server.url))
            .header("cookie", session)
            .send()
            .await?;
        if answer.status() != reqwest::StatusCode::OK {
            bail!("{path}: HTTP {}: {}", answer.status(), answer.text().await?);
        }
        times.push(server_time(&answer)?);
        body = answer.bytes().await?.to_vec();
    }
    Ok((times, body))
}

/// The server's own time for an answer, from its `Server-Timing` header, in ms.
fn server_time(answer: &reqwest::Response) -> Result<f64> {
    answer
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("app;dur="))
        .and_then(|v| v.parse::<f64>().ok())
        .context("no Server-Timing in the answer")
}

pub(crate) fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
