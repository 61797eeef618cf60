//! What the benchmarks share: generated input, the bare SQLite baseline, and `ferry serve`
//! processes to measure.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One generated feature: a point, 2 integers, 2 floats, 3 short strings and a timestamp.
pub(crate) struct Sample {
    id: u64,
    x: f64,
    y: f64,
    a: i64,
    b: i64,
    c: f64,
    d: f64,
    e: String,
    f: String,
    g: String,
    ts: String,
}

pub(crate) fn sample(i: u64) -> Sample {
    let x = -180.0 + (i * 7919 % 3_600_000) as f64 / 10_000.0;
    let y = -90.0 + (i * 104_729 % 1_800_000) as f64 / 10_000.0;
    Sample {
        id: i,
        x,
        y,
        a: (i % 1000) as i64,
        b: (i * 31 % 100_000) as i64,
        c: (i % 977) as f64 * 1.25,
        d: (i % 613) as f64 / 8.0,
        e: format!("name-{i}"),
        f: format!("kind-{}", i % 17),
        g: format!("zone-{}", i % 251),
        ts: format!(
            "2026-{:02}-{:02}T{:02}:00:00Z",
            1 + i % 12,
            1 + i % 28,
            i % 24
        ),
    }
}

impl Sample {
    /// Its point's longitude and latitude.
    pub(crate) fn position(&self) -> (f64, f64) {
        (self.x, self.y)
    }
}

pub(crate) fn write_geojson(path: &Path, n: u64) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(br#"{"type":"FeatureCollection","features":["#)?;
    for i in 1..=n {
        let s = sample(i);
        let sep = if i == 1 { "" } else { ",\n" };
        write!(
            w,
            r#"{sep}{{"type":"Feature","id":{},"geometry":{{"type":"Point","coordinates":[{},{}]}},"properties":{{"a":{},"b":{},"c":{},"d":{},"e":"{}","f":"{}","g":"{}","ts":"{}"}}}}"#,
            s.id, s.x, s.y, s.a, s.b, s.c, s.d, s.e, s.f, s.g, s.ts
        )?;
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The baseline: the same rows, prepared in memory, inserted into a bare SQLite table with the
/// pragmas Ferry uses, in one transaction.
pub(crate) fn bare_sqlite_insert(path: &Path, n: u64) -> Result<Duration> {
    let rows: Vec<Sample> = (1..=n).map(sample).collect();
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE bare (id INTEGER PRIMARY KEY, x REAL, y REAL, a INTEGER, b INTEGER,
             c REAL, d REAL, e TEXT, f TEXT, g TEXT, ts TEXT);",
    )?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare("INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?;
        for s in &rows {
            stmt.execute(rusqlite::params![
                s.id as i64,
                s.x,
                s.y,
                s.a,
                s.b,
                s.c,
                s.d,
                s.e,
                s.f,
                s.g,
                s.ts
            ])?;
        }
    }
    tx.commit()?;
    Ok(started.elapsed())
}

/// `sysconf(_SC_CLK_TCK)` on Linux.
pub(crate) const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// How a report says whether a target was met.
pub(crate) fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// A `ferry serve` child process on a free port.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) token: String,
}

impl Server {
    pub(crate) async fn start(data: &Path) -> Result<Server> {
        Server::start_with(data, &[]).await
    }

    /// [`Server::start`] with more `serve` flags.
    pub(crate) async fn start_with(data: &Path, more: &[&str]) -> Result<Server> {
        // Runs happen when the benchmark asks, so each measures exactly its own work.
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--realtime", "false", "--listen", "127.0.0.1:0"])
            .args(more)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start ferry serve")?;
        let endpoint = data.join(ferry_server::instance::ENDPOINT_FILE);
        for _ in 0..300 {
            if let Ok(url) = std::fs::read_to_string(&endpoint) {
                let token =
                    std::fs::read_to_string(data.join(ferry_server::instance::ADMIN_TOKEN_FILE))?;
                return Ok(Server {
                    child,
                    url: url.trim().to_string(),
                    token: token.trim().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("ferry serve did not start within 15 s")
    }

    /// Starts a new peak-memory measurement: the kernel's high-water mark goes back to the
    /// current resident size (`/proc/PID/clear_refs`, value 5).
    pub(crate) fn reset_peak_rss(&self) -> Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .context("cannot reset the server's peak memory")
    }

    /// CPU time (user + system) the server process has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may hold spaces, so split after its ')').
        let after = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64> {
            Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
        };
        // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
        Ok((ticks(11)? + ticks(12)?) / CLOCK_TICKS_PER_SECOND)
    }

    /// Peak resident memory of the server process so far.
    pub(crate) fn peak_rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc status")?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Imports a GeoJSON file as a layer of `space` (which must exist), streamed from disk.
pub(crate) async fn import_geojson(
    http: &reqwest::Client,
    server: &Server,
    space: &str,
    path: &Path,
) -> Result<ferry_proto::Item> {
    upload(http, server, (space, space), path, "application/geo+json").await
}

/// Imports a file from disk, streamed, as an item of `space` titled `title`, with its type.
pub(crate) async fn upload(
    http: &reqwest::Client,
    server: &Server,
    (space, title): (&str, &str),
    path: &Path,
    content_type: &str,
) -> Result<ferry_proto::Item> {
    let file = tokio::fs::File::open(path).await?;
    let bytes = file.metadata().await?.len();
    let response = http
        .post(format!(
            "{}/api/v1/items/import?space={space}&title={title}",
            server.url
        ))
        .bearer_auth(&server.token)
        .header("content-type", content_type)
        .header("content-length", bytes)
        .body(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024),
        ))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("import failed: {}", response.text().await?);
    }
    Ok(response.json().await?)
}

/// The REST API of bench servers, as their admin.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) async fn send(
        &self,
        server: &Server,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(&server.token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, server: &Server, path: &str, body: Value) -> Result<Value> {
        self.send(server, reqwest::Method::POST, path, Some(body))
            .await
    }
}

/// Opens loopback in A's policy and makes its `bench` space.
pub(crate) async fn prepare_sender(api: &Api, a: &Server) -> Result<()> {
    open_loopback(api, a).await?;
    api.post(a, "/api/v1/spaces", json!({"name": "bench"}))
        .await?;
    Ok(())
}

async fn open_loopback(api: &Api, server: &Server) -> Result<()> {
    for (direction, pattern) in [("ingress", "127.0.0.0/8"), ("egress", "127.0.0.1")] {
        api.post(
            server,
            "/api/v1/policies",
            json!({"direction": direction, "effect": "allow", "pattern": pattern}),
        )
        .await?;
    }
    Ok(())
}

/// A exports features from `bench` to B's `inbox`; returns B's connection id.
pub(crate) async fn peer(api: &Api, a: &Server, b: &Server) -> Result<String> {
    Ok(peer_with(api, a, b, &[]).await?.1)
}

/// A exports features from `bench` to B's `inbox` and imports `import` from it; returns the
/// connection's id on A and on B.
pub(crate) async fn peer_with(
    api: &Api,
    a: &Server,
    b: &Server,
    import: &[&str],
) -> Result<(String, String)> {
    peer_exporting(api, a, b, &["features"], import).await
}

/// A exports `export` from `bench` to B's `inbox` and imports `import` from it; returns the
/// connection's id on A and on B.
pub(crate) async fn peer_exporting(
    api: &Api,
    a: &Server,
    b: &Server,
    export: &[&str],
    import: &[&str],
) -> Result<(String, String)> {
    open_loopback(api, b).await?;
    api.post(b, "/api/v1/spaces", json!({"name": "inbox"}))
        .await?;
    let request = api
        .post(
            a,
            "/api/v1/peers/requests",
            json!({"space": "bench", "export": export, "import": import}),
        )
        .await?;
    let imported = api
        .post(b, "/api/v1/peers/import", json!({"code": request["code"]}))
        .await?;
    let on_b = imported["id"]
        .as_str()
        .context("no connection id")?
        .to_string();
    api.post(
        b,
        &format!("/api/v1/peers/{on_b}/approve"),
        json!({"space": "inbox"}),
    )
    .await?;
    let on_a = request["connection"]["id"]
        .as_str()
        .context("no connection id")?
        .to_string();
    api.post(a, &format!("/api/v1/peers/{on_a}/activate"), json!({}))
        .await?;
    Ok((on_a, on_b))
}
