//! The README's tour, run as written: every `sh` block of "A short tour of the CLI", section by
//! section, in one bash shell with the real `ferry` binary and real instances. A command that
//! fails stops the tour and fails the test; after each section the test checks what the section
//! says it did. The README cannot drift from the product.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const TOUR_HEADING: &str = "## A short tour of the CLI";
const SECTION_DONE: &str = "@@tour-section-done@@";
/// A section runs a few dozen commands and syncs; far more than it needs on a slow machine.
const SECTION_TIMEOUT: Duration = Duration::from_secs(60);

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tour's sections: each `### ` heading under the tour with its `sh` blocks joined.
fn tour_sections(readme: &str) -> Vec<(String, String)> {
    let start = readme.find(TOUR_HEADING).expect("the README has the tour");
    let tour = &readme[start + TOUR_HEADING.len()..];
    let tour = &tour[..tour.find("\n## ").unwrap_or(tour.len())];
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut in_block = false;
    for line in tour.lines() {
        if let Some(title) = line.strip_prefix("### ") {
            sections.push((title.to_string(), String::new()));
        } else if line.trim_end() == "```sh" {
            in_block = true;
        } else if in_block && line.trim_end() == "```" {
            in_block = false;
        } else if in_block {
            let (_, script) = sections
                .last_mut()
                .expect("tour blocks sit under a ### heading");
            script.push_str(line);
            script.push('\n');
        }
    }
    sections
}

/// One bash shell fed the tour section by section; it and everything it starts (the
/// instances in the background) share a process group that ends with the test.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    work: PathBuf,
    /// Everything the shell printed, and how far the test has read it.
    output: PathBuf,
    read: usize,
    log: PathBuf,
}

impl Shell {
    fn start(work: &Path) -> Shell {
        use std::os::unix::process::CommandExt;
        let binary = Path::new(env!("CARGO_BIN_EXE_ferry"));
        let output = work.join("shell.out");
        let log = work.join("shell.log");
        // Files, not pipes: the instances the tour starts in the background inherit them and
        // outlive any one section.
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(repository_root())
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", binary.parent().unwrap().display()),
            )
            .env("HOME", work)
            .env("TMPDIR", work)
            .env("LANG", "C.UTF-8")
            .env("FERRY_DATA_DIR", work.join("main-instance"))
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bash runs");
        let stdin = child.stdin.take().unwrap();
        Shell {
            child,
            stdin,
            work: work.to_path_buf(),
            output,
            read: 0,
            log,
        }
    }

    /// Runs `script` in the shell (its variables and functions stay for the next section) and
    /// returns what it printed and the shell's working directory after it. Panics, with the
    /// shell's log, when a command fails.
    fn run(&mut self, name: &str, script: &str) -> (String, PathBuf) {
        let file = self.work.join("section.sh");
        std::fs::write(&file, script).unwrap();
        // Sourced with stdin from /dev/null, so no command can read the rest of the tour.
        writeln!(
            self.stdin,
            "source {} </dev/null; echo \"{SECTION_DONE} $PWD\"",
            file.display()
        )
        .unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + SECTION_TIMEOUT;
        loop {
            let all = std::fs::read(&self.output).unwrap();
            let printed = String::from_utf8_lossy(&all[self.read..]).into_owned();
            if let Some(at) = printed.find(SECTION_DONE) {
                let rest = &printed[at + SECTION_DONE.len()..];
                let dir = rest.lines().next().unwrap_or_default().trim();
                self.read +=
                    at + SECTION_DONE.len() + rest.find('\n').map_or(rest.len(), |n| n + 1);
                return (printed[..at].to_string(), PathBuf::from(dir));
            }
            let ended = self.child.try_wait().unwrap();
            if ended.is_some() || Instant::now() > deadline {
                panic!(
                    "the README tour's section '{name}' {}.\nIt printed:\n{printed}\nThe shell's log (commands and errors):\n{}",
                    match ended {
                        Some(_) => "failed",
                        None => "did not finish in time",
                    },
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// `ferry --json ARGS` against the instance whose data directory is `data`.
fn ferry_json(data: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--data-dir")
        .arg(data)
        .arg("--json")
        .args(args)
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_TOKEN")
        .output()
        .expect("ferry runs");
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn titles(items: &Value) -> Vec<String> {
    let mut titles: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

fn find<'a>(items: &'a Value, title: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("no item '{title}' in {items:#}"))
}

/// The sample files in `examples/` are the ones the README's edit formats show.
#[test]
fn the_readme_shows_the_sample_edit_files_as_they_are() {
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for name in ["vessel-edits.json", "berth-edits.json"] {
        let file = std::fs::read_to_string(root.join("examples").join(name)).unwrap();
        assert!(
            readme.contains(&format!("```json\n{file}```")),
            "the README's example of {name} differs from examples/{name}"
        );
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).unwrap();
    let sections = tour_sections(&readme);
    let names: Vec<&str> = sections.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "One instance: spaces, items, edits, tokens",
            "Peering two local instances",
            "A collaboration: one host, many guests",
            "Sync",
            "Two-way editing",
            "Ending links",
        ],
        "each section of the tour has its checks here: add them for a new one"
    );
    let work = tempfile::tempdir().unwrap();
    let mut shell = Shell::start(work.path());
    // The quick start's `ferry serve`, which the tour expects in a second terminal.
    shell.run(
        "quick start",
        "set -euo pipefail -x\n\
         trap 'echo \"tour command failed at line $LINENO: $BASH_COMMAND\" >&2' ERR\n\
         ( ferry serve --listen 127.0.0.1:0 --title 'Port Office' 2>\"$TMPDIR/main-instance.log\" & )\n\
         ferry instance wait\n",
    );
    let main = work.path().join("main-instance");
    let mut scratch = PathBuf::new();
    for (name, script) in &sections {
        let (printed, dir) = shell.run(name, script);
        scratch = dir;
        let city = scratch.join("city");
        let harbor = scratch.join("harbor");
        match name.as_str() {
            "One instance: spaces, items, edits, tokens" => {
                check_one_instance(&main, &scratch, &printed)
            }
            "Peering two local instances" => check_peering(&city, &harbor, &printed),
            "A collaboration: one host, many guests" => check_collaboration(&city, &harbor),
            "Sync" => check_sync(&city, &harbor, &printed),
            "Two-way editing" => check_two_way(&city, &harbor, &printed),
            "Ending links" => check_ending(&city, &harbor, &printed),
            other => unreachable!("section '{other}' was listed above"),
        }
    }
    assert!(
        scratch.starts_with(work.path()),
        "the tour ran in {scratch:?}"
    );
}

fn check_one_instance(main: &Path, scratch: &Path, printed: &str) {
    let items = ferry_json(main, &["item", "list", "--space", "port"]);
    assert_eq!(
        titles(&items),
        [
            "berths.geojson",
            "buoys.txt",
            "survey.pdf",
            "tracks.geojsonl",
            "vessels.csv"
        ],
        "{printed}"
    );
    let kind = |title: &str| find(&items, title)["kind"].as_str().unwrap().to_string();
    assert_eq!(kind("buoys.txt"), "feature_layer", "--kind wins over .txt");
    assert_eq!(kind("tracks.geojsonl"), "feature_layer");
    assert_eq!(kind("vessels.csv"), "dataset");
    let survey = find(&items, "survey.pdf");
    assert_eq!(survey["kind"], "file");
    assert_eq!(survey["file"]["media_type"], "application/pdf");
    // The edits: one row added and one deleted in each.
    assert_eq!(find(&items, "vessels.csv")["row_count"], 4);
    assert_eq!(find(&items, "berths.geojson")["row_count"], 5);
    assert_eq!(find(&items, "berths.geojson")["markings"][0], "OFFICIAL");
    // The export is a new file; the imported one is untouched.
    let examples = repository_root().join("examples");
    assert_eq!(
        std::fs::read(scratch.join("berths.geojson")).unwrap(),
        std::fs::read(examples.join("berths.geojson")).unwrap()
    );
    let exported: Value =
        serde_json::from_slice(&std::fs::read(scratch.join("berths-edited.geojson")).unwrap())
            .unwrap();
    let names: Vec<&str> = exported["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Berth 1", "Berth 2", "Berth 4", "Maasvlakte 5", "Buoy 7"]
    );
    // The bbox and filter query printed open berths inside the box only.
    assert!(
        printed.contains("Berth 4") && !printed.contains("Maasvlakte"),
        "{printed}"
    );
    let rules = ferry_json(main, &["policy", "list"]);
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules:#}");
    let tokens = ferry_json(main, &["token", "list"]);
    assert!(tokens.to_string().contains("\"ana\""), "{tokens:#}");
}

fn check_peering(city: &Path, harbor: &Path, printed: &str) {
    // `city peer list` after harbor disabled the connection said so.
    assert!(printed.contains("disabled"), "{printed}");
    for side in [city, harbor] {
        let peers = ferry_json(side, &["peer", "list"]);
        assert_eq!(peers.as_array().unwrap().len(), 1, "{peers:#}");
        assert_eq!(peers[0]["state"], "active", "{peers:#}");
    }
}

fn check_collaboration(city: &Path, harbor: &Path) {
    let hosted = &ferry_json(city, &["collab", "show", "Coast"])["collaboration"];
    assert_eq!(hosted["role"], "host", "{hosted:#}");
    // The host widened harbor's mode in Reports to send and receive.
    let reports = &hosted["workspaces"][0];
    assert_eq!(reports["name"], "Reports", "{hosted:#}");
    assert_eq!(
        reports["guests"][0]["title"], "Harbor Authority",
        "{hosted:#}"
    );
    assert_eq!(reports["guests"][0]["mode"], "send_receive", "{hosted:#}");
    let joined = &ferry_json(harbor, &["collab", "show", "Coast"])["collaboration"];
    assert_eq!(joined["role"], "guest", "{joined:#}");
    let linked: Vec<&str> = joined["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["linked_space"].as_str())
        .collect();
    assert_eq!(linked.len(), 2, "both workspaces linked: {joined:#}");
}

fn check_sync(city: &Path, harbor: &Path, printed: &str) {
    let inbox = ferry_json(harbor, &["item", "list", "--space", "inbox"]);
    assert_eq!(titles(&inbox), ["roads.geojson"], "{inbox:#}");
    let roads = find(&inbox, "roads.geojson");
    assert_eq!(roads["reference"], true, "--sync-as reference: {roads:#}");
    assert!(
        roads["markings"].to_string().contains("PARTNER"),
        "{roads:#}"
    );
    // Read through the reference from its origin, with the filter applied there.
    assert!(
        printed.contains("Erasmusbrug") && !printed.contains("Coolsingel"),
        "{printed}"
    );
    let coast = ferry_json(city, &["item", "list", "--space", "coast"]);
    assert_eq!(titles(&coast), ["vessels.csv"], "{coast:#}");
    assert_eq!(find(&coast, "vessels.csv")["row_count"], 4);
    let status = ferry_json(harbor, &["sync", "status"]);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .any(|link| !link["last_data_run"].is_null()),
        "{status:#}"
    );
}

fn check_two_way(city: &Path, harbor: &Path, printed: &str) {
    let at_city = ferry_json(city, &["item", "list", "--space", "moorings"]);
    let berths = find(&at_city, "berths.geojson");
    assert_eq!(
        berths["two_way"]["conflict_policy"], "origin_wins",
        "{berths:#}"
    );
    let id = berths["id"].as_str().unwrap();
    let rows = |dir: &Path, id: &str| ferry_json(dir, &["item", "rows", id, "--limit", "100"]);
    let origin_rows = rows(city, id);
    let second = origin_rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == 2)
        .unwrap()
        .clone();
    assert_eq!(
        second["values"]["depth_m"],
        serde_json::json!(13.5),
        "harbor's edit reached the origin: {printed}"
    );
    assert!(
        second["values"].get("status").is_none(),
        "the removed field left every row: {second}"
    );
    let at_harbor = ferry_json(harbor, &["item", "list", "--space", "moorings"]);
    let copy = find(&at_harbor, "berths.geojson")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let values = |page: &Value| -> Vec<Value> {
        page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::json!([r["key"], r["values"], r["geometry"]]))
            .collect()
    };
    assert_eq!(
        values(&rows(harbor, &copy)),
        values(&origin_rows),
        "the copy is the origin's"
    );
    let schema = |dir: &Path, id: &str| ferry_json(dir, &["item", "show", id])["schema"].clone();
    let origin_schema = schema(city, id);
    assert!(
        origin_schema.to_string().contains("tide_m"),
        "{origin_schema}"
    );
    assert_eq!(
        schema(harbor, &copy),
        origin_schema,
        "the copy took the schema change"
    );
}

fn check_ending(city: &Path, harbor: &Path, printed: &str) {
    assert!(
        printed.contains("Guest removed")
            && printed.contains("Collaboration deleted")
            && printed.contains("deleted; the other instance was told"),
        "{printed}"
    );
    // Stopped: each instance removed its endpoint file on the way out.
    for side in [city, harbor] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while side.join("endpoint").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!side.join("endpoint").exists(), "{side:?} still serves");
    }
}
