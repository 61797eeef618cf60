//! The `ferry` binary end to end against a real instance. The server runs on the test's runtime,
//! so these tests use a multi-threaded runtime while the CLI process blocks one thread.

use crate::harness::{
    TestInstance, ferry_json, ferry_with_token, points_geojson, stderr, stdout, temp_file,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tour_covers_every_command() {
    let inst = TestInstance::start().await;
    let work = tempfile::tempdir().unwrap();

    let info = ferry_json(&inst, &["instance", "show"]);
    assert_eq!(info["title"], "Test instance");
    let table = stdout(&inst.ferry(&["instance", "show"]));
    assert!(
        table.contains("fingerprint") && table.contains(info["fingerprint"].as_str().unwrap()),
        "{table}"
    );

    let space = ferry_json(
        &inst,
        &["space", "create", "harbor", "--description", "Harbor data"],
    );
    assert_eq!(space["name"], "harbor");
    assert!(stdout(&inst.ferry(&["space", "list"])).contains("Harbor data"));
    ferry_json(
        &inst,
        &["space", "update", "harbor", "--description", "Port data"],
    );
    assert_eq!(
        ferry_json(&inst, &["space", "show", "harbor"])["description"],
        "Port data"
    );

    let geojson = temp_file(work.path(), "points.geojson", points_geojson(50).as_bytes());
    let layer = ferry_json(
        &inst,
        &[
            "item",
            "import",
            geojson.to_str().unwrap(),
            "--space",
            "harbor",
            "--marking",
            "OFFICIAL",
            "--tag",
            "demo",
        ],
    );
    assert_eq!(
        (layer["kind"].as_str(), layer["row_count"].as_i64()),
        (Some("feature_layer"), Some(50))
    );
    let id = layer["id"].as_str().unwrap().to_string();
    let csv = temp_file(
        work.path(),
        "berths.csv",
        b"id,name,length\n1,North,120.5\n2,South,80\n",
    );
    let dataset = ferry_json(
        &inst,
        &["item", "import", csv.to_str().unwrap(), "--space", "harbor"],
    );
    assert_eq!(dataset["kind"], "dataset");
    // A CSV written with ';' (as spreadsheets do in many locales) is told from its header; an
    // unusual separator is given.
    let semi = temp_file(work.path(), "semi.csv", b"id;name\n1;North\n");
    let piped = temp_file(work.path(), "piped.csv", b"id|name\n1|North\n");
    for (path, extra) in [(&semi, &[][..]), (&piped, &["--delimiter", "|"][..])] {
        let imported = import_into_harbor(&inst, path, extra);
        let fields: Vec<&str> = imported["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["id", "name"], "{imported}");
        ferry_json(&inst, &["item", "delete", imported["id"].as_str().unwrap()]);
    }
    let pdf = temp_file(work.path(), "notes.pdf", b"%PDF-1.4 not really");
    let file = ferry_json(
        &inst,
        &["item", "import", pdf.to_str().unwrap(), "--space", "harbor"],
    );
    assert_eq!(file["kind"], "file");
    assert_eq!(file["file"]["media_type"], "application/pdf", "{file}");

    let items = ferry_json(&inst, &["item", "list", "--space", "harbor"]);
    assert_eq!(items.as_array().unwrap().len(), 3);
    let shown = stdout(&inst.ferry(&["item", "show", &id]));
    assert!(
        shown.contains("OFFICIAL") && shown.contains("name: string"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("harbor ({})", space["id"].as_str().unwrap())),
        "{shown}"
    );
    // The list names each item's space and where its data is; a file shows its size.
    let listed = stdout(&inst.ferry(&["item", "list"]));
    let header = listed.lines().find(|l| l.contains("title")).unwrap();
    assert!(
        header.contains("space") && header.contains("data"),
        "{listed}"
    );
    assert!(
        listed.contains("harbor") && listed.contains("here"),
        "{listed}"
    );
    assert!(listed.contains("19 bytes"), "{listed}");
    // Rows read as an attribute table: a column per attribute, the geometry summed up.
    let rows = stdout(&inst.ferry(&["item", "rows", &id, "--limit", "2"]));
    let header = rows.lines().find(|l| l.contains("key")).unwrap();
    for column in ["name", "n", "v", "geometry"] {
        assert!(header.contains(column), "{rows}");
    }
    assert!(
        rows.contains("p1") && rows.contains("Point -178.75 -88.75"),
        "{rows}"
    );
    assert!(rows.contains("more: --after"), "{rows}");

    let exported = work.path().join("out.geojson");
    let out = inst.ferry(&[
        "item",
        "export",
        &id,
        "--output",
        exported.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&points_geojson(50)).unwrap();
    assert_eq!(a["features"], b["features"]);
    let csv_out = inst.ferry(&["item", "export", dataset["id"].as_str().unwrap()]);
    assert_eq!(
        stdout(&csv_out),
        "id,name,length\n1,North,120.5\n2,South,80\n"
    );
    let file_out = inst.ferry(&["item", "export", file["id"].as_str().unwrap()]);
    assert_eq!(file_out.stdout, b"%PDF-1.4 not really");

    let batch = temp_file(
        work.path(),
        "edits.json",
        br#"{"updates": [{"key": 1, "values": {"name": "first"}}], "deletes": [2]}"#,
    );
    let results = ferry_json(
        &inst,
        &["item", "edit", &id, "--file", batch.to_str().unwrap()],
    );
    assert_eq!(results["item"]["row_count"], 49);
    let rows = ferry_json(&inst, &["item", "rows", &id, "--where", "name:first"]);
    assert_eq!(rows["rows"][0]["key"], 1);
    let boxed = ferry_json(
        &inst,
        &[
            "item",
            "rows",
            &id,
            "--bbox",
            "-180,-90,-178,-88",
            "--limit",
            "5",
        ],
    );
    assert!(!boxed["rows"].as_array().unwrap().is_empty());
    let updated = ferry_json(
        &inst,
        &[
            "item",
            "update",
            &id,
            "--title",
            "Moorings",
            "--marking",
            "SECRET",
        ],
    );
    assert_eq!(
        (updated["title"].as_str(), updated["markings"][0].as_str()),
        (Some("Moorings"), Some("SECRET"))
    );

    let changes = ferry_json(
        &inst,
        &["changes", "harbor", "--after", "0", "--limit", "1000"],
    );
    assert!(changes["changes"].as_array().unwrap().len() >= 50);
    assert!(stdout(&inst.ferry(&["changes", "harbor"])).contains("epoch"));

    let created = ferry_json(&inst, &["token", "create", "ana", "--role", "viewer"]);
    let secret = created["token"].as_str().unwrap();
    let as_viewer = ferry_with_token(&inst.url, secret, &["space", "create", "nope"]);
    assert!(!as_viewer.status.success());
    assert!(
        stderr(&as_viewer).contains("forbidden"),
        "{}",
        stderr(&as_viewer)
    );
    assert!(stdout(&inst.ferry(&["token", "list"])).contains("ana"));
    ferry_json(
        &inst,
        &["token", "revoke", created["info"]["id"].as_str().unwrap()],
    );
    let revoked = ferry_with_token(&inst.url, secret, &["space", "list"]);
    assert!(stderr(&revoked).contains("revoked"), "{}", stderr(&revoked));

    let refused = inst.ferry(&["space", "delete", "harbor"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("space_not_empty") && stderr(&refused).contains("--force"),
        "{}",
        stderr(&refused)
    );
    ferry_json(&inst, &["item", "delete", file["id"].as_str().unwrap()]);
    ferry_json(&inst, &["space", "delete", "harbor", "--force"]);
    assert_eq!(ferry_json(&inst, &["space", "list"]), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reports_unreachable_servers_and_bad_files() {
    let out = ferry_with_token("http://127.0.0.1:9", "t", &["space", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the Ferry server"),
        "{}",
        stderr(&out)
    );
    let inst = TestInstance::start().await;
    let out = inst.ferry(&["item", "import", "/nonexistent.csv", "--space", "x"]);
    assert!(
        stderr(&out).contains("cannot open /nonexistent.csv"),
        "{}",
        stderr(&out)
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["item", "import", "--help"])
        .output()
        .unwrap();
    assert!(stdout(&help).contains("--marking"));
    let top = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(stdout(&top).contains("FERRY_DATA_DIR"), "{}", stdout(&top));

    // No server: the message names the data directory it looked in.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["space", "list"])
        .env("FERRY_DATA_DIR", empty.path())
        .env_remove("FERRY_SERVER")
        .output()
        .unwrap();
    let said = stderr(&out);
    assert!(
        said.contains(&empty.path().display().to_string()) && said.contains("FERRY_DATA_DIR"),
        "{said}"
    );
    // A server given as host:port: the scheme is added.
    let out = ferry_with_token(
        inst.url.trim_start_matches("http://"),
        &inst.admin_token,
        &["space", "list"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Long transfers show a progress bar on a terminal and nothing extra when output is piped.
/// `script` (util-linux) gives the CLI a pseudo-terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_bars_show_on_terminals_only() {
    let inst = TestInstance::start().await;
    inst.create_space("p").await;
    let work = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..8_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = temp_file(work.path(), "big.bin", &big);
    let command = format!(
        "{} --server {} --token {} item import {} --space p",
        env!("CARGO_BIN_EXE_ferry"),
        inst.url,
        inst.admin_token,
        file.display()
    );
    let on_terminal = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let shown = stdout(&on_terminal);
    assert!(on_terminal.status.success(), "{shown}");
    assert!(
        shown.contains("uploading") && shown.contains("MiB"),
        "no progress bar on a terminal: {shown}"
    );

    let piped = inst.ferry(&["item", "import", file.to_str().unwrap(), "--space", "p"]);
    assert!(piped.status.success());
    assert!(!stderr(&piped).contains("uploading"), "{}", stderr(&piped));
    assert!(!stdout(&piped).contains("uploading"));
}

/// GeoJSON text sequences import as layers by extension; `--kind feature_layer` is honoured for
/// a file whose extension says nothing, whether it holds a collection or a sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geojson_sequences_and_layers_by_kind_import_as_layers() {
    let inst = TestInstance::start().await;
    let work = tempfile::tempdir().unwrap();
    ferry_json(&inst, &["space", "create", "harbor"]);
    let collection: serde_json::Value = serde_json::from_str(&points_geojson(4)).unwrap();
    let lines: Vec<String> = collection["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.to_string())
        .collect();
    let per_line = lines.join("\n") + "\n";
    let rfc8142: String = lines.iter().map(|l| format!("\u{1e}{l}\n")).collect();
    let import = |name: &str, text: &str, kind: Option<&str>| {
        let path = temp_file(work.path(), name, text.as_bytes());
        match kind {
            Some(kind) => import_into_harbor(&inst, &path, &["--kind", kind]),
            None => import_into_harbor(&inst, &path, &[]),
        }
    };
    for (name, text, kind) in [
        ("berths.geojsonl", per_line.as_str(), None),
        ("berths.geojsons", rfc8142.as_str(), None),
        ("berths.txt", per_line.as_str(), Some("feature_layer")),
        ("berths.data", rfc8142.as_str(), Some("feature_layer")),
        ("berths.json", &points_geojson(4), Some("feature_layer")),
        ("berths", &points_geojson(4), Some("feature_layer")),
    ] {
        let item = import(name, text, kind);
        assert_eq!(
            (item["kind"].as_str(), item["row_count"].as_i64()),
            (Some("feature_layer"), Some(4)),
            "{name}: {item}"
        );
    }
    // Without --kind, an unknown extension stays a file; a .json file that is GeoJSON is a
    // layer, and the import says why it chose what it chose.
    assert_eq!(import("berths.txt", &per_line, None)["kind"], "file");
    assert_eq!(import("plain.json", "[1, 2]", None)["kind"], "file");
    let path = temp_file(work.path(), "found.json", points_geojson(3).as_bytes());
    let out = inst.ferry(&[
        "item",
        "import",
        path.to_str().unwrap(),
        "--space",
        "harbor",
    ]);
    assert!(
        stdout(&out).contains("as feature_layer")
            && stdout(&out).contains("its kind from its content, GeoJSON"),
        "{}",
        stdout(&out)
    );
}

/// `ferry ... | head`: when the reader stops reading, the command ends quietly (by SIGPIPE, as
/// command-line tools do), never with a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_the_command_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let (_, layer) = inst
        .import("space=s", "application/geo+json", points_geojson(5_000))
        .await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--server", &inst.url, "--token", &inst.admin_token])
        .args([
            "--json",
            "item",
            "rows",
            layer["id"].as_str().unwrap(),
            "--limit",
            "5000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's reading end is gone now.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        status.success() || status.signal() == Some(13),
        "{status:?}: {stderr}"
    );
}

/// `ferry item import PATH --space harbor` with `extra` arguments; the new item.
fn import_into_harbor(
    inst: &TestInstance,
    path: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "item",
        "import",
        path.to_str().unwrap(),
        "--space",
        "harbor",
    ];
    args.extend_from_slice(extra);
    ferry_json(inst, &args)
}
