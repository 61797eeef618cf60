//! `ferry bench files`: a large file item synced between two `ferry serve` processes, against
//! `rsync` of the same file to a local directory, measured in the same run. Also the receiver's
//! CPU time per GiB and its peak memory, which must stay flat whatever the file's size.

use crate::bench_kit::{Api, Server, peer_exporting, prepare_sender, upload, yes};
use crate::output::fields;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Goals: time against rsync's, receiver CPU seconds per GiB, receiver peak memory.
const GOAL_VS_RSYNC: f64 = 1.5;
const GOAL_CPU_PER_GIB: f64 = 2.0;
const GOAL_PEAK_RSS_MIB: f64 = 100.0;

#[derive(clap::Args, Debug)]
pub(crate) struct FilesBench {
    /// The file's size in MiB (random bytes: nothing to compress or deduplicate).
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Work directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub(crate) dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FilesReport {
    size_mib: u64,
    /// `rsync FILE DIR/` on this machine, the baseline.
    rsync_seconds: f64,
    /// CPU time (user and system) of rsync's processes, per GiB: what writing the file through
    /// the page cache costs here.
    rsync_cpu_seconds_per_gib: f64,
    /// The receiver's `sync now` of the link that brings the file item.
    sync_seconds: f64,
    sync_mib_per_second: f64,
    vs_rsync: f64,
    receiver_cpu_seconds_per_gib: f64,
    receiver_peak_rss_mib: f64,
    /// The received file's content hash is the original's.
    same_bytes: bool,
    within_goals: bool,
}

pub(crate) fn render(r: &FilesReport) -> comfy_table::Table {
    fields(&[
        ("file", format!("{} MiB of random bytes", r.size_mib)),
        (
            "baseline: rsync to a local directory",
            format!(
                "{:.2} s, {:.2} CPU s per GiB",
                r.rsync_seconds, r.rsync_cpu_seconds_per_gib
            ),
        ),
        (
            "sync of the file item",
            format!(
                "{:.2} s ({:.0} MiB/s): {:.2}× rsync (goal ≤ {GOAL_VS_RSYNC}×)",
                r.sync_seconds, r.sync_mib_per_second, r.vs_rsync
            ),
        ),
        (
            "receiver CPU",
            format!(
                "{:.2} s per GiB (goal ≤ {GOAL_CPU_PER_GIB} s)",
                r.receiver_cpu_seconds_per_gib
            ),
        ),
        (
            "receiver peak memory",
            format!(
                "{:.0} MiB (goal < {GOAL_PEAK_RSS_MIB} MiB)",
                r.receiver_peak_rss_mib
            ),
        ),
        ("same bytes", yes(r.same_bytes).into()),
        ("within the goals", yes(r.within_goals).into()),
    ])
}

pub(crate) async fn files_bench(dir: &Path, args: &FilesBench) -> Result<FilesReport> {
    let size = args.size_mib << 20;
    eprintln!("writing {} MiB of random bytes...", args.size_mib);
    let file = dir.join("survey.bin");
    let content_hash = write_random(&file, size)?;

    eprintln!("baseline: rsync to a local directory...");
    let target = dir.join("rsync-target");
    std::fs::create_dir_all(&target)?;
    let started = Instant::now();
    let cpu_before = children_cpu_seconds()?;
    let status = std::process::Command::new("rsync")
        .arg(&file)
        .arg(format!("{}/", target.display()))
        .status()
        .context("rsync must be installed for this benchmark (apt-get install rsync)")?;
    if !status.success() {
        bail!("rsync failed: {status}");
    }
    let rsync_seconds = started.elapsed().as_secs_f64();
    let rsync_cpu = children_cpu_seconds()? - cpu_before;
    std::fs::remove_dir_all(&target)?;

    // The sender takes an import of any size the benchmark asks for.
    let limit = (size + (1 << 20)).max(8 << 30).to_string();
    let a = Server::start_with(&dir.join("sender"), &["--max-import-bytes", &limit]).await?;
    let b = Server::start(&dir.join("receiver")).await?;
    let api = Api {
        http: reqwest::Client::new(),
    };
    prepare_sender(&api, &a).await?;
    let (_, link) = peer_exporting(&api, &a, &b, &["files"], &[]).await?;
    api.sync(&b, &link).await?;
    eprintln!("importing the file at the sender...");
    let octets = "application/octet-stream";
    upload(&api.http, &a, ("bench", "Survey"), &file, octets).await?;

    eprintln!("syncing it to the receiver...");
    b.reset_peak_rss()?;
    let cpu_before = b.cpu_seconds()?;
    let (run, took) = api.sync(&b, &link).await?;
    let cpu = b.cpu_seconds()? - cpu_before;
    if run["items_received"] != 1 {
        bail!("the file did not arrive: {run}");
    }
    let received = api
        .send(&b, reqwest::Method::GET, "/api/v1/items?space=inbox", None)
        .await?;
    let same_bytes = received[0]["file"]["content_hash"].as_str() == Some(content_hash.as_str());
    let gib = size as f64 / f64::from(1u32 << 30);
    let rsync_cpu_seconds_per_gib = rsync_cpu / gib;
    let sync_seconds = took.as_secs_f64();
    let vs_rsync = sync_seconds / rsync_seconds.max(1e-9);
    let receiver_cpu_seconds_per_gib = cpu / gib;
    let receiver_peak_rss_mib = b.peak_rss_mib()?;
    Ok(FilesReport {
        size_mib: args.size_mib,
        rsync_seconds,
        rsync_cpu_seconds_per_gib,
        sync_seconds,
        sync_mib_per_second: args.size_mib as f64 / sync_seconds,
        vs_rsync,
        receiver_cpu_seconds_per_gib,
        receiver_peak_rss_mib,
        same_bytes,
        within_goals: same_bytes
            && vs_rsync <= GOAL_VS_RSYNC
            && receiver_cpu_seconds_per_gib <= GOAL_CPU_PER_GIB
            && receiver_peak_rss_mib < GOAL_PEAK_RSS_MIB,
    })
}

/// Writes `size` pseudo-random bytes (a fixed seed) a MiB at a time; their BLAKE3, hex.
fn write_random(path: &Path, size: u64) -> Result<String> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hasher = blake3::Hasher::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64*: fast, and nothing a compressor or a chunk store could share.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    out.flush()?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// CPU time (user and system) of this process's waited-for children so far, in seconds.
fn children_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the line, 13 and 14 after the name.
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
    };
    Ok((ticks(13)? + ticks(14)?) / crate::bench_kit::CLOCK_TICKS_PER_SECOND)
}
