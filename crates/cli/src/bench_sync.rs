//! `ferry bench sync`: real `ferry serve` processes peered on loopback. Measures the initial copy
//! of a generated layer against a bare SQLite insert of the same rows (same run), a delta of 1%
//! updates + 0.1% inserts + 0.1% deletes, and syncs with nothing to do at two layer sizes.
//!
//! The copy is measured [`COPIES`] times, into as many receivers, each between two bare inserts
//! (the one before it and the one after): a machine whose speed drifts during the run skews no
//! ratio, and the median of the ratios is reported with each of them. The delta runs after the
//! first copy, so the later two copy the edited layer: as many rows, 0.1% of them new.

use crate::bench_kit::{Api, Server, bare_sqlite_insert, peer, prepare_sender, write_geojson};
use crate::output::fields;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// How many times the initial copy is measured.
const COPIES: usize = 3;

#[derive(Debug, Serialize)]
pub(crate) struct SyncReport {
    features: u64,
    /// Each bare insert, in the order measured: one before each copy and one after the last.
    baseline_runs: Vec<f64>,
    /// The mean of the two bare inserts around the copy whose ratio is the median.
    baseline_seconds: f64,
    /// Each copy's time, and its ratio to the mean of the bare inserts just before and after it.
    initial_copy_runs: Vec<f64>,
    initial_copy_ratios: Vec<f64>,
    /// The copy whose ratio is the median.
    initial_copy_seconds: f64,
    initial_copy_vs_baseline: f64,
    /// CPU seconds both servers used during that copy: steadier than wall time on a busy machine.
    initial_copy_cpu_seconds: f64,
    delta_changes: u64,
    delta_seconds: f64,
    delta_bytes: i64,
    noop_small_ms: f64,
    noop_large_ms: f64,
    /// The first receiver's database and WAL files once its copy has settled.
    receiver_db_mib_after_copy: f64,
    receiver_wal_mib_after_copy: f64,
    /// Peak memory during the first copy, the one right after the import (the initial copy of a
    /// fresh pair of instances)...
    sender_peak_rss_mib: f64,
    receiver_peak_rss_mib: f64,
    /// ...and the most during any copy: later ones follow the delta's edits, whose memory the
    /// sender's allocator may still hold.
    sender_peak_rss_mib_any_copy: f64,
    receiver_peak_rss_mib_any_copy: f64,
}

pub(crate) fn render(r: &SyncReport) -> comfy_table::Table {
    let copy_label = format!("initial copy (median of {COPIES})");
    fields(&[
        ("features", r.features.to_string()),
        (
            "baseline: bare SQLite insert",
            format!(
                "{:.2} s around the median copy (each run: {})",
                r.baseline_seconds,
                seconds(&r.baseline_runs)
            ),
        ),
        (
            &copy_label,
            format!(
                "{:.2} s = {:.2}x baseline (target <= 3x); {:.2} CPU s in both servers; each copy: {} = {}",
                r.initial_copy_seconds,
                r.initial_copy_vs_baseline,
                r.initial_copy_cpu_seconds,
                seconds(&r.initial_copy_runs),
                r.initial_copy_ratios
                    .iter()
                    .map(|x| format!("{x:.2}x"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "delta",
            format!(
                "{} changes: {:.3} s (target <= 0.25 s), {:.2} MB on the wire (target <= 3.5 MB)",
                r.delta_changes,
                r.delta_seconds,
                r.delta_bytes as f64 / 1e6
            ),
        ),
        (
            "receiver's disk after the copy",
            format!(
                "database {:.0} MiB, WAL {:.1} MiB (the WAL is truncated past 64 MiB once checkpointed)",
                r.receiver_db_mib_after_copy, r.receiver_wal_mib_after_copy
            ),
        ),
        (
            "sync with nothing to do",
            format!(
                "{:.2} ms at 10,000 rows, {:.2} ms at {} rows (target <= 5 ms)",
                r.noop_small_ms, r.noop_large_ms, r.features
            ),
        ),
        (
            "peak RSS during the copy",
            format!(
                "sender {:.0} MiB, receiver {:.0} MiB in the first copy (target <= 100 MB each); {:.0} and {:.0} MiB at most in any copy",
                r.sender_peak_rss_mib,
                r.receiver_peak_rss_mib,
                r.sender_peak_rss_mib_any_copy,
                r.receiver_peak_rss_mib_any_copy
            ),
        ),
    ])
}

fn seconds(runs: &[f64]) -> String {
    runs.iter()
        .map(|s| format!("{s:.2} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Api {
    /// Runs a sync of `link` on `server`; returns the run and how long the call took.
    pub(crate) async fn sync(&self, server: &Server, link: &str) -> Result<(Value, Duration)> {
        let started = Instant::now();
        let run = self
            .post(server, "/api/v1/sync/now", json!({"link": link}))
            .await?;
        let took = started.elapsed();
        if !run["status"]
            .as_str()
            .unwrap_or_default()
            .starts_with("completed")
        {
            bail!("the sync run did not complete: {run}");
        }
        Ok((run, took))
    }

    pub(crate) async fn import(&self, server: &Server, file: &Path, title: &str) -> Result<Value> {
        let bytes = tokio::fs::read(file).await?;
        let response = self
            .http
            .post(format!(
                "{}/api/v1/items/import?space=bench&title={title}",
                server.url
            ))
            .bearer_auth(&server.token)
            .header("content-type", "application/geo+json")
            .body(bytes)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("import failed: {}", response.text().await?);
        }
        Ok(response.json().await?)
    }
}

/// Opens both servers' policies to loopback and creates A's `bench` space.
/// The median time of several syncs with nothing to do.
async fn noop(api: &Api, b: &Server, link: &str) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..21 {
        let (run, took) = api.sync(b, link).await?;
        if run["rows_received"].as_i64() != Some(0) {
            bail!("a sync with nothing to do moved rows: {run}");
        }
        times.push(took.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// 1% updates, 0.1% inserts, 0.1% deletes, in batches; returns how many changes.
async fn change(api: &Api, a: &Server, item: &str, n: u64) -> Result<u64> {
    let (updates, inserts, deletes) = (n / 100, n / 1000, n / 1000);
    let mut batch = json!({"adds": [], "updates": [], "deletes": []});
    let mut pending = 0;
    let flush = |batch: Value| async move {
        api.post(a, &format!("/api/v1/items/{item}/edits"), batch)
            .await
    };
    for i in 0..updates {
        batch["updates"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": 1 + i * 97 % n, "values": {"a": -1}}));
        pending += 1;
        if pending == 5_000 {
            flush(std::mem::replace(
                &mut batch,
                json!({"adds": [], "updates": [], "deletes": []}),
            ))
            .await?;
            pending = 0;
        }
    }
    for i in 0..inserts {
        batch["adds"].as_array_mut().unwrap().push(json!({"key": n + 1 + i, "values": {"a": 1, "b": 2, "c": 0.5, "d": 1.5, "e": "new", "f": "k", "g": "z", "ts": "2026-01-01T00:00:00Z"}, "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}));
    }
    for i in 0..deletes {
        batch["deletes"]
            .as_array_mut()
            .unwrap()
            .push(json!(2 + i * 89 % (n - 1)));
    }
    flush(batch).await?;
    Ok(updates + inserts + deletes)
}

/// Lets the servers' background WAL checkpoints of the last writes finish, so a timed sync
/// measures the sync and not the tail of the import or of the edits before it.
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

pub(crate) async fn sync_bench(dir: &Path, n: u64) -> Result<SyncReport> {
    let small_n = 10_000.min(n);
    eprintln!("generating {n} + {small_n} features...");
    let large = dir.join("large.geojson");
    let small = dir.join("small.geojson");
    write_geojson(&large, n)?;
    write_geojson(&small, small_n)?;
    let a = Server::start(&dir.join("sender")).await?;
    let mut receivers = Vec::with_capacity(COPIES);
    for i in 0..COPIES {
        receivers.push(Server::start(&dir.join(format!("receiver-{i}"))).await?);
    }
    let api = Api {
        http: reqwest::Client::new(),
    };
    prepare_sender(&api, &a).await?;
    let mut links = Vec::with_capacity(COPIES);
    for b in &receivers {
        links.push(peer(&api, &a, b).await?);
    }
    let (b, link) = (&receivers[0], &links[0]);

    eprintln!("small layer: copy, then syncs with nothing to do...");
    api.import(&a, &small, "small").await?;
    for (receiver, link) in receivers.iter().zip(&links) {
        api.sync(receiver, link).await?;
    }
    let noop_small_ms = noop(&api, b, link).await?;

    eprintln!(
        "large layer: import at the sender, then {COPIES} initial copies between bare inserts, and the delta after the first..."
    );
    let item = api.import(&a, &large, "large").await?;
    settle().await;
    let mut baselines = vec![bare_insert_seconds(dir, n)?];
    let mut copies = Vec::with_capacity(COPIES);
    let (mut noop_large_ms, mut delta_run) = (0.0, None);
    let mut disk_after_copy = (0.0, 0.0);
    for (i, (receiver, link)) in receivers.iter().zip(&links).enumerate() {
        let copy = measure_copy(&api, &a, receiver, link, n).await?;
        settle().await;
        baselines.push(bare_insert_seconds(dir, n)?);
        copies.push(copy);
        if i == 0 {
            disk_after_copy = database_files_mib(&dir.join("receiver-0"));
            // The delta is measured after one copy, on its receiver; it adds as many rows as it
            // deletes, so later copies move the same number.
            noop_large_ms = noop(&api, b, link).await?;
            let item_id = item["id"].as_str().context("no item id")?;
            let changes = change(&api, &a, item_id, n).await?;
            settle().await;
            let (run, took) = api.sync(b, link).await?;
            delta_run = Some((changes, took, run));
        }
    }
    let (delta_changes, delta, run) = delta_run.context("no delta was measured")?;
    let ratios: Vec<f64> = copies
        .iter()
        .zip(baselines.windows(2))
        .map(|(copy, around)| copy.seconds / ((around[0] + around[1]) / 2.0))
        .collect();
    let median = median_index(&ratios);
    Ok(SyncReport {
        features: n,
        baseline_seconds: (baselines[median] + baselines[median + 1]) / 2.0,
        baseline_runs: baselines,
        initial_copy_runs: copies.iter().map(|c| c.seconds).collect(),
        initial_copy_seconds: copies[median].seconds,
        initial_copy_vs_baseline: ratios[median],
        initial_copy_ratios: ratios,
        initial_copy_cpu_seconds: copies[median].cpu_seconds,
        delta_changes,
        delta_seconds: delta.as_secs_f64(),
        delta_bytes: run["bytes_received"].as_i64().unwrap_or_default(),
        noop_small_ms,
        noop_large_ms,
        receiver_db_mib_after_copy: disk_after_copy.0,
        receiver_wal_mib_after_copy: disk_after_copy.1,
        sender_peak_rss_mib: copies[0].sender_peak_rss_mib,
        receiver_peak_rss_mib: copies[0].receiver_peak_rss_mib,
        sender_peak_rss_mib_any_copy: copies
            .iter()
            .map(|c| c.sender_peak_rss_mib)
            .fold(0.0, f64::max),
        receiver_peak_rss_mib_any_copy: copies
            .iter()
            .map(|c| c.receiver_peak_rss_mib)
            .fold(0.0, f64::max),
    })
}

/// The sizes of an instance's database file and its WAL, in MiB.
fn database_files_mib(data: &Path) -> (f64, f64) {
    let mib = |name: &str| {
        std::fs::metadata(data.join(name)).map_or(0.0, |m| m.len() as f64 / f64::from(1u32 << 20))
    };
    (mib("ferry.db"), mib("ferry.db-wal"))
}

/// One measured initial copy.
struct Copy {
    seconds: f64,
    cpu_seconds: f64,
    sender_peak_rss_mib: f64,
    receiver_peak_rss_mib: f64,
}

async fn measure_copy(
    api: &Api,
    a: &Server,
    receiver: &Server,
    link: &str,
    n: u64,
) -> Result<Copy> {
    settle().await;
    // Memory is measured during the copy, not the import before it.
    a.reset_peak_rss()?;
    receiver.reset_peak_rss()?;
    let cpu_before = a.cpu_seconds()? + receiver.cpu_seconds()?;
    let (run, took) = api.sync(receiver, link).await?;
    let cpu_seconds = a.cpu_seconds()? + receiver.cpu_seconds()? - cpu_before;
    if run["rows_received"].as_u64() != Some(n) {
        bail!(
            "the initial copy moved {} rows, expected {n}",
            run["rows_received"]
        );
    }
    Ok(Copy {
        seconds: took.as_secs_f64(),
        cpu_seconds,
        sender_peak_rss_mib: a.peak_rss_mib()?,
        receiver_peak_rss_mib: receiver.peak_rss_mib()?,
    })
}

/// One bare insert of the layer's rows into a fresh SQLite file, removed afterwards.
fn bare_insert_seconds(dir: &Path, n: u64) -> Result<f64> {
    let path = dir.join("baseline.db");
    let took = bare_sqlite_insert(&path, n)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        if Path::new(&file).exists() {
            std::fs::remove_file(&file)?;
        }
    }
    Ok(took.as_secs_f64())
}

/// Where the median of `values` is (the lower one of an even count).
fn median_index(values: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    order[(values.len() - 1) / 2]
}
