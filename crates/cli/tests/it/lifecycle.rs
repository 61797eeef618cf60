use crate::harness::TestInstance;
use reqwest::Method;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn restart_keeps_identity_tokens_and_data() {
    let inst = TestInstance::start().await;
    let before = inst.get("/api/v1/instance").await;
    let viewer = inst.create_token("v", "viewer").await;
    inst.create_space("kept").await;
    inst.import("space=kept", "text/csv", "id,n\n1,2\n").await;
    let mode = |name: &str| {
        std::fs::metadata(inst.data_dir().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("identity.key"), 0o600);
    assert_eq!(mode("admin-token"), 0o600);
    // The test's data directory existed before Ferry started: its database is private anyway.
    assert_eq!(mode("ferry.db"), 0o600);
    assert_eq!(mode("ferry.db-wal"), 0o600);

    let inst = inst.restart().await;
    let after = inst.get("/api/v1/instance").await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["fingerprint"], before["fingerprint"]);
    assert_eq!(
        after["epoch"], before["epoch"],
        "a clean restart keeps the epoch"
    );
    assert_eq!(
        inst.call_as(&viewer, Method::GET, "/api/v1/items", None)
            .await
            .1[0]["row_count"],
        1
    );
}

#[tokio::test]
async fn a_restored_database_gets_a_new_epoch() {
    let mut inst = TestInstance::start().await;
    inst.create_space("s").await;
    let epoch = inst.get("/api/v1/instance").await["epoch"].clone();
    inst.stop().await;
    inst.back_up();
    let mut inst = inst.restart().await;
    inst.import("space=s", "text/csv", "id\n1\n2\n").await;
    inst.stop().await;
    // Restore the older database file, as an operator restoring a backup would.
    inst.restore_backup();
    let inst = inst.restart().await;
    let now = inst.get("/api/v1/instance").await;
    assert_ne!(
        now["epoch"], epoch,
        "receivers must learn the data went back in time"
    );
    assert_eq!(inst.get("/api/v1/items").await, json!([]));
}

/// The real binary: first start, the CLI finding it through the data directory, and a graceful
/// stop on SIGTERM and on SIGINT.
#[tokio::test]
async fn ferry_serve_process_starts_answers_and_stops_on_sigterm() {
    serve_answer_and_stop("-TERM").await;
}

#[tokio::test]
async fn ferry_serve_process_stops_on_sigint() {
    serve_answer_and_stop("-INT").await;
}

async fn serve_answer_and_stop(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = crate::harness::spawn_serve(&data, "Harbor Authority").await;
    let endpoint = data.join("endpoint");
    // No --server or --token: the CLI uses the local data directory.
    let out = crate::harness::ferry_local(&data, &["instance", "show", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["title"], "Harbor Authority");
    assert_eq!(
        info["public_url"].as_str().unwrap(),
        std::fs::read_to_string(&endpoint).unwrap().trim()
    );

    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.status.success(),
        "graceful exit: {:?}",
        status.status
    );
    let log = String::from_utf8_lossy(&status.stderr);
    assert!(
        log.contains("admin token:") && log.contains("Ferry stopped."),
        "{log}"
    );
    // At first start the console gets a one-time sign-in link, never the token itself.
    assert!(
        log.contains("console:") && log.contains("/sign-in/link/l_"),
        "{log}"
    );
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(!log.contains(token.trim()), "the token is in no log");
    assert!(!endpoint.exists(), "the endpoint file goes with the server");
}

/// Stops a `ferry serve` process with SIGTERM; returns what it wrote on stderr.
async fn stop_serve(child: std::process::Child) -> String {
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ferry serve` started again with no flags keeps the title, listen address and public URL of
/// the first start (flags still win), and says so loudly when the public URL changes while a
/// peer knows the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_remembers_its_settings_and_warns_when_its_public_url_changes() {
    use crate::harness::{ferry_json, ferry_local, open_policies, spawn_serve_with};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let local_json = |args: &[&str]| -> serde_json::Value {
        let out = ferry_local(&data, &[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::harness::stderr(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = spawn_serve_with(&data, &["--listen", &listen, "--title", "City GIS"]).await;
    // A peer learns this instance's URL.
    let harbor = TestInstance::start().await;
    open_policies(&harbor);
    for args in [
        ["policy", "ingress", "allow", "127.0.0.0/8"],
        ["policy", "egress", "allow", "127.0.0.1"],
    ] {
        local_json(&args);
    }
    local_json(&["space", "create", "roads"]);
    harbor.create_space("inbox").await;
    let created = local_json(&[
        "peer", "request", "--space", "roads", "--export", "features",
    ]);
    let imported = ferry_json(
        &harbor,
        &["peer", "import", created["code"].as_str().unwrap()],
    );
    ferry_json(
        &harbor,
        &[
            "peer",
            "approve",
            imported["id"].as_str().unwrap(),
            "--space",
            "inbox",
        ],
    );
    local_json(&[
        "peer",
        "activate",
        created["connection"]["id"].as_str().unwrap(),
    ]);
    let log = stop_serve(first).await;
    assert!(!log.contains("WARNING"), "{log}");

    // No flags: everything as before, and no warning.
    let again = spawn_serve_with(&data, &[]).await;
    let info = local_json(&["instance", "show"]);
    assert_eq!(info["title"], "City GIS");
    assert_eq!(info["public_url"], url.as_str());
    let log = stop_serve(again).await;
    assert!(!log.contains("WARNING"), "{log}");

    // A flag wins, and a new public URL is called out, naming the old one.
    let moved = spawn_serve_with(
        &data,
        &[
            "--title",
            "City GIS (new)",
            "--public-url",
            "http://127.0.0.1:9/",
        ],
    )
    .await;
    let info = local_json(&["instance", "show"]);
    assert_eq!(info["title"], "City GIS (new)");
    let endpoint = std::fs::read_to_string(data.join("endpoint")).unwrap();
    assert_eq!(
        endpoint.trim(),
        url,
        "the listen address is still the first one"
    );
    let log = stop_serve(moved).await;
    assert!(
        log.contains("WARNING: the public URL changed")
            && log.contains(&url)
            && log.contains("--public-url"),
        "{log}"
    );
}
