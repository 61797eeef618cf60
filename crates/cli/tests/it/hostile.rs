//! Hostile peers: each test stands for one way another instance might try to touch more than its
//! link allows, and shows that it cannot. The proxy in front of a real sender plays the hostile
//! peer: every answer the receiver gets passes through it and can be rewritten at will.

use crate::harness::{TestInstance, ferry_json, stderr, stdout};
use crate::sync::{id, import_file, items, noise, peered_behind_proxy, sync_now};
use serde_json::{Value, json};

/// Runs `link` now, expecting the run to fail; returns its record from the history.
fn failed_run(inst: &TestInstance, link: &str) -> Value {
    let out = inst.ferry(&["sync", "now", link]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr(&out).contains("the run failed"), "{}", stderr(&out));
    ferry_json(inst, &["sync", "history", link])[0].clone()
}

/// Rewrites the first chunk hash of every file item a stream describes.
fn chunk_hash_becomes(hash: String) -> impl Fn(&str) -> Vec<String> + Send + Sync {
    move |line| {
        let mut record: Value = serde_json::from_str(line).unwrap();
        if record["t"] == "item" && record["item"]["kind"] == "file" {
            record["item"]["chunks"][0][0] = json!(hash);
        }
        vec![record.to_string()]
    }
}

/// A sender that puts a path where a chunk hash belongs gets nothing from it: the record does not
/// parse, the run fails, and the file it named is neither served as the item nor deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_hash_from_a_peer_never_names_a_file() {
    let (proxy, a, b, on_b) = peered_behind_proxy("files").await;
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("payroll.csv");
    std::fs::write(&victim, "name,salary\nana,1\n").unwrap();
    import_file(&a, "space=roads&title=Survey", noise(1000, 1)).await;

    let hostile = [
        victim.to_string_lossy().into_owned(),
        "../../identity.key".to_string(),
        format!("../{}", "0".repeat(61)),
        "AB".repeat(32),
    ];
    for hash in hostile {
        proxy.rewrite_sync_lines(chunk_hash_becomes(hash.clone()));
        let run = failed_run(&b, &on_b);
        assert_eq!(run["status"], "failed", "{hash}: {run}");
        let message = run["message"].as_str().unwrap();
        assert!(
            message.contains("chunk hash") && message.contains("sync_refused"),
            "{hash}: {message}"
        );
        assert!(items(&b, "inbox").await.is_empty(), "{hash}");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "name,salary\nana,1\n",
        "the named file is untouched"
    );

    // Honest again: the file arrives with its own bytes.
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Survey"];
    let bytes = b.export(id(copy), "", &[]).await.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), noise(1000, 1).as_slice());
}

/// A hand-made description of a dataset `item` of `origin` with an `id` key and a number `m`;
/// `whole`: all its rows follow in the stream (none do).
fn forged_item(origin: &str, item: &str, title: &str, whole: bool) -> Value {
    json!({"t": "item", "item": {
        "origin_instance": origin, "origin_item": item, "kind": "dataset", "title": title,
        "schema": {"fields": [{"name": "id", "type": "integer"}, {"name": "m", "type": "number"}],
                   "primary_key": "id"},
        "whole": whole, "row_count": 0}})
}

/// Every pull's answer gets `lines` right after its start record, which says `full` when asked
/// (a full pass: what it does not describe is swept).
pub(crate) fn inject_after_start(
    lines: Vec<Value>,
    full: bool,
) -> impl Fn(&str) -> Vec<String> + Send + Sync {
    move |line| {
        let mut record: Value = serde_json::from_str(line).unwrap();
        if record["t"] != "start" {
            return vec![line.to_string()];
        }
        if full {
            record["full"] = json!(true);
        }
        std::iter::once(record.to_string())
            .chain(lines.iter().map(Value::to_string))
            .collect()
    }
}

/// B holds an item that came from C. A, peered with B too, tries every way to touch it: describe
/// it with a new title and rows, describe it in a full pass with no rows (to sweep them), delete
/// its rows, and retract it. None of it reaches C's item, and every run says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_touch_what_another_peer_brought() {
    let (proxy, a, b, a_on_b) = peered_behind_proxy("datasets").await;
    let c = crate::sync::instance("Tide Office", |_| {}).await;
    c.create_space("roads").await;
    let (_, c_on_b) = crate::harness::peered(&c, &b, "datasets", &[]);
    let c_id = crate::harness::instance_id(&c).await;
    let gauges = crate::sync::import(&c, "roads", "Gauges", "csv", "id,m\n1,0.5\n2,0.7\n".into());
    let gauges = id(&gauges.await).to_string();
    crate::sync::import(&a, "roads", "Honest", "csv", "id\n1\n".into()).await;
    assert_eq!(sync_now(&b, &c_on_b)["status"], "completed");
    let held = items(&b, "inbox").await["Gauges"].clone();
    let rows_before = crate::sync::rows(&b, id(&held)).await;
    assert_eq!(rows_before.len(), 2);

    // A describes C's item with a new title, a changed row and a deleted one.
    proxy.rewrite_sync_lines(inject_after_start(
        vec![
            forged_item(&c_id, &gauges, "Hijacked", false),
            json!({"t": "row", "origin_item": gauges, "key": 1, "values": {"id": 1, "m": 99.0}}),
            json!({"t": "row_deleted", "origin_item": gauges, "key": 2}),
        ],
        false,
    ));
    let run = sync_now(&b, &a_on_b);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "origin_not_allowed", "{run}");
    assert!(
        run["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&c_id),
        "{run}"
    );
    assert!(items(&b, "inbox").await.contains_key("Honest"));

    // A full pass that describes C's item with no rows would sweep them all.
    proxy.rewrite_sync_lines(inject_after_start(
        vec![forged_item(&c_id, &gauges, "Swept", true)],
        true,
    ));
    let run = sync_now(&b, &a_on_b);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "origin_not_allowed", "{run}");

    // A retraction of C's item: A never brought it, so it is not A's to retract.
    proxy.rewrite_sync_lines(inject_after_start(
        vec![
            json!({"t": "retract", "origin_instance": c_id, "origin_item": gauges,
            "reason": "deleted"}),
        ],
        false,
    ));
    let run = sync_now(&b, &a_on_b);
    assert_eq!(run["items_retracted"], 0, "{run}");

    // An item of A's own that reuses C's item id is A's own item: a second item, not C's.
    let a_id = crate::harness::instance_id(&a).await;
    proxy.rewrite_sync_lines(inject_after_start(
        vec![forged_item(&a_id, &gauges, "Same id, other instance", true)],
        false,
    ));
    let run = sync_now(&b, &a_on_b);
    assert_eq!(run["status"], "completed", "{run}");

    let now = items(&b, "inbox").await;
    let kept = &now["Gauges"];
    assert_eq!(id(kept), id(&held), "C's item is still the one C brought");
    assert_eq!(kept["version"], held["version"], "and nothing changed it");
    assert_eq!(crate::sync::rows(&b, id(kept)).await, rows_before);
    assert!(now.contains_key("Same id, other instance"), "{now:?}");
    assert!(!now.contains_key("Hijacked") && !now.contains_key("Swept"));
    // C's own next run still finds its item in place.
    assert_eq!(sync_now(&b, &c_on_b)["status"], "completed");
}

/// The audit entries of one kind of event: (actor, subject, detail).
async fn audited(inst: &TestInstance, event: &str) -> Vec<(Value, Value, Value)> {
    audited_as(inst, &inst.admin_token, event).await
}

async fn audited_as(inst: &TestInstance, token: &str, event: &str) -> Vec<(Value, Value, Value)> {
    let (status, log) = inst
        .call_as(
            token,
            reqwest::Method::GET,
            "/api/v1/audit?limit=10000",
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{log}");
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| {
            (
                e["actor"].clone(),
                e["subject"].clone(),
                e["detail"].clone(),
            )
        })
        .collect()
}

/// An editor cannot declassify an item (and so let it leave over a link whose ceiling it now
/// fits): markings, like the space an item is in, are an admin's call, and every change of
/// either is in the audit log with who made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_change_markings_and_every_change_is_audited() {
    let a = TestInstance::start().await;
    a.create_space("roads").await;
    a.create_space("archive").await;
    let (status, item) = a
        .import(
            "space=roads&title=Berths&marking=OFFICIAL&primary_key=id",
            "text/csv",
            "id\n1\n",
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{item}");
    let path = format!("/api/v1/items/{}", id(&item));
    let editor = a.create_token("ed", "editor").await;

    let declassify = json!({"markings": []});
    let (status, body) = a
        .call_as(
            &editor,
            reqwest::Method::PATCH,
            &path,
            Some(declassify.clone()),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");
    assert!(
        body["message"].as_str().unwrap().contains("markings"),
        "{body}"
    );
    assert_eq!(a.get(&path).await["markings"], json!(["OFFICIAL"]));
    // An editor still edits the rest of the metadata.
    let (status, body) = a
        .call_as(
            &editor,
            reqwest::Method::PATCH,
            &path,
            Some(json!({"title": "Quays"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(audited(&a, "item.markings_changed").await.is_empty());

    let (status, body) = a
        .call(reqwest::Method::PATCH, &path, Some(declassify))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    ferry_json(&a, &["item", "update", id(&item), "--space", "archive"]);
    assert_eq!(
        audited(&a, "item.markings_changed").await,
        vec![(
            json!("admin"),
            json!(id(&item)),
            json!({"title": "Quays", "from": ["OFFICIAL"], "to": []})
        )]
    );
    assert_eq!(
        audited(&a, "item.moved").await,
        vec![(
            json!("admin"),
            json!(id(&item)),
            json!({"title": "Quays", "from": "roads", "to": "archive"})
        )]
    );
    // The CLI shows them too.
    let log = crate::harness::events(&ferry_json(&a, &["audit", "list"]));
    assert!(
        log.contains(&"item.markings_changed".to_string())
            && log.contains(&"item.moved".to_string()),
        "{log:?}"
    );
}

/// Tokens: every creation and revocation is audited; the last admin token cannot be revoked
/// (nobody could administer the instance any more); the owner of the data directory can always
/// make a new admin token offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_audited_and_the_last_admin_token_stays() {
    let a = TestInstance::start().await;
    let created = ferry_json(&a, &["token", "create", "ops", "--role", "admin"]);
    let ops = created["info"]["id"].as_str().unwrap().to_string();
    let ops_secret = created["token"].as_str().unwrap().to_string();
    let tokens = ferry_json(&a, &["token", "list"]);
    let first = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // ops revokes the first admin token; then ops is the last one, and stays.
    let out = crate::harness::ferry_with_token(&a.url, &ops_secret, &["token", "revoke", &first]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = crate::harness::ferry_with_token(&a.url, &ops_secret, &["token", "revoke", &ops]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("last_admin_token"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("ferry token recover"),
        "{}",
        stderr(&out)
    );

    // The owner of the data directory recovers an admin token while the instance runs.
    let out = crate::harness::ferry_local(a.data_dir(), &["--json", "token", "recover"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recovered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(recovered["role"], "admin");
    let secret = std::fs::read_to_string(a.data_dir().join("admin-token")).unwrap();
    let out = crate::harness::ferry_with_token(&a.url, secret.trim(), &["token", "list"]);
    assert!(
        out.status.success(),
        "the recovered token works: {}",
        stderr(&out)
    );
    // `--data-dir` names the directory on the command line: its admin token is used.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--server", &a.url, "token", "list", "--data-dir"])
        .arg(a.data_dir())
        .env_remove("FERRY_DATA_DIR")
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_SERVER")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let elsewhere = tempfile::tempdir().unwrap();
    let out = crate::harness::ferry_local(elsewhere.path(), &["token", "recover"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no Ferry database here"),
        "{}",
        stderr(&out)
    );

    let created: Vec<Value> = audited_as(&a, secret.trim(), "token.created")
        .await
        .into_iter()
        .map(|(actor, ..)| actor)
        .collect();
    let owner = format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "owner".into())
    );
    assert_eq!(created, [json!("ferry"), json!("admin"), json!(owner)]);
    let revoked = audited_as(&a, secret.trim(), "token.revoked").await;
    assert_eq!(
        revoked,
        vec![(
            json!("ops"),
            json!(first),
            json!({"name": "admin", "role": "admin"})
        )]
    );
}

/// The same item arrives over a peer connection that marks arrivals PARTNER and over a
/// collaboration workspace that marks nothing: it keeps PARTNER, whichever link ran last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markings_from_two_links_add_up() {
    let a = crate::sync::instance("City GIS", |_| {}).await;
    let b = crate::sync::instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_, on_b) = crate::harness::peered(&a, &b, "datasets", &["--mark", "PARTNER"]);
    crate::sync::import(&a, "roads", "Depths", "csv", "id,m\n1,4.5\n".into()).await;
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    let marked =
        |items: &std::collections::BTreeMap<String, Value>| items["Depths"]["markings"].clone();
    assert_eq!(marked(&items(&b, "inbox").await), json!(["PARTNER"]));

    // A also shares its space with B through a collaboration that marks nothing.
    ferry_json(
        &a,
        &[
            "collab",
            "create",
            "Coast",
            "--workspace",
            "Roads",
            "--space",
            "roads",
        ],
    );
    let file = b.data_dir().join("invitation.txt");
    ferry_json(
        &a,
        &[
            "collab",
            "invite",
            "Coast",
            "--guest-url",
            &b.url,
            "--access",
            "Roads=receive",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    ferry_json(&b, &["collab", "accept", file.to_str().unwrap()]);
    ferry_json(&b, &["collab", "link", "Roads", "--space", "inbox"]);
    for link in ["Coast/Roads", &on_b, "Coast/Roads"] {
        let run = sync_now(&b, link);
        assert_eq!(run["status"], "completed", "{run}");
        let now = items(&b, "inbox").await;
        assert_eq!(now.len(), 1, "one item by two links");
        assert_eq!(marked(&now), json!(["PARTNER"]), "after a run of {link}");
    }
    assert!(audited(&b, "item.markings_changed").await.is_empty());
}

/// A value nested `levels` deep: arrays around a 1.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// Values nested deeper than readers read are refused at import and in a received stream, so
/// no item ever holds a row its own API cannot answer with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_values_are_refused_at_import_and_on_arrival() {
    let (proxy, a, b, on_b) = peered_behind_proxy("datasets,features").await;
    let deep = nested(200_000);
    let feature = |props: &str, coordinates: &str| {
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{props},"geometry":{{"type":"Point","coordinates":{coordinates}}}}}]}}"#
        )
    };
    let before = a.snapshot().await;
    for body in [
        feature(&format!(r#"{{"deep":{deep}}}"#), "[1,2]"),
        feature(r#"{"ok":1}"#, &deep),
    ] {
        let (status, error) = a
            .import("space=roads&title=Deep", "application/geo+json", body)
            .await;
        assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    }
    let ndjson = format!("{{\"id\":1,\"deep\":{}}}\n", nested(100));
    let (status, error) = a
        .import(
            "space=roads&title=Deep&primary_key=id",
            "application/x-ndjson",
            ndjson,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["code"], "schema_mismatch", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("levels deep"),
        "{error}"
    );
    assert_eq!(a.snapshot().await, before, "nothing stored");

    // As deep as the limit allows is fine, and reads back.
    let fits = format!("{{\"id\":1,\"deep\":{}}}\n", nested(63));
    let (status, item) = a
        .import(
            "space=roads&title=Fits&primary_key=id",
            "application/x-ndjson",
            fits,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{item}");
    assert_eq!(crate::sync::rows(&a, id(&item)).await.len(), 1);

    // A sender that streams a row nested deeper gets the item refused; the receiver's feed and
    // rows still answer.
    proxy.rewrite_sync_lines(move |line| {
        if !line.starts_with(r#"{"t":"row""#) {
            return vec![line.to_string()];
        }
        let mut row: Value = serde_json::from_str(line).unwrap();
        row["values"]["deep"] = json!("placeholder");
        let text = row.to_string();
        vec![text.replace(r#""placeholder""#, &nested(100_000))]
    });
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "schema_mismatch", "{run}");
    let (status, page) = b
        .call(
            reqwest::Method::GET,
            "/api/v1/spaces/inbox/changes?after=0",
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{page}");
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    let copy = &items(&b, "inbox").await["Fits"];
    assert_eq!(
        crate::sync::rows(&b, id(copy)).await,
        crate::sync::rows(&a, id(&item)).await
    );
}

/// 10,000 refused federation calls, each with a 50 KB claim, from one source in a burst: the
/// audit log takes the first refusal (its claim cut short) and, once the minute is over (or at
/// shutdown), one count of the rest. Ingress is judged before anything else is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_costs_the_audit_log_a_few_rows() {
    use futures_util::StreamExt;
    let a = TestInstance::start().await;
    let before = a
        .get("/api/v1/audit?limit=10000")
        .await
        .as_array()
        .unwrap()
        .len();
    let claim = "f".repeat(50_000);
    let signature = format!("v1;key={claim};created=1;nonce={};sig=AA", "0".repeat(32));
    let http = reqwest::Client::new();
    let url = format!("{}/federation/v1/sync/pull", a.url);
    let calls = 10_000;
    let refused = futures_util::stream::iter(0..calls)
        .map(|_| {
            let request = http
                .post(&url)
                .header(ferry_proto::signing::SIGNATURE_HEADER, &signature)
                .body("{}");
            async move { request.send().await.unwrap().status() }
        })
        .buffer_unordered(32)
        .filter(|status| std::future::ready(*status == reqwest::StatusCode::FORBIDDEN))
        .count()
        .await;
    assert_eq!(refused, calls, "every call refused with 403");

    let log = a.get("/api/v1/audit?limit=10000").await;
    let added = &log.as_array().unwrap()[before..];
    assert!((1..=4).contains(&added.len()), "{added:?}");
    // A minute may turn during the flood: its first refusal then brings the last one's count.
    assert!(
        added
            .iter()
            .all(|e| e["event"] == "federation.refused"
                || e["event"] == "federation.refused_repeatedly"),
        "{added:?}"
    );
    assert_eq!(added[0]["detail"]["code"], "policy_denied");
    let bytes = serde_json::to_string(added).unwrap().len();
    assert!(
        bytes < 600 * added.len(),
        "{bytes} bytes for {} entries",
        added.len()
    );

    // At shutdown the count of the rest is written: every call is accounted for.
    let a = a.restart().await;
    let log = a.get("/api/v1/audit?limit=10000").await;
    let entries = &log.as_array().unwrap()[before..];
    let counted: u64 = entries
        .iter()
        .map(|e| match e["event"].as_str() {
            Some("federation.refused_repeatedly") => e["detail"]["count"].as_u64().unwrap(),
            _ => 1,
        })
        .sum();
    assert_eq!(counted, calls as u64, "{entries:?}");
    assert!(entries.len() <= 8, "{entries:?}");
    let bytes = serde_json::to_string(entries).unwrap().len();
    assert!(bytes < 4_000, "{bytes} bytes");
}

/// This process's peak resident memory, in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// A peer that answers a check, or a 1 KB file chunk, with 768 MiB: the receiver reads no more
/// than it expects of that answer (a control answer 4 MiB, a chunk its declared length), says
/// so, and memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_answers_from_a_peer_are_cut_short() {
    let (proxy, a, b, on_b) = peered_behind_proxy("files").await;
    import_file(&a, "space=roads&title=Survey", noise(1000, 1)).await;
    const HUGE: u64 = 768 << 20;

    proxy.flood_answers("/federation/v1/probe", HUGE);
    let check = b.ferry(&["--json", "peer", "check", &on_b]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
    assert!(
        said.contains("answered with more than the 4194304 bytes"),
        "{said}"
    );

    proxy.flood_answers("/federation/v1/sync/chunk", HUGE);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "peer_answer_too_large", "{run}");
    assert!(items(&b, "inbox").await.is_empty());

    let peak = peak_rss_mib();
    assert!(peak < 150, "peak resident memory {peak} MiB");
}

/// Waits (at most 15 s) until the server closes `stream`: a read that ends or fails.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = std::time::Duration::from_secs(15);
    loop {
        match tokio::time::timeout(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar may come before the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// 300 connections that send nothing, on an instance that allows 64: `/healthz` still answers
/// (the quietest connection makes room). Connections that send a request's head a byte at a
/// time, or nothing at all, are cut after the time limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_cannot_lock_others_out() {
    use tokio::io::AsyncWriteExt;
    let a = TestInstance::start_with(|c| {
        c.connections = ferry_server::ConnectionLimits {
            max_connections: 64,
            header_read: std::time::Duration::from_secs(1),
            idle: std::time::Duration::from_secs(2),
        };
    })
    .await;
    let address = a.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let fresh = reqwest::Client::new();
        let health = fresh
            .get(format!("{}/healthz", a.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), reqwest::StatusCode::OK);
    }

    // A slow client: the head of its request never completes in time.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let dribble = async {
        for _ in 0..40 {
            if slow.write_all(b"X").await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    dribble.await;
    assert!(closed_by_server(&mut slow).await, "a slow head is cut");
    // A connection that never sends a byte is closed too.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "an idle connection is closed"
    );
    for stream in &mut idle {
        assert!(
            closed_by_server(stream).await,
            "every idle connection is closed in the end"
        );
    }
}

/// A real `ferry serve` limited to 256 file descriptors, and 300 connections that send nothing:
/// `/healthz` still answers, because running out of descriptors closes the quietest
/// connection (the default cap of 1,024 is never reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_closes_the_quietest_connection() {
    ferry_server::tls::install_default_provider();
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        // Long time limits: only making room can let the health check in.
        .arg(
            r#"ulimit -n 256 && exec "$0" serve --listen 127.0.0.1:0 --title Tight \
               --header-read-timeout-secs 600 --idle-timeout-secs 600"#,
        )
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .env("FERRY_DATA_DIR", data.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = crate::harness::endpoint_of(data.path()).await;
    let address = url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let answered = async {
        for _ in 0..20 {
            let fresh = reqwest::Client::new();
            if let Ok(r) = fresh.get(format!("{url}/healthz")).send().await {
                return r.status();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        reqwest::StatusCode::SERVICE_UNAVAILABLE
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), answered).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status.ok(), Some(reqwest::StatusCode::OK));
}

/// Asserts an answer is the refusal `(status, code)`; returns its body.
fn refused_with(
    (status, body): (reqwest::StatusCode, Value),
    expected: reqwest::StatusCode,
    code: &str,
) -> Value {
    assert_eq!(
        (status, body["code"].as_str()),
        (expected, Some(code)),
        "{body}"
    );
    body
}

/// The small ones: each a door that stood ajar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_holes_are_closed() {
    use reqwest::{Method, StatusCode};
    let a = TestInstance::start().await;
    a.create_space("roads").await;

    // /metrics names links and their traffic: it needs a token (any role).
    let bare = a
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let viewer = a.create_token("prometheus", "viewer").await;
    let scraped = a
        .request(Method::GET, "/metrics", Some(&viewer))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);

    // A CSV header naming a column twice would silently keep one of them.
    let csv = a.import("space=roads&title=Twice", "text/csv", "id,id\n1,2\n");
    let body = refused_with(csv.await, StatusCode::UNPROCESSABLE_ENTITY, "malformed_csv");
    assert!(
        body["message"].as_str().unwrap().contains("'id' twice"),
        "{body}"
    );
    // So would a GeoJSON feature with a property key twice.
    let geojson = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"depth":1,"depth":2},"geometry":{"type":"Point","coordinates":[4.4,51.9]}}]}"#;
    let (status, body) = a
        .import("space=roads&title=Twice", "application/geo+json", geojson)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("appears twice"),
        "{body}"
    );

    // Space names that are only dots.
    for name in [".", ".."] {
        let created = a.call(Method::POST, "/api/v1/spaces", Some(json!({"name": name})));
        refused_with(created.await, StatusCode::BAD_REQUEST, "invalid_request");
    }

    // 1,500 filters: a clear refusal, not a 500.
    let (_, item) = a
        .import(
            "space=roads&title=Depths&primary_key=id",
            "text/csv",
            "id,m\n1,2\n",
        )
        .await;
    let filters = "&where=m:2".repeat(1_500);
    let path = format!("/api/v1/items/{}/rows?limit=5{filters}", id(&item));
    refused_with(
        a.call(Method::GET, &path, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (status, page) = a
        .call(
            Method::GET,
            &format!("/api/v1/items/{}/rows?where=m:2", id(&item)),
            None,
        )
        .await;
    assert_eq!(
        (status, page["rows"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );

    // A suffix range longer than the file is the whole file.
    let (_, file) = a
        .import(
            "space=roads&title=Note",
            "application/octet-stream",
            "twelve bytes",
        )
        .await;
    let whole = a
        .export(id(&file), "", &[("range", "bytes=-5000".to_string())])
        .await;
    assert_eq!(whole.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(whole.headers()["content-range"], "bytes 0-11/12");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), b"twelve bytes");
}

/// A title another instance chose reaches the admin's terminal as text: its escape sequences
/// are shown, not obeyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titles_from_other_instances_cannot_drive_the_terminal() {
    let evil = "\u{1b}[2J\u{1b}]0;owned\u{7}City\rGIS\u{9b}31m";
    let a = crate::sync::instance(evil, |_| {}).await;
    let b = crate::sync::instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    let created = ferry_json(
        &a,
        &[
            "peer", "request", "--space", "roads", "--export", "datasets",
        ],
    );
    let code = created["code"].as_str().unwrap();
    for args in [vec!["peer", "import", code], vec!["peer", "list"]] {
        let out = b.ferry(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = String::from_utf8(out.stdout).unwrap();
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: {shown:?}"
        );
        assert!(shown.contains(r"\x1b[2J"), "{args:?}: {shown}");
    }
    // Scripts get the title as it is, in JSON.
    let listed = ferry_json(&b, &["peer", "list"]);
    assert_eq!(listed[0]["peer"]["title"], evil, "{listed}");
}

/// Rules that name an instance or a host name do not open internal addresses: the address a
/// call really goes to is judged too. A peer whose self-issued code names a loopback URL (here
/// `http://localhost:PORT`) is not reached until an address rule says so, in a direction the
/// call serves (an approval of an import: ingress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_judges_the_address_a_call_really_goes_to() {
    let proxy = crate::harness::Proxy::start().await;
    let port = proxy.url.rsplit(':').next().unwrap().to_string();
    let public = format!("http://localhost:{port}");
    let a = crate::sync::instance("City GIS", move |c| c.public_url = Some(public)).await;
    proxy.point_at(&a.url);
    let b = TestInstance::start().await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let a_id = crate::harness::instance_id(&a).await;
    let created = ferry_json(
        &a,
        &[
            "peer", "request", "--space", "roads", "--export", "datasets",
        ],
    );
    let imported = ferry_json(&b, &["peer", "import", created["code"].as_str().unwrap()]);
    let on_b = imported["id"].as_str().unwrap().to_string();
    let approve = || b.ferry(&["peer", "approve", &on_b, "--space", "inbox"]);

    for rule in ["localhost", &format!("instance:{a_id}")] {
        let added = ferry_json(&b, &["policy", "ingress", "allow", rule]);
        let out = approve();
        assert!(!out.status.success(), "{rule}");
        let said = stderr(&out);
        assert!(said.contains("ingress_denied"), "{rule}: {said}");
        assert!(
            said.contains("internal address") && said.contains("127.0.0.1"),
            "{rule}: {said}"
        );
        assert!(
            said.contains("ferry policy ingress allow 127.0.0.1"),
            "{rule}: {said}"
        );
        assert_eq!(
            ferry_json(&b, &["peer", "show", &on_b])["connection"]["state"],
            "imported"
        );
        ferry_json(
            &b,
            &["policy", "ingress", "remove", added["id"].as_str().unwrap()],
        );
    }
    // An address rule for the other direction does not open it: the approval serves an import.
    let egress = ferry_json(&b, &["policy", "egress", "allow", "127.0.0.1"]);
    let by_id = ferry_json(
        &b,
        &["policy", "ingress", "allow", &format!("instance:{a_id}")],
    );
    assert!(stderr(&approve()).contains("internal address"));
    ferry_json(
        &b,
        &["policy", "egress", "remove", egress["id"].as_str().unwrap()],
    );
    // A deny on the address wins over every allow.
    let deny = ferry_json(&b, &["policy", "ingress", "deny", "127.0.0.0/8"]);
    let said = stderr(&approve());
    assert!(
        said.contains("ingress_denied") && said.contains(deny["id"].as_str().unwrap()),
        "{said}"
    );
    ferry_json(
        &b,
        &["policy", "ingress", "remove", deny["id"].as_str().unwrap()],
    );
    // An address rule alone admits a peer reached by name: the name is resolved, and the rule
    // matches the address it leads to.
    ferry_json(
        &b,
        &["policy", "ingress", "remove", by_id["id"].as_str().unwrap()],
    );
    ferry_json(&b, &["policy", "ingress", "allow", "127.0.0.1"]);
    let out = approve();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A man in the middle (a proxy without A's key) changes traffic from A to B: a row in a sync
/// batch, or a control answer. B refuses each with its own code and applies nothing of the
/// changed batch; once the traffic is left alone, everything arrives as A has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_changed_in_flight_are_refused() {
    let mitm = crate::harness::Proxy::start().await;
    let url = mitm.url.clone();
    let a = crate::sync::instance("City GIS", move |c| c.public_url = Some(url)).await;
    mitm.point_at(&a.url);
    let b = crate::sync::instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_, on_b) = crate::harness::peered(&a, &b, "datasets", &[]);
    let item =
        crate::sync::import(&a, "roads", "Depths", "csv", "id,m\n1,4.5\n2,7.25\n".into()).await;

    // A row's value is changed inside a signed batch.
    mitm.rewrite_sync_lines(|line| vec![line.replace("7.25", "0.5")]);
    let run = failed_run(&b, &on_b);
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .contains("stream_signature_invalid"),
        "{run}"
    );
    assert!(
        items(&b, "inbox").await.is_empty(),
        "nothing of the batch applied"
    );
    let cursor_free = b.get("/api/v1/sync/status").await;
    assert!(
        !cursor_free.to_string().contains("\"completed\""),
        "{cursor_free}"
    );

    // A batch dropped whole: the next signature no longer covers what came before it.
    mitm.rewrite_sync_lines(|line| {
        if line.starts_with(r#"{"t":"row""#) {
            vec![]
        } else {
            vec![line.to_string()]
        }
    });
    let run = failed_run(&b, &on_b);
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .contains("stream_signature_invalid"),
        "{run}"
    );
    assert!(items(&b, "inbox").await.is_empty());

    // A control answer changed: `peer check` says the answer is not A's.
    mitm.rewrite_sync_lines(|line| vec![line.to_string()]);
    mitm.rewrite_answers("/federation/v1/probe", |body| body.replace("true", "false"));
    let check = b.ferry(&["--json", "peer", "check", &on_b]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
    assert!(
        said.contains("not signed by the peer's pinned key"),
        "{said}"
    );
    mitm.rewrite_answers("/federation/v1/probe", |body| body.to_string());

    // Left alone, the same traffic verifies and everything arrives.
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Depths"];
    assert_eq!(
        crate::sync::rows(&b, id(copy)).await,
        crate::sync::rows(&a, id(&item)).await
    );
    assert_eq!(ferry_json(&b, &["peer", "check", &on_b])["ok"], true);
}

/// Two instances under a private CA peer, collaborate and sync over HTTPS only: the CLI, the
/// federation calls and the sync streams all go through TLS, and nothing answers in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_peer_collaborate_and_sync_over_https() {
    let pki = crate::harness::TestPki::new("Ferry");
    let a = crate::sync::instance("City GIS", |c| pki.apply(c)).await;
    let b = crate::sync::instance("Harbor Authority", |c| pki.apply(c)).await;
    assert!(a.url.starts_with("https://") && b.url.starts_with("https://"));
    assert!(
        ferry_json(&a, &["instance", "show"])["public_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    a.create_space("roads").await;
    b.create_space("inbox").await;

    let (_, on_b) = crate::harness::peered(&a, &b, "datasets", &[]);
    let depths =
        crate::sync::import(&a, "roads", "Depths", "csv", "id,m\n1,4.5\n2,7.25\n".into()).await;
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    let copy = &items(&b, "inbox").await["Depths"];
    assert_eq!(
        crate::sync::rows(&b, id(copy)).await,
        crate::sync::rows(&a, id(&depths)).await
    );
    assert_eq!(ferry_json(&b, &["peer", "check", &on_b])["ok"], true);

    crate::sync::coast(&a, &[(&b, "Roads=receive")], &[]);
    crate::sync::import(&a, "coast", "Berths", "csv", "id\n1\n2\n3\n".into()).await;
    assert_eq!(sync_now(&b, "Coast/Roads")["status"], "completed");
    let berths = &items(&b, "mine").await["Berths"];
    assert_eq!(berths["row_count"], 3);

    // Nothing answers in clear on an HTTPS port, and a client that does not trust the CA
    // refuses the certificate.
    let clear = a.url.replacen("https://", "http://", 1);
    let plain = reqwest::Client::new()
        .get(format!("{clear}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let untrusting =
        crate::harness::ferry_with_token(&a.url, &a.admin_token, &["instance", "show"]);
    assert!(!untrusting.status.success());
    assert!(
        stderr(&untrusting).to_lowercase().contains("certificate"),
        "{}",
        stderr(&untrusting)
    );
}

/// A peer whose code names a plain http:// URL off loopback is refused with a clear message
/// (and `peer show` warns), unless this instance allows plain HTTP; even then its egress
/// policy is asked. No packet leaves for the address (192.0.2.10 is a documentation address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_peers_off_loopback_are_refused_unless_allowed() {
    let a = crate::sync::instance("Far Away", |c| {
        c.public_url = Some("http://192.0.2.10:8750".into());
    })
    .await;
    let b = crate::sync::instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let created = ferry_json(
        &a,
        &[
            "peer", "request", "--space", "roads", "--export", "datasets",
        ],
    );
    let imported = ferry_json(&b, &["peer", "import", created["code"].as_str().unwrap()]);
    let on_b = imported["id"].as_str().unwrap().to_string();
    let shown = b.ferry(&["peer", "show", &on_b]);
    assert!(
        stdout(&shown).contains("WARNING") && stdout(&shown).contains("plain HTTP"),
        "{}",
        stdout(&shown)
    );

    let out = b.ferry(&["peer", "approve", &on_b, "--space", "inbox"]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("plain_http_refused") && said.contains("https://"),
        "{said}"
    );
    assert!(said.contains("allow_plain_http"), "{said}");
    assert_eq!(
        ferry_json(&b, &["peer", "show", &on_b])["connection"]["state"],
        "imported"
    );

    // Allowed (a lab): the call is no longer refused for its transport; policy decides.
    let b = crate::sync::instance("Harbor Lab", |c| c.allow_plain_http = true).await;
    b.create_space("inbox").await;
    let imported = ferry_json(&b, &["peer", "import", created["code"].as_str().unwrap()]);
    let on_b = imported["id"].as_str().unwrap().to_string();
    let said = stderr(&b.ferry(&["peer", "approve", &on_b, "--space", "inbox"]));
    assert!(!said.contains("plain_http_refused"), "{said}");
    assert!(
        said.contains("ingress_denied")
            && said.contains("'Harbor Lab' does not permit ingress from 'Far Away'"),
        "{said}"
    );
}

/// Whether a fresh HTTPS client trusting `ca` gets `/healthz` from `url`.
async fn trusted_by(ca: &std::path::Path, url: &str) -> bool {
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(ferry_server::tls::client_config(Some(ca)).unwrap())
        .build()
        .unwrap();
    client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// `ferry serve --tls-cert --tls-key` reads its certificate again on SIGHUP: the renewed one is
/// served from the next connection on, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_after_sighup() {
    ferry_server::tls::install_default_provider();
    let (first, second) = (
        crate::harness::TestPki::new("First"),
        crate::harness::TestPki::new("Second"),
    );
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = (data.path().join("tls.pem"), data.path().join("tls.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("FERRY_DATA_DIR", data.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = crate::harness::endpoint_of(data.path()).await;
    assert!(url.starts_with("https://"), "{url}");
    assert!(trusted_by(&first.ca, &url).await);
    assert!(!trusted_by(&second.ca, &url).await);

    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    let hup = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -HUP {}", child.id()))
        .status()
        .unwrap();
    assert!(hup.success());
    let mut renewed = false;
    for _ in 0..50 {
        if trusted_by(&second.ca, &url).await {
            renewed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let old_refused = !trusted_by(&first.ca, &url).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(renewed, "the renewed certificate is served");
    assert!(old_refused, "the old one no longer is");
}

/// In a collaboration, a guest brings its host its own items only: a guest that describes
/// another guest's item (here G1 forging G2's) is refused, and the host's copy stays G2's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_touch_another_guests_item_at_the_host() {
    let proxy = crate::harness::Proxy::start().await;
    let proxy_url = proxy.url.clone();
    let host = crate::sync::instance("Port Authority", |_| {}).await;
    let g1 = crate::sync::instance("City GIS", move |c| c.public_url = Some(proxy_url)).await;
    proxy.point_at(&g1.url);
    proxy.sign_as(crate::harness::key_of(&g1));
    let g2 = crate::sync::instance("Harbor Pilots", |_| {}).await;
    crate::sync::coast(&host, &[], &[]);
    crate::sync::join_coast(&host, &g1, &proxy.url, "Roads=send_receive");
    crate::sync::join_coast(&host, &g2, &g2.url, "Roads=send");
    let theirs = crate::sync::import(&g2, "mine", "Soundings", "csv", "id,m\n1,3.5\n".into()).await;
    assert_eq!(sync_now(&host, "Coast/Roads")["status"], "completed");
    let held = items(&host, "coast").await["Soundings"].clone();

    let g2_id = crate::harness::instance_id(&g2).await;
    proxy.rewrite_sync_lines(inject_after_start(
        vec![forged_item(&g2_id, id(&theirs), "Forged by City GIS", true)],
        true,
    ));
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "origin_not_allowed", "{run}");
    let now = items(&host, "coast").await;
    assert_eq!(now["Soundings"]["version"], held["version"], "untouched");
    assert_eq!(
        crate::sync::rows(&host, id(&now["Soundings"])).await.len(),
        1
    );
    assert!(!now.contains_key("Forged by City GIS"));
}
