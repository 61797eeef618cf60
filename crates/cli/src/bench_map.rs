//! `ferry bench map`: the item page's map of a large feature layer. A real `ferry serve` process
//! imports the benchmark layer (points spread over the world) and a 1,000-feature layer of the
//! same kind; at every zoom from 0 to 22, the tile that holds a feature is fetched from each,
//! and the server's own time (`Server-Timing`) and the answer's size are compared. Then headless
//! Chromium, through ChromeDriver, opens each layer's page until the map says it has drawn every
//! tile in view (`data-drawn-ms`, from the page's start).

use crate::bench_console::{fetch_times, median, sign_in};
use crate::bench_kit::{Server, import_geojson, sample, write_geojson, yes};
use crate::output::fields;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Times each tile is fetched; the median and the slowest are reported.
const FETCHES: usize = 10;
/// Times each page's map is drawn in the browser.
const DRAWS: usize = 3;
/// Features of the baseline layer.
const BASELINE_FEATURES: u64 = 1_000;
/// Targets: server time of any tile, its size, and the browser's drawing of the map.
const TILE_MS: f64 = 50.0;
const TILE_BYTES: usize = 1_000_000;
const DRAWN_MS: f64 = 2_000.0;

#[derive(clap::Args, Debug)]
pub(crate) struct MapBench {
    /// Point features of the measured layer.
    #[arg(long, default_value_t = 1_000_000)]
    features: u64,
    /// Skip the browser part (for a machine without chromium and chromedriver).
    #[arg(long)]
    no_browser: bool,
    /// Work directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub(crate) dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TileTime {
    zoom: u32,
    tile: String,
    features: usize,
    truncated: bool,
    bytes: usize,
    median_ms: f64,
    slowest_ms: f64,
    /// The same tile of the 1,000-feature layer.
    baseline_ms: f64,
    vs_baseline: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Drawing {
    /// Median of the runs, from the page's start until every tile in view was drawn.
    median_ms: f64,
    runs_ms: Vec<f64>,
    features_drawn: usize,
    baseline_ms: f64,
    vs_baseline: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct MapReport {
    features: u64,
    tiles: Vec<TileTime>,
    slowest_tile_ms: f64,
    largest_tile_bytes: usize,
    /// `None` when the browser part was skipped.
    drawing: Option<Drawing>,
    tiles_within_target: bool,
    drawing_within_target: Option<bool>,
}

pub(crate) fn render(r: &MapReport) -> comfy_table::Table {
    let mut rows = vec![(
        "layer".to_string(),
        format!(
            "{} points; baseline: the same tiles of a {BASELINE_FEATURES}-point layer",
            r.features
        ),
    )];
    for t in &r.tiles {
        rows.push((
            format!("zoom {} ({})", t.zoom, t.tile),
            format!(
                "{} features{}, {:.0} KB; {:.2} ms median, {:.2} ms slowest; baseline {:.2} ms, {:.1}×",
                t.features,
                if t.truncated { " (thinned)" } else { "" },
                t.bytes as f64 / 1000.0,
                t.median_ms,
                t.slowest_ms,
                t.baseline_ms,
                t.vs_baseline
            ),
        ));
    }
    rows.push((
        format!(
            "every tile within {TILE_MS} ms and {} MB",
            TILE_BYTES / 1_000_000
        ),
        format!(
            "{} (slowest {:.2} ms, largest {:.0} KB)",
            yes(r.tiles_within_target),
            r.slowest_tile_ms,
            r.largest_tile_bytes as f64 / 1000.0
        ),
    ));
    match &r.drawing {
        Some(d) => rows.push((
            format!("map drawn in Chromium (target {DRAWN_MS} ms)"),
            format!(
                "{:.0} ms median of {:?}, {} features; baseline {:.0} ms, {:.1}×: {}",
                d.median_ms,
                d.runs_ms,
                d.features_drawn,
                d.baseline_ms,
                d.vs_baseline,
                yes(r.drawing_within_target == Some(true))
            ),
        )),
        None => rows.push((
            "map drawn in Chromium".into(),
            "not measured (--no-browser)".into(),
        )),
    }
    let borrowed: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    fields(&borrowed)
}

pub(crate) async fn map_bench(dir: &Path, args: &MapBench) -> Result<MapReport> {
    let server = Server::start(&dir.join("instance")).await?;
    let http = reqwest::Client::new();
    let mut layers = Vec::new();
    for (space, n) in [("large", args.features), ("baseline", BASELINE_FEATURES)] {
        eprintln!("importing {n} features into {space}...");
        let path = dir.join(format!("{space}.geojson"));
        write_geojson(&path, n)?;
        http.post(format!("{}/api/v1/spaces", server.url))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({"name": space}))
            .send()
            .await?
            .error_for_status()?;
        layers.push(
            import_geojson(&http, &server, space, &path)
                .await?
                .id
                .to_string(),
        );
        std::fs::remove_file(&path)?;
    }
    let session = sign_in(&server).await?;
    eprintln!("fetching tiles at every zoom...");
    let (lon, lat) = sample(1).position();
    let mut tiles = Vec::new();
    for zoom in 0..=ferry_node::map::MAX_ZOOM {
        let (x, y) = tile_of(zoom, lon, lat);
        let path = |layer: &str| format!("/items/{layer}/tiles/{zoom}/{x}/{y}");
        let large = fetch_tile(&http, &server, &path(&layers[0]), &session).await?;
        let baseline = fetch_tile(&http, &server, &path(&layers[1]), &session).await?;
        let (median_ms, baseline_ms) = (median(&large.times), median(&baseline.times));
        tiles.push(TileTime {
            zoom,
            tile: format!("{zoom}/{x}/{y}"),
            features: large.features,
            truncated: large.truncated,
            bytes: large.bytes,
            median_ms,
            slowest_ms: large.times.iter().copied().fold(0.0, f64::max),
            baseline_ms,
            vs_baseline: median_ms / baseline_ms.max(1e-6),
        });
    }
    let slowest_tile_ms = tiles.iter().map(|t| t.slowest_ms).fold(0.0, f64::max);
    let largest_tile_bytes = tiles.iter().map(|t| t.bytes).max().unwrap_or(0);
    let drawing = if args.no_browser {
        None
    } else {
        eprintln!("drawing the maps in headless Chromium...");
        Some(drawing(&server, &layers).await?)
    };
    Ok(MapReport {
        features: args.features,
        tiles_within_target: slowest_tile_ms < TILE_MS && largest_tile_bytes < TILE_BYTES,
        drawing_within_target: drawing.as_ref().map(|d| d.median_ms < DRAWN_MS),
        tiles,
        slowest_tile_ms,
        largest_tile_bytes,
        drawing,
    })
}

/// The Web Mercator tile of `zoom` that holds a position.
fn tile_of(zoom: u32, lon: f64, lat: f64) -> (u32, u32) {
    let n = f64::from(1u32 << zoom);
    let x = (lon + 180.0) / 360.0 * n;
    let y = (1.0 - lat.to_radians().tan().asinh() / std::f64::consts::PI) / 2.0 * n;
    (x as u32, y as u32)
}

struct Fetched {
    times: Vec<f64>,
    features: usize,
    truncated: bool,
    bytes: usize,
}

/// `FETCHES` answers of one tile: the server's times, and what the last one held.
async fn fetch_tile(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    session: &str,
) -> Result<Fetched> {
    let (times, body) = fetch_times(http, server, path, session, FETCHES).await?;
    let tile: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(Fetched {
        times,
        features: tile["features"].as_array().map_or(0, Vec::len),
        truncated: tile["truncated"] == true,
        bytes: body.len(),
    })
}

/// Each layer's page opened `DRAWS` times in headless Chromium, until its map is drawn.
async fn drawing(server: &Server, layers: &[String]) -> Result<Drawing> {
    let browser = Chromium::start().await?;
    browser.sign_in(server).await?;
    let mut runs = Vec::new();
    for layer in layers {
        let mut times = Vec::new();
        let mut features = 0;
        for _ in 0..DRAWS {
            let (ms, drawn) = browser
                .draw(&format!("{}/items/{layer}", server.url))
                .await?;
            times.push(ms);
            features = drawn;
        }
        runs.push((times, features));
    }
    browser.close().await;
    let (large, baseline) = (&runs[0], &runs[1]);
    let (median_ms, baseline_ms) = (median(&large.0), median(&baseline.0));
    Ok(Drawing {
        median_ms,
        runs_ms: large.0.clone(),
        features_drawn: large.1,
        baseline_ms,
        vs_baseline: median_ms / baseline_ms.max(1e-6),
    })
}

/// Headless Chromium driven through a ChromeDriver child process.
struct Chromium {
    client: fantoccini::Client,
    driver: std::process::Child,
}

impl Chromium {
    async fn start() -> Result<Chromium> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot run chromedriver: install chromium and chromium-driver, or give --no-browser")?;
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1280,900"],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            bail!("capabilities are an object");
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            match fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
            {
                Ok(client) => return Ok(Chromium { client, driver }),
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        bail!("no browser session from chromedriver at {url}: {last_error}")
    }

    /// Signs in with the server's admin token, as a person does.
    async fn sign_in(&self, server: &Server) -> Result<()> {
        self.client.goto(&format!("{}/sign-in", server.url)).await?;
        let field = self.client.find(fantoccini::Locator::Id("token")).await?;
        field.send_keys(&server.token).await?;
        self.client
            .find(fantoccini::Locator::Id("sign-in"))
            .await?
            .click()
            .await?;
        for _ in 0..100 {
            if self.client.current_url().await?.path() != "/sign-in" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("signing in to the console did not leave the sign-in page")
    }

    /// Opens a page and waits for its map: milliseconds from the page's start to the first
    /// drawing of every tile in view, and the features drawn.
    async fn draw(&self, url: &str) -> Result<(f64, usize)> {
        self.client.goto(url).await?;
        let canvas = self
            .client
            .find(fantoccini::Locator::Css("canvas#map"))
            .await
            .context("the page has no map")?;
        for _ in 0..600 {
            if let Some(ms) = canvas.attr("data-drawn-ms").await? {
                let drawn = canvas.attr("data-drawn").await?.unwrap_or_default();
                return Ok((ms.parse()?, drawn.parse().unwrap_or(0)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the map of {url} was not drawn within 12 s")
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
