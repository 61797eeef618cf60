//! `ferry bench`: benchmarks that measure Ferry against a baseline taken in the same run, so the
//! ratios mean something on any machine. Never run as timed tests.

use crate::bench_kit::{Server, bare_sqlite_insert, import_geojson, write_geojson};
use crate::output::{Output, fields};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use futures_util::TryStreamExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCmd {
    /// Import and export a generated feature layer through a real `ferry serve` process; baseline:
    /// inserting the same rows into a bare SQLite table.
    Import(ImportBench),
    /// Sync a generated feature layer from one `ferry serve` process to three: the initial copy
    /// into each (the median reported), a delta of 1% updates + 0.1% inserts + 0.1% deletes, and
    /// syncs with nothing to do; baseline: inserting the same rows into a bare SQLite table,
    /// before and after each copy.
    Sync(ImportBench),
    /// Fetch the web console's pages on an instance loaded with peer connections, audit entries
    /// and tokens; each page's server time against `/healthz`'s, measured in the same run.
    Console(crate::bench_console::ConsoleBench),
    /// The item page's map of a generated feature layer: the server time and size of its tiles
    /// at every zoom, and the time until headless Chromium has drawn it; baseline: the same
    /// tiles and page of a 1,000-feature layer, measured in the same run.
    Map(crate::bench_map::MapBench),
    /// Two copies of a two-way feature layer edit it at once (1% of the edits to the same
    /// rows); the time until the origin and both copies agree, and the conflicts found; baseline:
    /// as many changes made at the origin and pulled by both copies, in the same run.
    TwoWay(crate::bench_twoway::TwoWayBench),
    /// A large file item (1 GiB of random bytes by default) synced from one `ferry serve`
    /// process to another; baseline: `rsync` of the same file to a local directory, in the
    /// same run. Also the receiver's CPU time per GiB and its peak memory.
    Files(crate::bench_files::FilesBench),
}

#[derive(Args, Debug)]
pub(crate) struct ImportBench {
    /// Number of point features to generate.
    #[arg(long, default_value_t = 1_000_000)]
    features: u64,
    /// Work directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct ImportReport {
    features: u64,
    geojson_bytes: u64,
    baseline_seconds: f64,
    import_seconds: f64,
    import_features_per_second: f64,
    import_vs_baseline: f64,
    export_seconds: f64,
    export_features_per_second: f64,
    export_bytes: u64,
    server_peak_rss_mib: f64,
}

/// The directory to work in: the one given, or a temporary one removed when the guard drops.
pub(crate) fn work_dir(given: Option<PathBuf>) -> Result<(tempfile::TempDir, PathBuf)> {
    let temp = tempfile::tempdir()?;
    let dir = given.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    Ok((temp, dir))
}

pub(crate) async fn run(out: Output, cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Console(args) => {
            let (_temp, dir) = work_dir(args.dir.clone())?;
            let report = crate::bench_console::console_bench(&dir, &args).await?;
            out.show(&report, crate::bench_console::render)
        }
        BenchCmd::Map(args) => {
            let (_temp, dir) = work_dir(args.dir.clone())?;
            let report = crate::bench_map::map_bench(&dir, &args).await?;
            out.show(&report, crate::bench_map::render)
        }
        BenchCmd::TwoWay(args) => {
            let (_temp, dir) = work_dir(args.dir.clone())?;
            let report = crate::bench_twoway::two_way_bench(&dir, &args).await?;
            out.show(&report, crate::bench_twoway::render)
        }
        BenchCmd::Files(args) => {
            let (_temp, dir) = work_dir(args.dir.clone())?;
            let report = crate::bench_files::files_bench(&dir, &args).await?;
            out.show(&report, crate::bench_files::render)
        }
        BenchCmd::Sync(args) => {
            let (_temp, dir) = work_dir(args.dir.clone())?;
            let report = crate::bench_sync::sync_bench(&dir, args.features).await?;
            out.show(&report, crate::bench_sync::render)
        }
        BenchCmd::Import(args) => {
            let (_temp, dir) = work_dir(args.dir.clone())?;
            let report = import_bench(&dir, args.features).await?;
            out.show(&report, |r| {
                fields(&[
                    ("features", r.features.to_string()),
                    (
                        "GeoJSON size",
                        format!("{:.1} MiB", r.geojson_bytes as f64 / 1048576.0),
                    ),
                    (
                        "baseline: bare SQLite insert",
                        format!("{:.2} s", r.baseline_seconds),
                    ),
                    (
                        "import over HTTP",
                        format!(
                            "{:.2} s ({:.0} features/s)",
                            r.import_seconds, r.import_features_per_second
                        ),
                    ),
                    (
                        "import / baseline",
                        format!("{:.2}x (target <= 3x)", r.import_vs_baseline),
                    ),
                    (
                        "export over HTTP",
                        format!(
                            "{:.2} s ({:.0} features/s)",
                            r.export_seconds, r.export_features_per_second
                        ),
                    ),
                    (
                        "server peak RSS",
                        format!("{:.0} MiB (target < 200 MiB)", r.server_peak_rss_mib),
                    ),
                ])
            })
        }
    }
}

async fn import_bench(dir: &Path, n: u64) -> Result<ImportReport> {
    eprintln!("generating {n} features...");
    let geojson = dir.join("bench.geojson");
    let geojson_bytes = write_geojson(&geojson, n)?;
    eprintln!("baseline: bare SQLite insert...");
    let baseline = bare_sqlite_insert(&dir.join("baseline.db"), n)?;
    let server = Server::start(&dir.join("instance")).await?;
    let http = reqwest::Client::new();
    http.post(format!("{}/api/v1/spaces", server.url))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?;

    eprintln!("import over HTTP...");
    let started = Instant::now();
    let item = import_geojson(&http, &server, "bench", &geojson).await?;
    let import = started.elapsed();
    if item.row_count as u64 != n {
        bail!("imported {} rows, expected {n}", item.row_count);
    }

    eprintln!("export over HTTP...");
    let started = Instant::now();
    let response = http
        .get(format!("{}/api/v1/items/{}/export", server.url, item.id))
        .bearer_auth(&server.token)
        .send()
        .await?
        .error_for_status()?;
    let mut stream = response.bytes_stream();
    let mut export_bytes = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        export_bytes += chunk.len() as u64;
    }
    let export = started.elapsed();
    let peak = server.peak_rss_mib()?;
    Ok(ImportReport {
        features: n,
        geojson_bytes,
        baseline_seconds: baseline.as_secs_f64(),
        import_seconds: import.as_secs_f64(),
        import_features_per_second: n as f64 / import.as_secs_f64(),
        import_vs_baseline: import.as_secs_f64() / baseline.as_secs_f64(),
        export_seconds: export.as_secs_f64(),
        export_features_per_second: n as f64 / export.as_secs_f64(),
        export_bytes,
        server_peak_rss_mib: peak,
    })
}
