//! Real instances for tests: each runs the real server in this process on 127.0.0.1:0 with its own
//! SQLite file in a temporary directory, reached over real HTTP.

use ed25519_dalek::SigningKey;
use ferry_proto::signing::{self, RequestTarget};
use ferry_server::{Config, Instance};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestInstance {
    pub url: String,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
    /// What it was started with, for a restart.
    config: Config,
}

impl TestInstance {
    pub async fn start() -> TestInstance {
        Self::start_with(|_| {}).await
    }

    /// Starts an instance after `tweak` adjusts its configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestInstance {
        ferry_server::tls::install_default_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(dir.path());
        config.title = "Test instance".into();
        tweak(&mut config);
        let mut instance = Self::launch(dir, config, "127.0.0.1:0").await;
        instance.admin_token = std::fs::read_to_string(instance.dir.path().join("admin-token"))
            .expect("admin token written at first start")
            .trim()
            .to_string();
        instance
    }

    async fn launch(dir: tempfile::TempDir, config: Config, address: &str) -> TestInstance {
        let kept = config.clone();
        let instance = tokio::task::spawn_blocking(move || Instance::open(config))
            .await
            .unwrap()
            .expect("instance opens");
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let scheme = if kept.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let http = match &kept.tls_ca_bundle {
            Some(ca) => reqwest::Client::builder()
                .use_preconfigured_tls(ferry_server::tls::client_config(Some(ca)).unwrap())
                .build()
                .unwrap(),
            None => reqwest::Client::new(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(ferry_server::serve(instance, listener, async {
            let _ = rx.await;
        }));
        TestInstance {
            url,
            admin_token: String::new(),
            dir,
            shutdown: Some(tx),
            task: Some(task),
            http,
            config: kept,
        }
    }

    /// Stops gracefully and starts again on the same data directory and address, as an
    /// instance that restarts keeps its URL.
    pub async fn restart(mut self) -> TestInstance {
        self.stop().await;
        let token = std::mem::take(&mut self.admin_token);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let config = self.config.clone();
        let address = self.url.trim_start_matches("http://").to_string();
        let mut again = Self::launch(dir, config, &address).await;
        again.admin_token = token;
        again
    }

    /// Copies the (stopped) instance's database aside, as an operator's backup.
    pub fn back_up(&self) {
        let db = self.data_dir().join("ferry.db");
        std::fs::copy(db, self.data_dir().join("backup.db")).unwrap();
    }

    /// Puts the backup back in place of the (stopped) instance's database.
    pub fn restore_backup(&self) {
        let dir = self.data_dir();
        std::fs::copy(dir.join("backup.db"), dir.join("ferry.db")).unwrap();
        for extra in ["ferry.db-wal", "ferry.db-shm"] {
            let _ = std::fs::remove_file(dir.join(extra));
        }
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Sends as admin; returns the status and the JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(&self.admin_token.clone(), method, path, body)
            .await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = self.request(method, path, Some(token));
        if let Some(b) = body {
            builder = builder.json(&b);
        }
        into_json(builder.send().await.expect("request sent")).await
    }

    /// The Prometheus text page (`/metrics` needs a token, of any role).
    pub async fn metrics(&self) -> String {
        let response = self.request(Method::GET, "/metrics", Some(&self.admin_token));
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Imports raw bytes; returns status and body.
    pub async fn import(
        &self,
        query: &str,
        content_type: &str,
        bytes: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let builder = self
            .request(
                Method::POST,
                &format!("/api/v1/items/import?{query}"),
                Some(&self.admin_token),
            )
            .header("content-type", content_type)
            .body(bytes);
        into_json(builder.send().await.expect("import sent")).await
    }

    /// `GET /api/v1/items/{id}/export{query}` as admin, with optional extra headers.
    pub async fn export(
        &self,
        id: &str,
        query: &str,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let mut builder = self.request(
            Method::GET,
            &format!("/api/v1/items/{id}/export{query}"),
            Some(&self.admin_token),
        );
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        builder.send().await.expect("export sent")
    }

    /// An export's body as text (`query`: `?format=...`).
    pub async fn export_text(&self, id: &str, query: &str) -> String {
        let response = self.export(id, query, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "export {id}{query}");
        response.text().await.unwrap()
    }

    /// A POST with a raw body and an optional Content-Type, as admin.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut builder = self
            .request(Method::POST, path, Some(&self.admin_token))
            .body(body);
        if let Some(t) = content_type {
            builder = builder.header("content-type", t);
        }
        into_json(builder.send().await.expect("request sent")).await
    }

    pub async fn create_space(&self, name: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/spaces",
                Some(serde_json::json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn create_token(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(serde_json::json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Everything a bad input must leave untouched: items, last sequence, chunk files.
    pub async fn snapshot(&self) -> (Value, i64, usize) {
        let items = self.get("/api/v1/items").await;
        let seq = self.get("/api/v1/instance").await["last_seq"]
            .as_i64()
            .unwrap();
        (items, seq, count_files(&self.data_dir().join("chunks")))
    }

    /// Runs the real `ferry` binary against this instance (trusting its test CA, if any).
    pub fn ferry(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        command
            .args(["--server", &self.url, "--token", &self.admin_token])
            .args(args)
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_TOKEN");
        if let Some(ca) = &self.config.tls_ca_bundle {
            command.env("FERRY_CA_BUNDLE", ca);
        }
        command.output().expect("ferry runs")
    }
}

impl Drop for TestInstance {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn ferry_with_token(url: &str, token: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--server", url, "--token", token])
        .args(args)
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_TOKEN")
        .output()
        .expect("ferry runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `ferry ... --json` and parses its output, asserting success.
pub fn ferry_json(instance: &TestInstance, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = instance.ferry(&all);
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ferry {args:?}: not JSON ({e}): {}", stdout(&out)))
}

async fn into_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A temporary file with `contents`, named `name`.
pub fn temp_file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A GeoJSON FeatureCollection of `n` points with a few typed properties.
pub fn points_geojson(n: usize) -> String {
    let features: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","id":{i},"geometry":{{"type":"Point","coordinates":[{x},{y}]}},"properties":{{"name":"p{i}","n":{m},"v":{i}.5}}}}"#,
                x = (i % 360) as f64 - 180.0 + 0.25,
                y = (i % 180) as f64 - 90.0 + 0.25,
                m = i % 7
            )
        })
        .collect();
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

/// Starts a real `ferry serve` process on a free port, with `data` as its data directory, and
/// waits until it has written its endpoint file.
pub async fn spawn_serve(data: &Path, title: &str) -> std::process::Child {
    spawn_serve_with(data, &["--listen", "127.0.0.1:0", "--title", title]).await
}

/// `ferry serve ARGS` on `data`, once it listens (its endpoint file is written).
pub async fn spawn_serve_with(data: &Path, args: &[&str]) -> std::process::Child {
    let _ = std::fs::remove_file(data.join("endpoint"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("serve")
        .args(args)
        .env("FERRY_DATA_DIR", data)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry serve starts");
    for _ in 0..200 {
        if data.join("endpoint").exists() {
            return child;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let status = child.wait();
    panic!(
        "ferry serve did not write {}/endpoint within 10 s ({status:?})",
        data.display()
    );
}

/// Waits (up to 10 s) for a `ferry serve` process to write the endpoint file in its data
/// directory; returns the URL in it.
pub async fn endpoint_of(data: &Path) -> String {
    let endpoint = data.join("endpoint");
    for _ in 0..200 {
        if let Ok(url) = std::fs::read_to_string(&endpoint) {
            return url.trim().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "ferry serve did not write {} within 10 s",
        endpoint.display()
    );
}

/// Runs the `ferry` CLI with no --server or --token: it finds the server and the admin token
/// through the data directory, as a local admin would.
pub fn ferry_local(data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_DATA_DIR", data)
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_TOKEN")
        .output()
        .expect("ferry runs")
}

/// The `event` of each audit entry, in order.
pub fn events(log: &Value) -> Vec<String> {
    log.as_array()
        .expect("an audit log is a JSON array")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// An instance's id, as it reports it.
pub async fn instance_id(inst: &TestInstance) -> String {
    inst.get("/api/v1/instance").await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The instance's own signing key, read from its data directory.
pub fn key_of(inst: &TestInstance) -> SigningKey {
    let hex = std::fs::read_to_string(inst.data_dir().join("identity.key")).unwrap();
    let seed: [u8; 32] = data_encoding::HEXLOWER
        .decode(hex.trim().as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    SigningKey::from_bytes(&seed)
}

/// A signed federation request, made by hand.
pub struct Forged {
    pub digest_header: String,
    pub signature: String,
    pub body: Vec<u8>,
}

pub fn forge(
    key: &SigningKey,
    key_id: &str,
    path: &str,
    body: &Value,
    created: i64,
    nonce: [u8; 16],
) -> Forged {
    let body = serde_json::to_vec(body).unwrap();
    let digest = signing::body_digest(&body);
    let target = RequestTarget {
        method: "POST",
        path_and_query: path,
        body_digest: &digest,
    };
    Forged {
        digest_header: signing::content_digest(&digest),
        signature: signing::sign(key, key_id, &target, created, nonce),
        body,
    }
}

/// Sends a hand-made signed request.
pub async fn send_forged(inst: &TestInstance, path: &str, f: &Forged) -> (StatusCode, Value) {
    let r = inst
        .request(Method::POST, path, None)
        .header("content-type", "application/json")
        .header(signing::DIGEST_HEADER, &f.digest_header)
        .header(signing::SIGNATURE_HEADER, &f.signature)
        .body(f.body.clone())
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

type LineRewrite = dyn Fn(&str) -> Vec<String> + Send + Sync;

/// An HTTP proxy in front of an instance: forwards every request unchanged, and lets a test
/// rewrite the lines of sync streams on their way back (a misbehaving sender).
pub struct Proxy {
    pub url: String,
    target: std::sync::Arc<std::sync::Mutex<String>>,
    delay: std::sync::Arc<std::sync::Mutex<std::time::Duration>>,
    /// Chunk requests seen, and how many more may pass (`usize::MAX`: all).
    chunks_seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    chunks_allowed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    rewrite: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<LineRewrite>>>>,
    /// Sync answers stop after this many bytes, their connection dropped mid-body.
    drop_after: std::sync::Arc<std::sync::Mutex<Option<usize>>>,
    /// The stream encoding of each sync answer passed on (`plain` when none).
    encodings: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Paths answered by the proxy itself with this many bytes of zeros (a hostile peer's
    /// endless answer), streamed.
    floods: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    /// The sender's key, when the proxy plays the sender itself: rewritten streams are signed
    /// again with it. Without it the proxy is a man in the middle, whose changes show.
    signer: std::sync::Arc<std::sync::Mutex<Option<SigningKey>>>,
    /// Control answers (by path) changed on their way back, as a man in the middle would.
    answer_rewrites:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, AnswerRewrite>>>,
}

type AnswerRewrite = std::sync::Arc<dyn Fn(&str) -> String + Send + Sync>;

impl Proxy {
    pub async fn start() -> Proxy {
        ferry_server::tls::install_default_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let rewrite: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<LineRewrite>>>> =
            Default::default();
        let delay: std::sync::Arc<std::sync::Mutex<std::time::Duration>> = Default::default();
        let chunks_seen: std::sync::Arc<std::sync::atomic::AtomicUsize> = Default::default();
        let chunks_allowed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        let drop_after: std::sync::Arc<std::sync::Mutex<Option<usize>>> = Default::default();
        let encodings: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let seen_encodings = encodings.clone();
        let floods: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
            Default::default();
        let flooded = floods.clone();
        let signer: std::sync::Arc<std::sync::Mutex<Option<SigningKey>>> = Default::default();
        let signs = signer.clone();
        let answer_rewrites: std::sync::Arc<
            std::sync::Mutex<std::collections::HashMap<String, AnswerRewrite>>,
        > = Default::default();
        let rewrites_answers = answer_rewrites.clone();
        let (t, r, d, cut) = (
            target.clone(),
            rewrite.clone(),
            delay.clone(),
            drop_after.clone(),
        );
        let (seen, allowed) = (chunks_seen.clone(), chunks_allowed.clone());
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (t, r, d, http) = (t.clone(), r.clone(), d.clone(), http.clone());
            let cut = *cut.lock().unwrap();
            let seen_encodings = seen_encodings.clone();
            let (seen, allowed) = (seen.clone(), allowed.clone());
            let flood = flooded.lock().unwrap().get(request.uri().path()).copied();
            let key = signs.lock().unwrap().clone();
            let answer_rewrite = rewrites_answers
                .lock()
                .unwrap()
                .get(request.uri().path())
                .cloned();
            async move {
                if let Some(bytes) = flood {
                    return endless_answer(bytes);
                }
                if request.uri().path() == "/federation/v1/sync/pull" {
                    let pause = *d.lock().unwrap();
                    tokio::time::sleep(pause).await;
                }
                if request.uri().path() == "/federation/v1/sync/chunk" {
                    use std::sync::atomic::Ordering::SeqCst;
                    let n = seen.fetch_add(1, SeqCst);
                    if n >= allowed.load(SeqCst) {
                        // The connection drops mid-transfer.
                        return axum::response::Response::builder()
                            .status(500)
                            .body(axum::body::Body::from("cut"))
                            .unwrap();
                    }
                }
                let streamed = SYNC_STREAMS.contains(&request.uri().path());
                let response = forward(&http, &t, &r, key, request).await;
                let response = match answer_rewrite {
                    Some(f) => rewrite_answer(response, &*f).await,
                    None => response,
                };
                if streamed {
                    let encoding = response
                        .headers()
                        .get(ferry_proto::frames::ENCODING_HEADER)
                        .map_or("plain", |v| v.to_str().unwrap_or("unreadable"));
                    seen_encodings.lock().unwrap().push(encoding.to_string());
                }
                match cut {
                    Some(bytes) if streamed => drop_mid_body(response, bytes).await,
                    _ => response,
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy {
            url,
            target,
            delay,
            chunks_seen,
            chunks_allowed,
            rewrite,
            drop_after,
            encodings,
            floods,
            signer,
            answer_rewrites,
        }
    }

    /// Changes every answer to `path` with `f` (its body as text) on the way back.
    pub fn rewrite_answers(&self, path: &str, f: impl Fn(&str) -> String + Send + Sync + 'static) {
        self.answer_rewrites
            .lock()
            .unwrap()
            .insert(path.to_string(), std::sync::Arc::new(f));
    }

    /// The proxy plays the sender whose key this is: streams it rewrites carry valid
    /// signatures again, as a hostile sender's own would.
    pub fn sign_as(&self, key: SigningKey) {
        *self.signer.lock().unwrap() = Some(key);
    }

    /// Answers every request to `path` with `bytes` bytes of zeros, streamed: a peer whose answer
    /// never ends.
    pub fn flood_answers(&self, path: &str, bytes: u64) {
        self.floods.lock().unwrap().insert(path.to_string(), bytes);
    }

    /// The stream encoding of each sync answer so far (`plain` when none).
    pub fn sync_encodings(&self) -> Vec<String> {
        self.encodings.lock().unwrap().clone()
    }

    /// Sync pulls and whole-item answers send this many bytes, then their connection drops
    /// (`None`: whole answers again).
    pub fn drop_sync_after(&self, bytes: Option<usize>) {
        *self.drop_after.lock().unwrap() = bytes;
    }

    /// File chunk requests seen so far.
    pub fn chunk_requests(&self) -> usize {
        self.chunks_seen.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets `n` more chunk requests through, then fails the rest (`usize::MAX`: all pass).
    pub fn allow_chunks(&self, n: usize) {
        let seen = self.chunk_requests();
        self.chunks_allowed
            .store(seen.saturating_add(n), std::sync::atomic::Ordering::SeqCst);
    }

    /// Holds every sync pull this long before passing it on.
    pub fn delay_pulls(&self, pause: std::time::Duration) {
        *self.delay.lock().unwrap() = pause;
    }

    pub fn point_at(&self, url: &str) {
        *self.target.lock().unwrap() = url.to_string();
    }

    /// Rewrites each line of every sync pull and whole-item answer into zero or more lines.
    pub fn rewrite_sync_lines(&self, f: impl Fn(&str) -> Vec<String> + Send + Sync + 'static) {
        *self.rewrite.lock().unwrap() = Some(std::sync::Arc::new(f));
    }
}

/// The federation calls that answer with a sync stream.
const SYNC_STREAMS: [&str; 2] = ["/federation/v1/sync/pull", "/federation/v1/sync/item"];

/// The answer with its body changed by `f`, its headers (the signature too) as they were.
async fn rewrite_answer(
    response: axum::response::Response,
    f: &(dyn Fn(&str) -> String + Send + Sync),
) -> axum::response::Response {
    let (mut parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let changed = f(&String::from_utf8_lossy(&body));
    parts.headers.remove("content-length");
    axum::response::Response::from_parts(parts, axum::body::Body::from(changed))
}

/// A 200 answer of `bytes` zeros, made as it is sent (64 KiB at a time, no length given).
fn endless_answer(bytes: u64) -> axum::response::Response {
    const PIECE: u64 = 64 << 10;
    let pieces = bytes.div_ceil(PIECE);
    let body = futures_util::StreamExt::map(futures_util::stream::iter(0..pieces), move |i| {
        let len = PIECE.min(bytes - i * PIECE) as usize;
        Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![0u8; len]))
    });
    axum::response::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(body))
        .unwrap()
}

/// The first `bytes` of the response's body, then an error that makes the server drop the
/// connection before the body is complete.
async fn drop_mid_body(
    response: axum::response::Response,
    bytes: usize,
) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let mut whole = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let head = whole.split_to(bytes.min(whole.len()));
    // The head goes out (with the status line and headers) before the connection drops.
    let body = futures_util::stream::unfold(Some(head), |head| async move {
        match head {
            Some(head) => Some((Ok(head), None)),
            None => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
                Some((Err::<axum::body::Bytes, _>(cut), None))
            }
        }
    });
    let body = axum::body::Body::from_stream(body);
    axum::response::Response::from_parts(parts, body)
}

async fn forward(
    http: &reqwest::Client,
    target: &std::sync::Mutex<String>,
    rewrite: &std::sync::Mutex<Option<std::sync::Arc<LineRewrite>>>,
    signer: Option<SigningKey>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let nonce = parts
        .headers
        .get(signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| signing::SignatureHeader::parse(v).ok())
        .map_or([0; 16], |s| s.nonce);
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let url = format!("{}{path}", target.lock().unwrap());
    let mut outgoing = http.request(parts.method.clone(), url).body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.unwrap();
    let status = answer.status();
    let headers = answer.headers().clone();
    let framed = headers
        .get(ferry_proto::frames::ENCODING_HEADER)
        .is_some_and(|v| v.as_bytes() == ferry_proto::frames::LZ4_FRAMES.as_bytes());
    let mut body = answer.bytes().await.unwrap().to_vec();
    let rewrite = rewrite.lock().unwrap().clone();
    if let Some(f) = rewrite
        && SYNC_STREAMS.contains(&parts.uri.path())
    {
        if framed {
            let mut decoder = ferry_proto::frames::FrameDecoder::default();
            decoder.push(&body);
            let mut plain = Vec::new();
            while decoder.next_into(&mut plain).unwrap() {}
            body = plain;
        }
        let text = String::from_utf8(body).unwrap();
        body = rewrite_stream(&text, &*f, signer.as_ref(), nonce).into_bytes();
        if framed {
            body = ferry_proto::frames::encode_frame(&body);
        }
    }
    let mut response = axum::response::Response::builder().status(status);
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response.body(axum::body::Body::from(body)).unwrap()
}

/// A sync stream with every line but its `sig` records rewritten by `f`; each `sig` record `f`
/// keeps is made again over the new lines when the proxy holds the sender's key, else kept as
/// it was.
fn rewrite_stream(
    text: &str,
    f: &LineRewrite,
    signer: Option<&SigningKey>,
    nonce: [u8; 16],
) -> String {
    let mut signature = signing::StreamSignature::new(nonce);
    let mut out = String::new();
    let mut emit = |line: String, signature: &mut signing::StreamSignature| {
        let line = format!("{line}\n");
        signature.line(line.as_bytes());
        out.push_str(&line);
    };
    for line in text.lines() {
        if !line.starts_with(r#"{"t":"sig""#) {
            for rewritten in f(line) {
                emit(rewritten, &mut signature);
            }
            continue;
        }
        // A rewrite that drops a sig record (a stream cut short) drops it.
        if f(line).is_empty() {
            continue;
        }
        let sig = match signer {
            Some(key) => {
                let sig = ferry_proto::SyncRecord::Sig {
                    sig: signature.sign(key),
                };
                serde_json::to_string(&sig).unwrap()
            }
            None => line.to_string(),
        };
        emit(sig, &mut signature);
    }
    out
}

/// A private PKI made with `openssl` for a test: a CA, and a certificate it signed for
/// 127.0.0.1 and localhost.
pub struct TestPki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    pub fn new(name: &str) -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let path = |file: &str| dir.path().join(file);
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs (Debian's openssl package; .ci/run installs it)");
            assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let ca_subject = format!("/CN={name} test CA");
        let mut ca = vec![
            "req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem",
        ];
        ca.extend(ec);
        ca.extend(["-subj", &ca_subject]);
        run(&ca);
        let mut csr = vec![
            "req",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ];
        csr.extend(ec);
        run(&csr);
        std::fs::write(
            path("leaf.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "leaf.pem",
            "-extfile",
            "leaf.ext",
        ]);
        TestPki {
            ca: path("ca.pem"),
            cert: path("leaf.pem"),
            key: path("leaf.key"),
            _dir: dir,
        }
    }

    /// Serves HTTPS with this PKI's certificate and trusts its CA.
    pub fn apply(&self, config: &mut Config) {
        config.tls = Some((self.cert.clone(), self.key.clone()));
        config.tls_ca_bundle = Some(self.ca.clone());
    }
}

/// Lets loopback instances talk: ingress from loopback, egress to 127.0.0.1.
pub fn open_policies(inst: &TestInstance) {
    ferry_json(inst, &["policy", "ingress", "allow", "127.0.0.0/8"]);
    ferry_json(inst, &["policy", "egress", "allow", "127.0.0.1"]);
}

/// An active peer connection from A's space `roads` to B's space `inbox`, A exporting
/// `export`; B's approval adds `approve_extra` (e.g. `--mark PARTNER`). Returns the connection
/// id on A and on B.
pub fn peered(
    a: &TestInstance,
    b: &TestInstance,
    export: &str,
    approve_extra: &[&str],
) -> (String, String) {
    let created = ferry_json(
        a,
        &["peer", "request", "--space", "roads", "--export", export],
    );
    let imported = ferry_json(b, &["peer", "import", created["code"].as_str().unwrap()]);
    let on_b = imported["id"].as_str().unwrap().to_string();
    let mut approve = vec!["peer", "approve", &on_b, "--space", "inbox"];
    approve.extend_from_slice(approve_extra);
    ferry_json(b, &approve);
    let on_a = created["connection"]["id"].as_str().unwrap().to_string();
    ferry_json(a, &["peer", "activate", &on_a]);
    (on_a, on_b)
}

/// Waits until `check` holds, for up to 10 s; `what` names it when it never does.
pub async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}
