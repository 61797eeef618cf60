//! Faults during sync: `ferry serve` processes killed with SIGKILL at random points, and a proxy
//! that cuts streams. After each fault, syncing again leaves the receiver equal to the sender:
//! no row lost, none duplicated.

use crate::harness::{
    Proxy, TestInstance, ferry_json, ferry_local, open_policies, peered, points_geojson,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `ferry serve` process that can be killed and started again on the same address.
struct Process {
    data: PathBuf,
    title: String,
    listen: String,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Process {
    async fn start(data: PathBuf, title: &str) -> Process {
        let mut p = Process {
            data,
            title: title.into(),
            listen: format!("127.0.0.1:{}", free_port()),
            child: None,
        };
        p.launch().await;
        p
    }

    async fn launch(&mut self) {
        let endpoint = self.data.join("endpoint");
        let _ = std::fs::remove_file(&endpoint);
        let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["serve", "--listen", &self.listen, "--title", &self.title])
            .env("FERRY_DATA_DIR", &self.data)
            .env("RUST_LOG", "error")
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry serve starts");
        self.child = Some(child);
        for _ in 0..400 {
            if endpoint.exists()
                && reqwest::get(format!("http://{}/healthz", self.listen))
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("ferry serve at {} did not come up", self.listen);
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The command's JSON answer, success or not.
    fn try_cli(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = ferry_local(&self.data, &all);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn cli(&self, args: &[&str]) -> Value {
        let out = ferry_local(&self.data, &{
            let mut all = vec!["--json"];
            all.extend_from_slice(args);
            all
        });
        assert!(
            out.status.success(),
            "ferry {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every row of every item of a space, by item title: (key, values, geometry), in key order.
async fn contents(url: &str, token: &str, space: &str) -> Vec<(String, Vec<Value>)> {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let token = token.to_string();
        async move {
            let r = http.get(path).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let items = get(format!("{url}/api/v1/items?space={space}")).await;
    let mut out = Vec::new();
    for item in items.as_array().unwrap() {
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!(
                "{url}/api/v1/items/{}/rows?limit=10000",
                item["id"].as_str().unwrap()
            );
            if let Some(a) = &after {
                path.push_str(&format!("&after={a}"));
            }
            let page = get(path).await;
            for r in page["rows"].as_array().unwrap() {
                rows.push(json!([r["key"], r["values"], r["geometry"]]));
            }
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
        assert_eq!(
            rows.len() as i64,
            item["row_count"].as_i64().unwrap(),
            "row count of {}",
            item["title"]
        );
        out.push((item["title"].as_str().unwrap().to_string(), rows));
    }
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A small deterministic generator: trials differ, and a failing seed can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Two processes on loopback, their policies open to each other, the sender's space "roads"
/// connected to the receiver's "inbox" with `request` (the export and import flags); returns
/// both, and the connection's id on the receiver and on the sender.
async fn connected_pair(dir: &Path, request: &[&str]) -> (Process, Process, String, String) {
    let sender = Process::start(dir.join("sender"), "City GIS").await;
    let receiver = Process::start(dir.join("receiver"), "Harbor Authority").await;
    for p in [&sender, &receiver] {
        p.cli(&["policy", "ingress", "allow", "127.0.0.0/8"]);
        p.cli(&["policy", "egress", "allow", "127.0.0.1"]);
    }
    sender.cli(&["space", "create", "roads"]);
    receiver.cli(&["space", "create", "inbox"]);
    let mut args = vec!["peer", "request", "--space", "roads"];
    args.extend_from_slice(request);
    let created = sender.cli(&args);
    let imported = receiver.cli(&["peer", "import", created["code"].as_str().unwrap()]);
    let link = imported["id"].as_str().unwrap().to_string();
    receiver.cli(&["peer", "approve", &link, "--space", "inbox"]);
    let on_sender = created["connection"]["id"].as_str().unwrap().to_string();
    sender.cli(&["peer", "activate", &on_sender]);
    (sender, receiver, link, on_sender)
}

/// Background runs (pokes, the schedule) may still hold a link: the run asked for is then
/// skipped, never run twice; asks until one completes, and returns the last answer.
async fn run_until_completed(p: &Process, link: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = p.try_cli(&["sync", "now", link]);
        if last["status"] == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last
}

/// Starts `ferry sync now LINK` on `puller`, waits `wait_ms`, kills (SIGKILL) and restarts
/// `puller` itself or `other`, lets the run end, then runs the link until a run completes;
/// that run's answer.
async fn sync_through_a_kill(
    puller: &mut Process,
    other: &mut Process,
    link: &str,
    wait_ms: u64,
    kill_puller: bool,
) -> Value {
    let mut run = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sync", "now", link])
        .env("FERRY_DATA_DIR", &puller.data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
    let victim = if kill_puller { &mut *puller } else { other };
    victim.kill();
    victim.launch().await;
    let _ = run.wait();
    run_until_completed(puller, link).await
}

/// Kills the receiver, then the sender, at random points of large syncs, many times; after each
/// kill and restart, one more sync makes the receiver equal to the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_processes_lose_and_duplicate_nothing() {
    ferry_server::tls::install_default_provider();
    let trials: u64 = std::env::var("FERRY_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed = std::env::var("FERRY_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond() as u64);
    eprintln!("kill trials: {trials}, seed {seed}");
    let mut random = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let (mut sender, mut receiver, link, _) =
        connected_pair(dir.path(), &["--export", "features,datasets"]).await;
    let layer = write(dir.path(), "layer.geojson", &points_geojson(20_000));
    let first = sender.cli(&[
        "item", "import", &layer, "--space", "roads", "--title", "Big",
    ]);
    let big = first["id"].as_str().unwrap().to_string();

    for trial in 0..trials {
        // New work for this trial: changes to the big layer and a new item.
        let edits = json!({
            "updates": (0..200).map(|i| json!({"key": 1 + (trial * 997 + i * 89) % 19_000, "values": {"name": format!("t{trial}-{i}")}})).collect::<Vec<_>>(),
            "deletes": [20_000 - trial],
        });
        let edit_file = write(dir.path(), "edits.json", &edits.to_string());
        sender.cli(&["item", "edit", &big, "--file", &edit_file]);
        let extra = write(
            dir.path(),
            "extra.geojson",
            &points_geojson(2_000 + 500 * trial as usize),
        );
        sender.cli(&[
            "item",
            "import",
            &extra,
            "--space",
            "roads",
            "--title",
            &format!("Extra {trial}"),
        ]);

        let wait = random.below(1_500);
        let last =
            sync_through_a_kill(&mut receiver, &mut sender, &link, wait, trial % 2 == 0).await;
        assert_eq!(
            last["status"], "completed",
            "trial {trial} (seed {seed}): {last}"
        );
        assert_eq!(
            contents(&receiver.url(), &receiver.token(), "inbox").await,
            contents(&sender.url(), &sender.token(), "roads").await,
            "trial {trial} (seed {seed}): the receiver differs from the sender"
        );
    }
}

/// File copies under SIGKILL: each trial the sender imports a 24 MiB file and the receiver
/// pulls it; the receiver or the sender is killed at a random point of the transfer. After a
/// restart and one more run, every file is at the receiver once, byte for byte, and the
/// receiver holds exactly the chunks its files use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_processes_lose_and_duplicate_no_file() {
    ferry_server::tls::install_default_provider();
    let seed = jiff::Timestamp::now().as_nanosecond() as u64;
    let mut random = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let (mut sender, mut receiver, link, _) =
        connected_pair(dir.path(), &["--export", "files"]).await;
    for trial in 0..4u64 {
        let bytes: Vec<u8> = (0..24 << 20).map(|_| random.below(256) as u8).collect();
        let path = dir.path().join(format!("survey-{trial}.bin"));
        std::fs::write(&path, &bytes).unwrap();
        let title = format!("Survey {trial}");
        sender.cli(&[
            "item",
            "import",
            path.to_str().unwrap(),
            "--space",
            "roads",
            "--title",
            &title,
        ]);
        let wait = random.below(400);
        let last =
            sync_through_a_kill(&mut receiver, &mut sender, &link, wait, trial % 2 == 0).await;
        assert_eq!(
            last["status"], "completed",
            "trial {trial} (seed {seed}): {last}"
        );
        let received = receiver.cli(&["item", "list", "--space", "inbox"]);
        let titles: Vec<&str> = received
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..=trial).map(|t| format!("Survey {t}")).collect();
        let mut sorted = titles.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, expected,
            "trial {trial} (seed {seed}): each file once"
        );
        let copy = received
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"] == title.as_str())
            .unwrap();
        let export = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/items/{}/export",
                receiver.url(),
                copy["id"].as_str().unwrap()
            ))
            .bearer_auth(receiver.token())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            export.as_ref() == bytes.as_slice(),
            "trial {trial} (seed {seed}): bytes differ"
        );
        assert_eq!(
            chunk_files(&receiver.data),
            (trial as usize + 1) * 24,
            "trial {trial} (seed {seed}): the chunks the files use, no more"
        );
    }
}

/// Chunk files under a data directory (temporary files of unfinished writes left out).
fn chunk_files(data: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(data.join("chunks")) else {
        return 0;
    };
    dirs.flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .flat_map(|files| files.flatten())
        .filter(|f| !f.file_name().to_string_lossy().starts_with(".tmp"))
        .count()
}

/// Two-way editing under SIGKILL: the copy's instance makes thousands of edits, the origin pulls
/// them, and one side is killed at a random point; after a restart and one more run each way,
/// every edit is at the origin exactly once (none lost, none judged twice as a conflict with
/// itself) and both hold the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_processes_lose_and_duplicate_no_edit_sent_back() {
    ferry_server::tls::install_default_provider();
    let seed = jiff::Timestamp::now().as_nanosecond() as u64;
    let mut random = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let both_ways = ["--export", "features", "--import", "features"];
    let (mut origin, mut copy_side, on_copy, on_origin) =
        connected_pair(dir.path(), &both_ways).await;
    let layer = write(dir.path(), "layer.geojson", &points_geojson(10_000));
    let big = origin.cli(&[
        "item", "import", &layer, "--space", "roads", "--title", "Big",
    ]);
    let big = big["id"].as_str().unwrap().to_string();
    origin.cli(&["item", "update", &big, "--two-way", "on"]);
    assert_eq!(
        run_until_completed(&copy_side, &on_copy).await["status"],
        "completed"
    );
    let items = copy_side.cli(&["item", "list", "--space", "inbox"]);
    let copy = items[0]["id"].as_str().unwrap().to_string();

    for trial in 0..4u64 {
        // Every row of the copy gets a new name this trial.
        let updates: Vec<Value> = (1..=10_000)
            .map(|key| json!({"key": key, "values": {"name": format!("t{trial}-{key}")}}))
            .collect();
        let edit_file = write(
            dir.path(),
            "edits.json",
            &json!({"updates": updates}).to_string(),
        );
        copy_side.cli(&["item", "edit", &copy, "--file", &edit_file]);
        let wait = random.below(1_500);
        let kill_origin = trial % 2 == 0;
        let pulled =
            sync_through_a_kill(&mut origin, &mut copy_side, &on_origin, wait, kill_origin).await;
        assert_eq!(
            pulled["status"], "completed",
            "trial {trial} (seed {seed}): {pulled}"
        );
        let pushed = run_until_completed(&copy_side, &on_copy).await;
        assert_eq!(
            pushed["status"], "completed",
            "trial {trial} (seed {seed}): {pushed}"
        );
        let at_origin = contents(&origin.url(), &origin.token(), "roads").await;
        assert!(
            at_origin[0]
                .1
                .iter()
                .all(|r| r[1]["name"] == format!("t{trial}-{}", r[0])),
            "trial {trial} (seed {seed}): an edit is missing at the origin"
        );
        assert_eq!(
            contents(&copy_side.url(), &copy_side.token(), "inbox").await,
            at_origin,
            "trial {trial} (seed {seed}): the copy differs from the origin"
        );
        let conflicts = origin.cli(&["conflicts", "list"]);
        assert_eq!(
            conflicts,
            json!([]),
            "trial {trial} (seed {seed}): no edit met itself"
        );
    }
}

/// A proxy that delays, then cuts sync streams short: each cut run fails with its own code and
/// keeps what it applied; the next whole run converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_resume_and_converge() {
    let proxy = Proxy::start().await;
    let url = proxy.url.clone();
    let a = TestInstance::start_with(move |c| {
        c.title = "City GIS".into();
        c.public_url = Some(url);
        c.realtime = false;
    })
    .await;
    proxy.point_at(&a.url);
    let b = TestInstance::start_with(|c| {
        c.title = "Harbor Authority".into();
        c.realtime = false;
    })
    .await;
    for inst in [&a, &b] {
        open_policies(inst);
    }
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_, link) = peered(&a, &b, "features", &[]);
    // The small layer's rows stream inline; the large one is copied whole by `/sync/item`.
    for (title, n) in [("Small", 6_000), ("Big", 12_000)] {
        let (status, _) = a
            .import(
                &format!("space=roads&title={title}"),
                "application/geo+json",
                points_geojson(n),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // Each stream is cut short: no end record arrives, and the next run resumes from the last
    // commit (a whole copy, from its start).
    proxy.delay_pulls(std::time::Duration::from_millis(50));
    let mut applied_before = 0;
    for cut_after in [3usize, 5_200, 2_000] {
        let seen = std::sync::atomic::AtomicUsize::new(0);
        proxy.rewrite_sync_lines(move |line| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < cut_after {
                vec![line.to_string()]
            } else {
                vec![]
            }
        });
        let out = b.ferry(&["sync", "now", &link]);
        assert!(
            !out.status.success(),
            "cut after {cut_after}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let run = &ferry_json(&b, &["sync", "history", &link])[0];
        assert_eq!(run["status"], "failed", "{run}");
        assert!(
            run["message"].as_str().unwrap().contains("sync_stream_cut"),
            "{run}"
        );
        let rows: i64 = b
            .get("/api/v1/items?space=inbox")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["row_count"].as_i64().unwrap())
            .sum();
        assert!(rows >= applied_before, "committed batches stay");
        applied_before = rows;
    }
    assert!(
        applied_before > 0 && applied_before < 18_000,
        "{applied_before}"
    );
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    // Connections dropped mid-body, inside a frame or between records: the same.
    for cut_bytes in [700usize, 150_000] {
        proxy.drop_sync_after(Some(cut_bytes));
        let out = b.ferry(&["sync", "now", &link]);
        assert!(!out.status.success(), "dropped after {cut_bytes} bytes");
        let run = &ferry_json(&b, &["sync", "history", &link])[0];
        assert_eq!(run["status"], "failed", "{run}");
        assert!(
            run["message"].as_str().unwrap().contains("sync_stream_cut"),
            "{run}"
        );
    }
    proxy.drop_sync_after(None);
    let run = ferry_json(&b, &["sync", "now", &link]);
    assert_eq!(run["status"], "completed");
    // Every stream came compressed, the receiver's default.
    let encodings = proxy.sync_encodings();
    assert!(
        !encodings.is_empty()
            && encodings
                .iter()
                .all(|e| e == ferry_proto::frames::LZ4_FRAMES),
        "{encodings:?}"
    );
    assert_eq!(
        contents(&b.url, &b.admin_token, "inbox").await,
        contents(&a.url, &a.admin_token, "roads").await
    );
}
