//! `ferry bench two-way`: two copies of a large two-way feature layer edit it at once and the
//! three instances settle. Three `ferry serve` processes: the origin, peered both ways with each
//! of two copies. Each copy edits `--edits` rows of its copy (one field), 1% of them the same
//! rows as the other copy; then the origin pulls both copies and both copies pull the origin,
//! and the time of those four runs is what is measured, with the conflicts found. The baseline,
//! from the same run and before two-way editing is turned on: the origin itself edits as many
//! rows, and both copies pull the one-way delta.

use crate::bench_kit::{Api, Server, peer_with, prepare_sender, write_geojson, yes};
use crate::bench_sync::settle;
use crate::output::fields;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Goals: the time until all three agree, and its ratio to the one-way delta's.
const GOAL_SECONDS: f64 = 1.0;
const GOAL_RATIO: f64 = 2.0;

#[derive(clap::Args, Debug)]
pub(crate) struct TwoWayBench {
    /// Point features of the layer.
    #[arg(long, default_value_t = 1_000_000)]
    features: u64,
    /// Rows each copy edits (1% of them the same rows as the other copy's).
    #[arg(long, default_value_t = 10_000)]
    edits: u64,
    /// Work directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub(crate) dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TwoWayReport {
    features: u64,
    edits_per_copy: u64,
    /// Rows both copies changed the same field of.
    overlapping_edits: u64,
    conflicts_found: u64,
    /// The origin pulling both copies, then both copies pulling the origin.
    two_way_seconds: f64,
    /// The same number of changes made at the origin, pulled by both copies.
    one_way_seconds: f64,
    vs_one_way: f64,
    /// The three instances' exports of the layer are byte for byte the same.
    all_agree: bool,
    within_goals: bool,
}

pub(crate) fn render(r: &TwoWayReport) -> comfy_table::Table {
    fields(&[
        ("layer", format!("{} points, two copies", r.features)),
        (
            "edits",
            format!(
                "{} on each copy, {} of them to the same rows",
                r.edits_per_copy, r.overlapping_edits
            ),
        ),
        (
            "until all three agree",
            format!(
                "{:.3} s (goal < {GOAL_SECONDS} s); one-way delta of as many changes {:.3} s: {:.2}× (goal ≤ {GOAL_RATIO}×)",
                r.two_way_seconds, r.one_way_seconds, r.vs_one_way
            ),
        ),
        (
            "conflicts found",
            format!(
                "{} (same-field overlaps: {})",
                r.conflicts_found, r.overlapping_edits
            ),
        ),
        ("all three agree", yes(r.all_agree).into()),
        ("within the goals", yes(r.within_goals).into()),
    ])
}

pub(crate) async fn two_way_bench(dir: &Path, args: &TwoWayBench) -> Result<TwoWayReport> {
    let (n, edits) = (args.features, args.edits.min(args.features / 2));
    let overlap = edits / 100;
    eprintln!("generating {n} features...");
    let layer_file = dir.join("layer.geojson");
    write_geojson(&layer_file, n)?;
    let origin = Server::start(&dir.join("origin")).await?;
    let copies = [
        Server::start(&dir.join("copy-1")).await?,
        Server::start(&dir.join("copy-2")).await?,
    ];
    let api = Api {
        http: reqwest::Client::new(),
    };
    prepare_sender(&api, &origin).await?;
    let mut links = Vec::new();
    for copy in &copies {
        let (on_origin, on_copy) = peer_with(&api, &origin, copy, &["features"]).await?;
        // A first run of each link, so no scheduled one starts in the middle of a measurement.
        api.sync(&origin, &on_origin).await?;
        api.sync(copy, &on_copy).await?;
        links.push((on_origin, on_copy));
    }
    eprintln!("importing the layer at the origin and copying it twice...");
    let item = api.import(&origin, &layer_file, "layer").await?;
    let item = item["id"].as_str().context("no item id")?.to_string();
    let mut copy_items = Vec::new();
    for (copy, (_, on_copy)) in copies.iter().zip(&links) {
        api.sync(copy, on_copy).await?;
        let listed = api
            .send(
                copy,
                reqwest::Method::GET,
                "/api/v1/items?space=inbox",
                None,
            )
            .await?;
        copy_items.push(listed[0]["id"].as_str().context("no copy")?.to_string());
    }

    eprintln!(
        "baseline: {} changes at the origin, pulled by both copies...",
        2 * edits
    );
    let keys: Vec<u64> = (0..2 * edits).map(|i| 1 + i * 7 % n).collect();
    edit(&api, &origin, &item, &keys, "origin").await?;
    settle().await;
    let one_way = settle_copies(&api, &copies, &links).await?;

    eprintln!("turning two-way editing on...");
    api.send(
        &origin,
        reqwest::Method::PATCH,
        &format!("/api/v1/items/{item}"),
        Some(json!({"two_way": true})),
    )
    .await?;
    settle_copies(&api, &copies, &links).await?;
    eprintln!("two-way: {edits} edits on each copy, {overlap} to the same rows...");
    // Copy 1 edits the first `edits` keys of a spread; copy 2 the last `edits - overlap` of
    // another spread and `overlap` of copy 1's.
    let first: Vec<u64> = (0..edits).map(|i| 1 + i * 13 % n).collect();
    let mut second: Vec<u64> = (0..edits - overlap)
        .map(|i| 1 + (n / 2 + i * 13) % n)
        .collect();
    second.extend(first.iter().take(overlap as usize));
    edit(&api, &copies[0], &copy_items[0], &first, "copy-1").await?;
    edit(&api, &copies[1], &copy_items[1], &second, "copy-2").await?;
    settle().await;
    let started = Instant::now();
    for (on_origin, _) in &links {
        let (run, took) = api.sync(&origin, on_origin).await?;
        eprintln!(
            "the origin judged {} edits from a copy in {took:.2?}",
            run["rows_received"]
        );
    }
    settle_copies(&api, &copies, &links).await?;
    let two_way = started.elapsed();

    let conflicts = api
        .send(
            &origin,
            reqwest::Method::GET,
            "/api/v1/conflicts?limit=1000",
            None,
        )
        .await?;
    let conflicts_found = conflicts.as_array().map_or(0, Vec::len) as u64;
    let at_origin = export_digest(&api, &origin, &item).await?;
    let mut all_agree = true;
    for (copy, id) in copies.iter().zip(&copy_items) {
        all_agree &= export_digest(&api, copy, id).await? == at_origin;
    }
    let (two_way_seconds, one_way_seconds) = (two_way.as_secs_f64(), one_way.as_secs_f64());
    let vs_one_way = two_way_seconds / one_way_seconds.max(1e-9);
    Ok(TwoWayReport {
        features: n,
        edits_per_copy: edits,
        overlapping_edits: overlap,
        conflicts_found,
        two_way_seconds,
        one_way_seconds,
        vs_one_way,
        all_agree,
        within_goals: all_agree
            && conflicts_found == overlap
            && two_way_seconds < GOAL_SECONDS
            && vs_one_way <= GOAL_RATIO,
    })
}

/// Both copies pull the origin; how long the two runs took.
async fn settle_copies(
    api: &Api,
    copies: &[Server],
    links: &[(String, String)],
) -> Result<Duration> {
    let started = Instant::now();
    for (copy, (_, on_copy)) in copies.iter().zip(links) {
        let (run, took) = api.sync(copy, on_copy).await?;
        eprintln!(
            "a copy took {} rows from the origin in {took:.2?}",
            run["rows_received"]
        );
    }
    Ok(started.elapsed())
}

/// One batch that gives the rows of `keys` a new name (`who` and the key).
async fn edit(api: &Api, server: &Server, item: &str, keys: &[u64], who: &str) -> Result<()> {
    let updates: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k, "values": {"e": format!("{who}-{k}")}}))
        .collect();
    api.post(
        server,
        &format!("/api/v1/items/{item}/edits"),
        json!({"updates": updates}),
    )
    .await?;
    Ok(())
}

/// A digest of an item's NDJSON export: equal exports, equal rows.
async fn export_digest(api: &Api, server: &Server, item: &str) -> Result<u64> {
    use std::hash::{Hash, Hasher};
    let response = api
        .http
        .get(format!(
            "{}/api/v1/items/{item}/export?format=ndjson",
            server.url
        ))
        .bearer_auth(&server.token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("export of {item} failed: {}", response.status());
    }
    let bytes = response.bytes().await?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Ok(hasher.finish())
}
