//! Sync between real instances over real HTTP: copies kept in sync incrementally, retraction,
//! relay through a collaboration's host without echo, and a misbehaving sender.

use crate::harness::{
    Proxy, TestInstance, ferry_json, open_policies, peered, points_geojson, stderr, stdout,
    wait_for,
};
use ferry_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) async fn instance(title: &str, tweak: impl FnOnce(&mut Config)) -> TestInstance {
    let title = title.to_string();
    let inst = TestInstance::start_with(move |c| {
        c.title = title;
        // Runs happen when a test asks, so it can count what each one moves.
        c.realtime = false;
        c.sync_tick = std::time::Duration::from_secs(3600);
        tweak(c);
    })
    .await;
    open_policies(&inst);
    inst
}

/// Imports into `space`; returns the new item.
pub(crate) async fn import(
    inst: &TestInstance,
    space: &str,
    title: &str,
    kind: &str,
    body: String,
) -> Value {
    let (content_type, extra) = match kind {
        "geojson" => ("application/geo+json", ""),
        _ => ("text/csv", "&primary_key=id"),
    };
    let (status, item) = inst
        .import(
            &format!("space={space}&title={title}{extra}"),
            content_type,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item
}

/// Imports bytes as a file item (`query`: space, title, markings...); returns the new item.
pub(crate) async fn import_file(inst: &TestInstance, query: &str, bytes: Vec<u8>) -> Value {
    let (status, item) = inst.import(query, "application/octet-stream", bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item
}

/// Every live row of an item as (key, values, geometry), in key order.
pub(crate) async fn rows(inst: &TestInstance, item: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/items/{item}/rows?limit=10000");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let page = inst.get(&path).await;
        for r in page["rows"].as_array().unwrap() {
            all.push(json!([r["key"], r["values"], r["geometry"]]));
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return all,
        }
    }
}

/// Items of a space by title.
pub(crate) async fn items(
    inst: &TestInstance,
    space: &str,
) -> std::collections::BTreeMap<String, Value> {
    inst.get(&format!("/api/v1/items?space={space}"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["title"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

pub(crate) fn id(item: &Value) -> &str {
    item["id"].as_str().unwrap()
}

pub(crate) async fn edit(inst: &TestInstance, item: &str, batch: Value) {
    let (status, body) = inst
        .call(
            Method::POST,
            &format!("/api/v1/items/{item}/edits"),
            Some(batch),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub(crate) fn sync_now(inst: &TestInstance, link: &str) -> Value {
    ferry_json(inst, &["sync", "now", link])
}

/// Connects A's space "roads" with B's "inbox", A exporting `export` and importing `import`;
/// returns the connection's id on A and on B.
pub(crate) async fn connect(
    a: &TestInstance,
    b: &TestInstance,
    export: &str,
    import: &str,
) -> (String, String) {
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let request = [
        "peer", "request", "--space", "roads", "--export", export, "--import", import,
    ];
    let created = ferry_json(a, &request);
    let on_b = ferry_json(b, &["peer", "import", created["code"].as_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    ferry_json(b, &["peer", "approve", &on_b, "--space", "inbox"]);
    let on_a = created["connection"]["id"].as_str().unwrap().to_string();
    ferry_json(a, &["peer", "activate", &on_a]);
    (on_a, on_b)
}

/// One connection, both ways: each side pulls the types the other sends, and nothing echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_way_peer_connection_carries_each_way_its_types() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    let (on_a, on_b) = connect(&a, &b, "features", "datasets").await;

    import(&a, "roads", "Berths", "geojson", points_geojson(5)).await;
    import(&a, "roads", "City table", "csv", "id\n1\n".into()).await;
    import(&b, "inbox", "Depths", "csv", "id,depth\n1,4.5\n".into()).await;
    import(&b, "inbox", "Harbor layer", "geojson", points_geojson(3)).await;
    assert_eq!(sync_now(&b, &on_b)["items_received"], 1);
    assert_eq!(sync_now(&a, &on_a)["items_received"], 1);
    let at_a = items(&a, "roads").await;
    let at_b = items(&b, "inbox").await;
    assert_eq!(
        at_a.keys().collect::<Vec<_>>(),
        vec!["Berths", "City table", "Depths"],
        "A receives datasets only"
    );
    assert_eq!(
        at_b.keys().collect::<Vec<_>>(),
        vec!["Berths", "Depths", "Harbor layer"],
        "B receives features only"
    );
    // Nothing goes back where it came from, however often each side runs.
    for _ in 0..2 {
        assert_eq!(sync_now(&a, &on_a)["items_received"], 0);
        assert_eq!(sync_now(&b, &on_b)["items_received"], 0);
    }
    assert_eq!(items(&a, "roads").await.len(), 3);
}

/// A sender restored from a backup went back in time: its new epoch makes the receiver's next
/// pull a full pass that converges to the restored state (rows it no longer has swept, items it
/// no longer has retracted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_restored_from_a_backup_is_followed_back_in_time() {
    let mut a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_on_a, on_b) = peered(&a, &b, "datasets,features", &[]);
    let layer = import(&a, "roads", "Berths", "geojson", points_geojson(10)).await;
    sync_now(&b, &on_b);
    let epoch = a.get("/api/v1/instance").await["epoch"].clone();

    a.stop().await;
    a.back_up();
    let mut a = a.restart().await;
    let added: Vec<Value> = (11..=15)
        .map(|k| json!({"key": k, "values": {"name": "late", "n": k, "v": 0.5}, "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}))
        .collect();
    edit(&a, id(&layer), json!({"adds": added, "deletes": [1]})).await;
    import(&a, "roads", "Depths", "csv", "id,depth\n1,4.5\n".into()).await;
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(items(&b, "inbox").await["Berths"]["row_count"], 14, "{run}");

    a.stop().await;
    a.restore_backup();
    let a = a.restart().await;
    assert_ne!(a.get("/api/v1/instance").await["epoch"], epoch);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let at_b = items(&b, "inbox").await;
    assert_eq!(
        at_b.keys().collect::<Vec<_>>(),
        vec!["Berths"],
        "Depths retracted"
    );
    assert_eq!(at_b["Berths"]["row_count"], 10);
    assert_eq!(
        rows(&b, id(&at_b["Berths"])).await,
        rows(&a, id(&layer)).await
    );
}

/// A sender that stops sending a data type: the receiver retracts the items of that type at its
/// next run. Sending more than was approved needs a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_types_no_longer_sent_are_retracted() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (on_a, on_b) = peered(&a, &b, "datasets,features", &[]);
    import(&a, "roads", "Berths", "geojson", points_geojson(20)).await;
    import(&a, "roads", "Depths", "csv", "id,depth\n1,4.5\n".into()).await;
    sync_now(&b, &on_b);
    assert_eq!(items(&b, "inbox").await.len(), 2);

    let out = a.ferry(&["peer", "sends", &on_a, "--types", "datasets,files"]);
    assert!(
        stderr(&out).contains("create a new connection"),
        "{}",
        stderr(&out)
    );
    let narrowed = ferry_json(&a, &["peer", "sends", &on_a, "--types", "datasets"]);
    assert_eq!(narrowed["sends"], json!(["datasets"]));
    let run = sync_now(&b, &on_b);
    assert_eq!(run["items_retracted"], 1, "{run}");
    let left = items(&b, "inbox").await;
    assert_eq!(left.keys().collect::<Vec<_>>(), vec!["Depths"]);
    // Before approval, the invite code says what is sent.
    let pending = ferry_json(
        &a,
        &[
            "peer", "request", "--space", "roads", "--export", "features",
        ],
    );
    let id_pending = pending["connection"]["id"].as_str().unwrap();
    let out = a.ferry(&["peer", "sends", id_pending, "--types", "features"]);
    assert!(
        stderr(&out).contains("once it is approved"),
        "{}",
        stderr(&out)
    );
    // Nothing at all is not a narrowing: that is what disabling is for.
    let out = a.ferry(&["peer", "sends", &on_a, "--types", "none"]);
    assert!(stderr(&out).contains("invalid_request"), "{}", stderr(&out));
    let out = a.ferry(&["peer", "sends", &on_a, "--types", "features"]);
    assert!(
        !out.status.success(),
        "what was given up needs a new connection"
    );
    assert_eq!(sync_now(&b, &on_b)["items_received"], 0);
}

/// Moving an item out of the linked space unshares it: the receiver retracts it. Moved back,
/// it is copied whole again, every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_moved_out_of_the_linked_space_are_retracted() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    a.create_space("drafts").await;
    b.create_space("inbox").await;
    let (_on_a, on_b) = peered(&a, &b, "datasets,features", &[]);
    let layer = import(&a, "roads", "Berths", "geojson", points_geojson(40)).await;
    assert_eq!(sync_now(&b, &on_b)["rows_received"], 40);

    // Only an admin decides who receives an item.
    let editor = a.create_token("ed", "editor").await;
    let path = format!("/api/v1/items/{}", id(&layer));
    let (status, body) = a
        .call_as(
            &editor,
            Method::PATCH,
            &path,
            Some(json!({"space": "drafts"})),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden"))
    );
    let (status, body) = a
        .call(
            Method::PATCH,
            &path,
            Some(json!({"space": "nowhere", "title": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(a.get(&path).await["title"], "Berths", "nothing changed");

    let moved = ferry_json(&a, &["item", "update", id(&layer), "--space", "drafts"]);
    assert_eq!(
        moved["space_id"],
        a.get("/api/v1/spaces/drafts").await["id"]
    );
    let run = sync_now(&b, &on_b);
    assert_eq!(
        (&run["status"], &run["items_retracted"]),
        (&json!("completed"), &json!(1)),
        "{run}"
    );
    assert!(items(&b, "inbox").await.is_empty(), "retracted");

    // The receiver's copy was its origin's to move; back home, the item travels again whole.
    ferry_json(&a, &["item", "update", id(&layer), "--space", "roads"]);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["rows_received"], 40, "{run}");
    let copy = &items(&b, "inbox").await["Berths"];
    assert_eq!(copy["row_count"], 40);
    let (status, body) = b
        .call(
            Method::PATCH,
            &format!("/api/v1/items/{}", id(copy)),
            Some(json!({"space": "inbox"})),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::CONFLICT, &json!("item_received"))
    );
    assert_eq!(
        sync_now(&b, &on_b)["rows_received"],
        0,
        "nothing more to do"
    );

    // A link that ended has no lag to report.
    let lag = format!("ferry_sync_lag_seconds{{link=\"peer:{on_b}\"}}");
    assert!(b.metrics().await.contains(&lag));
    ferry_json(&b, &["peer", "delete", &on_b]);
    assert!(!b.metrics().await.contains(&lag));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connection_copies_then_keeps_copies_in_sync() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (on_a, on_b) = peered(&a, &b, "datasets,features", &["--mark", "PARTNER"]);
    let layer = import(&a, "roads", "Berths", "geojson", points_geojson(300)).await;
    let csv = "id,name,depth\n1,North,4.5\n2,South,7\n3,East,2.25\n".to_string();
    let dataset = import(&a, "roads", "Depths", "csv", csv).await;
    let secret = import(&a, "roads", "Secret", "csv", "id\n1\n".into()).await;
    set_markings(&a, id(&secret), json!(["OFFICIAL"])).await;

    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["trigger"], "on_demand");
    assert_eq!(run["rows_received"], 303);
    // The sender keeps the same run from its side: one send run for the receiver's requests.
    let sent = ferry_json(&a, &["sync", "history", &on_a]);
    let sent = &sent.as_array().unwrap()[..];
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (
            &sent[0]["direction"],
            &sent[0]["trigger"],
            &sent[0]["status"]
        ),
        (&json!("send"), &json!("on_demand"), &json!("completed"))
    );
    assert_eq!(
        (&sent[0]["items_sent"], &sent[0]["rows_sent"]),
        (&json!(2), &json!(303))
    );
    assert_eq!(
        sent[0]["bytes_sent"], run["bytes_received"],
        "{sent:?} {run}"
    );
    assert_eq!(sent[0]["rows_received"], 0);
    let table = String::from_utf8(a.ferry(&["sync", "history", &on_a]).stdout).unwrap();
    assert!(table.contains("send") && table.contains("303"), "{table}");
    let got = items(&b, "inbox").await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        vec!["Berths", "Depths"],
        "the OFFICIAL item stays home"
    );
    let copy = &got["Berths"];
    assert_eq!(copy["row_count"], 300);
    assert_eq!(
        copy["markings"],
        json!(["PARTNER"]),
        "marked as the receiving admin set"
    );
    assert_eq!(copy["schema"], layer["schema"]);
    assert_eq!(copy["owner"], "admin", "owned by the receiving admin");
    // Only the origin changes a copy.
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/items/{}", id(copy)),
            json!({"title": "mine now"}),
        ),
        (
            Method::POST,
            format!("/api/v1/items/{}/edits", id(copy)),
            json!({"deletes": [1]}),
        ),
    ] {
        let (status, answer) = b.call(method, &path, Some(body)).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::CONFLICT, Some("item_received"))
        );
    }
    assert_eq!(rows(&b, id(copy)).await, rows(&a, id(&layer)).await);
    assert_eq!(
        rows(&b, id(&got["Depths"])).await,
        rows(&a, id(&dataset)).await
    );

    // A delta: updates, a delete, an add. Only those travel.
    edit(&a, id(&layer), json!({
        "updates": [{"key": 1, "values": {"name": "renamed"}}, {"key": 2, "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}],
        "deletes": [3],
        "adds": [{"key": 1000, "values": {"name": "new", "n": 1, "v": 0.5}, "geometry": {"type": "Point", "coordinates": [3.0, 4.0]}}],
    })).await;
    let run = sync_now(&b, &on_b);
    assert_eq!(
        (run["status"].as_str(), run["rows_received"].as_i64()),
        (Some("completed"), Some(4)),
        "{run}"
    );
    assert_eq!(rows(&b, id(copy)).await, rows(&a, id(&layer)).await);
    assert_eq!(
        b.get(&format!("/api/v1/items/{}", id(copy))).await["row_count"],
        300
    );

    // A link that does not exist, and one that carries nothing now: each its own code.
    let out = b.ferry(&["sync", "now", "nope"]);
    assert!(stderr(&out).contains("link_not_found"), "{}", stderr(&out));
    ferry_json(&b, &["peer", "disable", &on_b]);
    let out = b.ferry(&["sync", "now", &on_b]);
    assert!(stderr(&out).contains("link_inactive"), "{}", stderr(&out));
    ferry_json(&b, &["peer", "enable", &on_b]);

    // Nothing to do: nothing moves.
    let run = sync_now(&b, &on_b);
    assert_eq!(
        (
            run["items_received"].as_i64(),
            run["rows_received"].as_i64()
        ),
        (Some(0), Some(0))
    );
    // `sync status` shows the last run and, apart from it, the last one that moved data.
    let status = ferry_json(&b, &["sync", "status"]);
    let entry = status
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["link"] == format!("peer:{on_b}"))
        .unwrap();
    assert_eq!(entry["last_run"]["rows_received"], 0, "{entry}");
    assert!(
        entry["last_data_run"]["rows_received"].as_i64() > Some(0),
        "{entry}"
    );
    let table = stdout(&b.ferry(&["sync", "status"]));
    assert!(table.contains("last run that moved data"), "{table}");

    // A schedule whose start is past says when the next run really is.
    let out = b.ferry(&[
        "sync",
        "schedule",
        &on_b,
        "--every",
        "6h",
        "--start",
        "2020-01-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("The start is in the past")
            && stderr(&out).contains("next run is at"),
        "{}",
        stderr(&out)
    );

    // Marked above the ceiling: retracted from B, not left behind as if it never existed.
    set_markings(&a, id(&dataset), json!(["OFFICIAL"])).await;
    let run = sync_now(&b, &on_b);
    assert_eq!(run["items_retracted"], 1, "{run}");
    assert!(!items(&b, "inbox").await.contains_key("Depths"));
    // Back under the ceiling: it comes back whole, rows older than B's cursor included.
    set_markings(&a, id(&dataset), json!([])).await;
    sync_now(&b, &on_b);
    let back = &items(&b, "inbox").await["Depths"];
    assert_eq!(rows(&b, id(back)).await, rows(&a, id(&dataset)).await);

    // Deleted at the origin: deleted here.
    a.call(
        Method::DELETE,
        &format!("/api/v1/items/{}", id(&layer)),
        None,
    )
    .await;
    sync_now(&b, &on_b);
    assert!(!items(&b, "inbox").await.contains_key("Berths"));

    // History and status tell what happened.
    let history = ferry_json(&b, &["sync", "history", &on_b]);
    assert_eq!(
        history.as_array().unwrap().len(),
        7,
        "the run on the disabled link included"
    );
    let status = ferry_json(&b, &["sync", "status"]);
    let link = &status.as_array().unwrap()[0];
    assert_eq!(
        (link["receives"].as_bool(), link["sends"].as_bool()),
        (Some(true), Some(false))
    );
    let metrics = b.metrics().await;
    // The figures are the history's: runs by status, rows and bytes moved, and the lag.
    let history = history.as_array().unwrap();
    let total = |field: &str| {
        history
            .iter()
            .map(|r| r[field].as_i64().unwrap())
            .sum::<i64>()
    };
    let completed = history
        .iter()
        .filter(|r| r["status"] == "completed")
        .count();
    let link = format!("link=\"peer:{on_b}\"");
    assert_eq!(
        metric(
            &metrics,
            &format!("ferry_sync_runs_total{{{link},status=\"completed\"}}")
        ),
        Some(completed as f64),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("ferry_sync_rows_received_total{{{link}}}")
        ),
        Some(total("rows_received") as f64)
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("ferry_sync_bytes_received_total{{{link}}}")
        ),
        Some(total("bytes_received") as f64)
    );
    let lag = metric(&metrics, &format!("ferry_sync_lag_seconds{{{link}}}")).unwrap();
    assert!((0.0..60.0).contains(&lag), "{lag}");
    let sent_metrics = a.metrics().await;
    let sent = ferry_json(&a, &["sync", "history", &on_a]);
    let sent_rows: i64 = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rows_sent"].as_i64().unwrap())
        .sum();
    assert!(sent_rows >= 304, "{sent}");
    assert_eq!(
        metric(
            &sent_metrics,
            &format!("ferry_sync_rows_sent_total{{link=\"peer:{on_a}\"}}")
        ),
        Some(sent_rows as f64),
        "{sent_metrics}"
    );

    // The sender down: the run fails with a clear error, and the local API stays up. Changes
    // made before it went down arrive once it is back.
    let depths = id(&dataset).to_string();
    edit(
        &a,
        &depths,
        json!({"updates": [{"key": 1, "values": {"depth": 9.5}}]}),
    )
    .await;
    let mut a = a;
    a.stop().await;
    let out = b.ferry(&["sync", "now", &on_b]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("peer_unreachable"),
        "{}",
        stderr(&out)
    );
    let last = &ferry_json(&b, &["sync", "history", &on_b])[0];
    assert_eq!(last["status"], "failed");
    assert!(b.get("/api/v1/spaces").await.as_array().is_some());
    let a = a.restart().await;
    let run = sync_now(&b, &on_b);
    assert_eq!(
        (run["status"].as_str(), run["rows_received"].as_i64()),
        (Some("completed"), Some(1)),
        "{run}"
    );
    let copy = &items(&b, "inbox").await["Depths"];
    assert_eq!(rows(&b, id(copy)).await, rows(&a, &depths).await);
}

/// The host's collaboration "Coast" with one workspace "Roads" (`config`: its flags), each guest
/// invited with its mode and linked with its space "mine".
pub(crate) fn coast(host: &TestInstance, guests: &[(&TestInstance, &str)], config: &[&str]) {
    let mut create = vec![
        "collab",
        "create",
        "Coast",
        "--workspace",
        "Roads",
        "--space",
        "coast",
    ];
    create.extend_from_slice(config);
    ferry_json(host, &["space", "create", "coast"]);
    ferry_json(host, &create);
    for (guest, mode) in guests {
        join_coast(host, guest, &guest.url, mode);
    }
}

/// `guest`, reached at `url`, joins the host's "Coast" with `mode` and links its space "mine".
pub(crate) fn join_coast(host: &TestInstance, guest: &TestInstance, url: &str, mode: &str) {
    let file = guest.data_dir().join("invitation.txt");
    let file = file.to_str().unwrap();
    let invite = [
        "collab",
        "invite",
        "Coast",
        "--guest-url",
        url,
        "--access",
        mode,
        "--file",
        file,
    ];
    ferry_json(host, &invite);
    ferry_json(guest, &["collab", "accept", file]);
    ferry_json(guest, &["space", "create", "mine"]);
    ferry_json(guest, &["collab", "link", "Roads", "--space", "mine"]);
}

/// A host relays a large layer while it is still arriving from the guest that sends it: the
/// host's whole copy is cut after 6,000 lines, so its first part (5,000 rows) is committed and
/// the rest is not. The reader gets none of its rows (the host says the item is still arriving)
/// until the host holds it all; then the reader copies it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_never_relays_an_item_still_arriving() {
    relay_while_arriving("Soundings", 12_000, 6_000).await;
}

/// The same for a layer small enough to come inline in the host's pull: the feed commits every
/// 2,000 changes, so 3,000 lines hold the first commit, not the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_never_relays_an_inline_item_still_arriving() {
    relay_while_arriving("Buoys", 5_000, 3_000).await;
}

/// A guest sends a layer of `features` points to the host, whose pull from it is cut after
/// `cut_after` lines; a reading guest must see none of the layer until the host has it all.
async fn relay_while_arriving(title: &str, features: usize, cut_after: usize) {
    let proxy = Proxy::start().await;
    let host = instance("Port Authority", |_| {}).await;
    let url = proxy.url.clone();
    let sender = instance("City GIS", move |c| c.public_url = Some(url)).await;
    proxy.point_at(&sender.url);
    let reader = instance("Harbor Pilots", |_| {}).await;
    coast(&host, &[], &[]);
    join_coast(&host, &sender, &proxy.url, "Roads=send");
    join_coast(&host, &reader, &reader.url, "Roads=receive");
    let layer = import(&sender, "mine", title, "geojson", points_geojson(features)).await;

    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    proxy.rewrite_sync_lines(move |line| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < cut_after {
            vec![line.to_string()]
        } else {
            vec![]
        }
    });
    let out = host.ferry(&["sync", "now", "Coast/Roads"]);
    assert!(!out.status.success(), "the host's pull was cut");
    let partial = items(&host, "coast").await[title]["row_count"]
        .as_i64()
        .unwrap();
    assert!(
        (1..features as i64).contains(&partial),
        "{partial} rows at the host"
    );

    // The reader hears of the item, but no row of it comes: not in the feed, not as a copy,
    // however often it asks.
    for _ in 0..2 {
        let run = sync_now(&reader, "Coast/Roads");
        assert_eq!(run["status"], "completed_with_failures", "{run}");
        assert_eq!(run["rows_received"], 0, "{run}");
        assert_eq!(run["errors"][0]["code"], "item_arriving", "{run}");
    }
    let held = items(&reader, "mine").await;
    assert!(
        held.get(title)
            .is_none_or(|i| i["row_count"].as_i64() == Some(0)),
        "{held:?}"
    );

    // The host's pull completes; then the reader copies the whole item.
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    assert_eq!(sync_now(&host, "Coast/Roads")["status"], "completed");
    assert_eq!(
        items(&host, "coast").await[title]["row_count"],
        features as i64
    );
    let run = sync_now(&reader, "Coast/Roads");
    assert_eq!(run["status"], "completed", "{run}");
    let copy = items(&reader, "mine").await[title].clone();
    assert_eq!(
        rows(&reader, id(&copy)).await,
        rows(&sender, id(&layer)).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collaboration_relays_through_its_host_and_never_echoes() {
    let host = instance("Port Authority", |_| {}).await;
    let sender = instance("City GIS", |_| {}).await;
    // This one asks for plain streams: compression is the receiver's choice.
    let reader = instance("Harbor Pilots", |c| c.compress_sync = false).await;
    coast(
        &host,
        &[(&sender, "Roads=send_receive"), (&reader, "Roads=receive")],
        &[],
    );
    import(
        &sender,
        "mine",
        "From the city",
        "csv",
        "id,v\n1,a\n2,b\n".into(),
    )
    .await;
    import(&host, "coast", "From the port", "csv", "id,v\n1,x\n".into()).await;

    // The host pulls from the guest that sends; the reader pulls from the host.
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(
        (run["status"].as_str(), run["items_received"].as_i64()),
        (Some("completed"), Some(1)),
        "{run}"
    );
    assert_eq!(items(&host, "coast").await.len(), 2);
    sync_now(&reader, "Coast/Roads");
    let at_reader = items(&reader, "mine").await;
    assert_eq!(
        at_reader.keys().collect::<Vec<_>>(),
        vec!["From the city", "From the port"]
    );
    assert_eq!(
        rows(&reader, id(&at_reader["From the city"])).await.len(),
        2
    );

    // The sending guest gets the host's item, never its own back.
    let run = sync_now(&sender, "Coast/Roads");
    assert_eq!(run["items_received"], 1, "{run}");
    let at_sender = items(&sender, "mine").await;
    assert_eq!(
        at_sender.keys().collect::<Vec<_>>(),
        vec!["From the city", "From the port"]
    );

    // A receive-only guest sends nothing: the host has no channel from it.
    import(&reader, "mine", "Reader's own", "csv", "id\n1\n".into()).await;
    sync_now(&host, "Coast/Roads");
    assert!(!items(&host, "coast").await.contains_key("Reader's own"));

    // Each guest owns its schedule per workspace (receive-only guests too); the host follows.
    let set = ferry_json(&reader, &["collab", "schedule", "Roads", "--every", "3h"]);
    assert_eq!(
        (set["every_secs"].as_i64(), set["owned"].as_bool()),
        (Some(10_800), Some(true))
    );
    let out = host.ferry(&["sync", "schedule", "Coast/Roads", "--every", "2h"]);
    assert!(
        stderr(&out).contains("collab_host_only"),
        "{}",
        stderr(&out)
    );

    // A retraction follows each receiver's delete policy: the reader keeps (the default),
    // the sending guest deletes. An item that comes back is still one item.
    ferry_json(&sender, &["collab", "delete-policy", "Coast", "delete"]);
    ferry_json(&host, &["space", "create", "archive"]);
    let port = id(&items(&host, "coast").await["From the port"]).to_string();
    ferry_json(&host, &["item", "update", &port, "--space", "archive"]);
    for guest in [&reader, &sender] {
        let run = sync_now(guest, "Coast/Roads");
        assert_eq!(run["items_retracted"], 1, "{run}");
    }
    assert!(
        items(&reader, "mine").await.contains_key("From the port"),
        "kept"
    );
    assert!(
        !items(&sender, "mine").await.contains_key("From the port"),
        "deleted"
    );
    ferry_json(&host, &["item", "update", &port, "--space", "coast"]);
    for guest in [&reader, &sender] {
        sync_now(guest, "Coast/Roads");
        let titles: Vec<String> = ferry_json(guest, &["item", "list", "--space", "mine"])
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .filter(|t| t == "From the port")
            .collect();
        assert_eq!(titles.len(), 1, "one item, however it came back");
    }
}

/// A (reached through a proxy) peered to B for `export`: the proxy, A, B, and the link on B.
pub(crate) async fn peered_behind_proxy(
    export: &str,
) -> (Proxy, TestInstance, TestInstance, String) {
    let proxy = Proxy::start().await;
    let url = proxy.url.clone();
    let a = instance("City GIS", move |c| c.public_url = Some(url)).await;
    proxy.point_at(&a.url);
    // The proxy plays A: what it rewrites, A itself could have sent.
    proxy.sign_as(crate::harness::key_of(&a));
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_, on_b) = peered(&a, &b, export, &[]);
    (proxy, a, b, on_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_sender_cannot_push_what_was_not_agreed() {
    // Datasets only.
    let (proxy, a, b, on_b) = peered_behind_proxy("datasets").await;
    let b_id = crate::harness::instance_id(&b).await;
    import(&a, "roads", "Honest", "csv", "id\n1\n".into()).await;

    // On the way to B, every item grows a twin that B never agreed to: a feature layer, and an
    // item that claims to come from B itself.
    let b_id_copy = b_id.clone();
    proxy.rewrite_sync_lines(move |line| {
        let record: Value = serde_json::from_str(line).unwrap();
        if record["t"] != "item" {
            return vec![line.to_string()];
        }
        let mut layer = record.clone();
        layer["item"]["kind"] = json!("feature_layer");
        layer["item"]["origin_item"] = json!("smuggled-layer");
        layer["item"]["title"] = json!("Smuggled layer");
        let mut echo = record.clone();
        echo["item"]["origin_instance"] = json!(b_id_copy);
        echo["item"]["origin_item"] = json!("smuggled-echo");
        echo["item"]["title"] = json!("Smuggled echo");
        vec![line.to_string(), layer.to_string(), echo.to_string()]
    });
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    let refused: Vec<&str> = run["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(refused, vec!["sync_refused", "sync_refused"]);
    assert_eq!(
        items(&b, "inbox").await.keys().collect::<Vec<_>>(),
        vec!["Honest"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_bounded_by_bytes_as_well_as_count() {
    let (proxy, a, b, on_b) = peered_behind_proxy("datasets").await;
    // 2,000 rows of ~6 KB: one page by count, but 12 MB of rows.
    let filler = "x".repeat(6_000);
    let csv: String = std::iter::once("id,note\n".to_string())
        .chain((1..=2_000).map(|i| format!("{i},{filler}\n")))
        .collect();
    let dataset = import(&a, "roads", "Notes", "csv", csv).await;
    let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = commits.clone();
    proxy.rewrite_sync_lines(move |line| {
        if line.starts_with(r#"{"t":"commit""#) {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        vec![line.to_string()]
    });
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert!(
        commits.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the 8 MiB bound ends a batch before the page does"
    );
    let copy = &items(&b, "inbox").await["Notes"];
    assert_eq!(rows(&b, id(copy)).await, rows(&a, id(&dataset)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_pokes_and_one_run_at_a_time() {
    let tick = std::time::Duration::from_millis(200);
    let proxy = Proxy::start().await;
    let url = proxy.url.clone();
    let a = instance("City GIS", move |c| {
        c.public_url = Some(url);
        c.sync_tick = tick;
        c.realtime = true;
    })
    .await;
    proxy.point_at(&a.url);
    let b = instance("Harbor Authority", move |c| {
        c.sync_tick = tick;
        c.realtime = true;
    })
    .await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_on_a, on_b) = peered(&a, &b, "datasets,features", &["--mark", "PARTNER"]);
    import(&a, "roads", "Before", "csv", "id\n1\n".into()).await;

    // A new link is due at once: the scheduler copies what is there.
    wait_for("a scheduled first run", || async {
        items(&b, "inbox").await.contains_key("Before")
    })
    .await;

    // An item-level change pokes the receiver, which pulls at once: a new item, new metadata.
    let announced = import(&a, "roads", "Announced", "csv", "id\n1\n".into()).await;
    wait_for("a realtime run", || async {
        items(&b, "inbox").await.contains_key("Announced")
    })
    .await;
    ferry_json(
        &a,
        &["item", "update", id(&announced), "--title", "Renamed"],
    );
    wait_for("a realtime run after a metadata change", || async {
        items(&b, "inbox").await.contains_key("Renamed")
    })
    .await;
    let triggers: Vec<String> = ferry_json(&b, &["sync", "history", &on_b])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap().to_string())
        .collect();
    assert!(triggers.contains(&"realtime".to_string()), "{triggers:?}");

    // A schedule whose first run is a second away: the scheduler starts it then.
    let start = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(1))
        .unwrap()
        .to_string();
    ferry_json(
        &b,
        &[
            "sync", "schedule", &on_b, "--every", "6h", "--start", &start,
        ],
    );
    wait_for("a scheduled run", || async {
        ferry_json(&b, &["sync", "history", &on_b])[0]["trigger"] == "scheduled"
    })
    .await;

    // Schedules: 1h to 24h; paused links have no next run.
    let out = b.ferry(&["sync", "schedule", &on_b, "--every", "30m"]);
    assert!(stderr(&out).contains("invalid_request"), "{}", stderr(&out));
    let set = ferry_json(&b, &["sync", "schedule", &on_b, "--every", "2h"]);
    assert_eq!(set["every_secs"], 7200);
    let paused = ferry_json(&b, &["sync", "pause", &on_b]);
    assert_eq!(
        (paused["paused"].as_bool(), paused["next_run"].as_str()),
        (Some(true), None)
    );
    let listed = ferry_json(&b, &["sync", "schedules"]);
    assert_eq!(listed[0]["paused"], true);
    let resumed = ferry_json(&b, &["sync", "resume", &on_b]);
    assert!(resumed["next_run"].is_string(), "{resumed}");

    // Two runs asked for at once: the second waits for the first and then runs, so when it
    // answers, what it reports is done; the two never run at the same time.
    proxy.delay_pulls(std::time::Duration::from_millis(800));
    let call = || {
        b.call(
            Method::POST,
            "/api/v1/sync/now",
            Some(json!({"link": on_b})),
        )
    };
    let (first, second) = tokio::join!(call(), async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        call().await
    });
    let statuses = [first.1["status"].clone(), second.1["status"].clone()];
    assert_eq!(
        statuses,
        [json!("completed"), json!("completed")],
        "{first:?} {second:?}"
    );
    let at = |run: &Value, field: &str| {
        run[field]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert!(
        at(&second.1, "started_at") >= at(&first.1, "ended_at"),
        "one after the other: {first:?} {second:?}"
    );
    let run_in_history = |id: Value| {
        let b = &b;
        let on_b = &on_b;
        async move {
            let history = ferry_json(b, &["sync", "history", on_b]);
            history
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .cloned()
        }
    };

    // A scheduled run that falls due during a long run is skipped too.
    // (Schedules count whole seconds: the run falls due on the second after next.)
    proxy.delay_pulls(std::time::Duration::from_millis(3000));
    let due = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 2)
        .unwrap()
        .to_string();
    ferry_json(
        &b,
        &["sync", "schedule", &on_b, "--every", "1h", "--start", &due],
    );
    let long = call().await;
    assert_eq!(long.1["status"], "completed", "{long:?}");
    let history = ferry_json(&b, &["sync", "history", &on_b]);
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "scheduled" && r["status"] == "skipped"),
        "{history}"
    );

    // A run submitted without waiting answers at once, then runs in the background. The
    // schedule is paused first, and any run still going is let finish: a run of the link
    // going at the same moment would make the submitted one `skipped`.
    ferry_json(&b, &["sync", "pause", &on_b]);
    wait_for("no run of the link going", || async {
        let status = ferry_json(&b, &["sync", "status"]);
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["running"] == json!(false))
    })
    .await;
    proxy.delay_pulls(std::time::Duration::from_millis(800));
    let (status, submitted) = b
        .call(
            Method::POST,
            "/api/v1/sync/now",
            Some(json!({"link": on_b, "wait": false})),
        )
        .await;
    assert_eq!(
        (status, &submitted["status"]),
        (StatusCode::ACCEPTED, &json!("submitted")),
        "{submitted}"
    );
    let id = submitted["id"].clone();
    wait_for("the submitted run to be running", || async {
        run_in_history(id.clone()).await.unwrap()["status"] == "running"
    })
    .await;
    let status = ferry_json(&b, &["sync", "status"]);
    let link = status
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["link"] == format!("peer:{on_b}"))
        .cloned()
        .unwrap();
    assert_eq!(
        (&link["running"], &link["last_run"]["id"]),
        (&json!(true), &id),
        "{link}"
    );
    wait_for("the submitted run to complete", || async {
        run_in_history(id.clone()).await.unwrap()["status"] == "completed"
    })
    .await;
}

/// `ferry demo`, left running, prints a console sign-in link for each instance, and each link
/// signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_a_console_sign_in_link_for_each_instance() {
    use std::io::BufRead;
    ferry_server::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = demo.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((_, url)) = line.split_once("console: ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let links: Vec<String> = (0..3)
        .map(|_| {
            rx.recv_timeout(std::time::Duration::from_secs(120))
                .expect("the demo prints a console link per instance")
        })
        .collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for link in &links {
        assert!(link.contains("/sign-in/link/l_"), "{link}");
        assert_eq!(http.get(link).send().await.unwrap().status(), 200, "{link}");
        let answer = http.post(link).send().await.unwrap();
        assert_eq!(answer.status(), 303, "{link}");
        let cookie = answer.headers()["set-cookie"].to_str().unwrap();
        assert!(
            cookie.starts_with("ferry_session_") && cookie.contains("=s_"),
            "{cookie}"
        );
    }
    let _ = demo.kill();
    let _ = demo.wait();
}

/// `ferry demo` joins three instances, loads data, syncs, and shows what arrived where.
#[test]
fn the_demo_shows_what_arrived_where() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--json", "demo", "--exit", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let at = |instance: &str| -> Vec<(String, i64)> {
        let mut items: Vec<(String, i64)> = rows
            .iter()
            .filter(|r| r["instance"] == instance)
            .map(|r| {
                (
                    r["item"].as_str().unwrap().to_string(),
                    r["rows"].as_i64().unwrap(),
                )
            })
            .collect();
        items.sort();
        items
    };
    let names = |instance: &str| at(instance).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(
        names("Port Authority"),
        vec!["Berths", "Road works", "Survey notes"]
    );
    assert_eq!(
        names("City GIS"),
        vec!["Berths", "Road works", "Survey notes", "Traffic counts"]
    );
    assert_eq!(
        names("Harbor Pilots"),
        vec!["Berths", "Road works", "Survey notes", "Traffic counts"],
        "relayed through the host, and over the peer connection"
    );
    assert!(at("Harbor Pilots").contains(&("Berths".to_string(), 250)));
    let counts = rows
        .iter()
        .find(|r| r["instance"] == "Harbor Pilots" && r["item"] == "Traffic counts")
        .unwrap();
    assert_eq!(counts["markings"], json!(["PARTNER"]));
}

/// Pseudo-random bytes that do not compress or repeat.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// A sender (the proxy plays it, with its key) that answers a chunk with other bytes of the
/// same length: the file fails in the run with `sync_refused`, and the receiver keeps neither
/// the item nor those bytes; the next honest run copies the file as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_whose_bytes_do_not_match_its_hash_is_refused() {
    let (proxy, a, b, link) = peered_behind_proxy("files").await;
    let notes = vec![b'a'; 3000];
    import_file(&a, "space=roads&title=Notes", notes.clone()).await;
    let path = "/federation/v1/sync/chunk";
    proxy.rewrite_answers(path, |body| body.replace('a', "b"));
    let run = sync_now(&b, &link);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "sync_refused", "{run}");
    let message = run["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("did not match its hash"), "{run}");
    assert!(!items(&b, "inbox").await.contains_key("Notes"));
    assert_eq!(
        crate::files::chunk_files(&b),
        0,
        "the forged bytes are not kept"
    );
    proxy.rewrite_answers(path, |body| body.to_string());
    let run = sync_now(&b, &link);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Notes"];
    let bytes = b.export(id(copy), "", &[]).await.bytes().await.unwrap();
    assert!(bytes.as_ref() == notes.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_move_only_missing_chunks_and_resume_after_a_cut() {
    let (proxy, a, b, link) = peered_behind_proxy("files").await;
    const MIB: usize = 1 << 20;
    let survey = noise(4 * MIB, 1);
    import_file(&a, "space=roads&title=Survey", survey.clone()).await;

    // The transfer is cut after two chunks: the item fails, the chunks that came stay.
    proxy.allow_chunks(2);
    let run = sync_now(&b, &link);
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert!(!items(&b, "inbox").await.contains_key("Survey"));
    let before = proxy.chunk_requests();
    proxy.allow_chunks(usize::MAX);
    let run = sync_now(&b, &link);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        proxy.chunk_requests() - before,
        2,
        "only the two missing chunks travel"
    );
    let copy = &items(&b, "inbox").await["Survey"];
    let bytes = b.export(id(copy), "", &[]).await.bytes().await.unwrap();
    assert!(
        bytes.as_ref() == survey.as_slice(),
        "the copy has the same bytes"
    );

    // A second file sharing three chunks with the first: one chunk travels.
    let mut revised = survey[..3 * MIB].to_vec();
    revised.extend(noise(MIB, 2));
    let before = proxy.chunk_requests();
    import_file(&a, "space=roads&title=Survey v2", revised.clone()).await;
    let run = sync_now(&b, &link);
    assert_eq!(proxy.chunk_requests() - before, 1, "{run}");
    assert!(
        run["bytes_received"].as_i64().unwrap() < (MIB + MIB / 4) as i64,
        "{run}"
    );
    let copy = &items(&b, "inbox").await["Survey v2"];
    let bytes = b.export(id(copy), "", &[]).await.bytes().await.unwrap();
    assert!(bytes.as_ref() == revised.as_slice());

    // The chunk endpoint gives only chunks of files the link sends now: not those of a file
    // marked above the ceiling, even to a caller that knows the hash.
    let secret = noise(1000, 3);
    import_file(
        &a,
        "space=roads&title=Secret&marking=OFFICIAL",
        secret.clone(),
    )
    .await;
    let request_id = ferry_json(&b, &["peer", "show", &link])["connection"]["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = "/federation/v1/sync/chunk";
    let link = json!({"kind": "peer", "request_id": request_id});
    let hidden = json!({"link": link, "hash": blake3::hash(&secret).to_hex().to_string()});
    let (status, answer) =
        crate::harness::send_forged(&a, path, &signed_by(&b, path, &hidden, 1).await).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("item_not_found")),
        "{answer}"
    );
    let shared = json!({"link": link, "hash": blake3::hash(&survey[..MIB]).to_hex().to_string()});
    let (status, _) =
        crate::harness::send_forged(&a, path, &signed_by(&b, path, &shared, 2).await).await;
    assert_eq!(status, StatusCode::OK);
}

/// A federation request from `from`, signed with its key, made by hand (as a misbehaving
/// instance could).
pub(crate) async fn signed_by(
    from: &TestInstance,
    path: &str,
    body: &Value,
    nonce: u8,
) -> crate::harness::Forged {
    let from_id = crate::harness::instance_id(from).await;
    let now = jiff::Timestamp::now().as_second();
    crate::harness::forge(
        &crate::harness::key_of(from),
        &from_id,
        path,
        body,
        now,
        [nonce; 16],
    )
}

pub(crate) async fn set_markings(inst: &TestInstance, item: &str, markings: Value) {
    let (status, body) = inst
        .call(
            Method::PATCH,
            &format!("/api/v1/items/{item}"),
            Some(json!({"markings": markings})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn set_sync_as(inst: &TestInstance, item: &str, how: &str) {
    let updated = ferry_json(inst, &["item", "update", item, "--sync-as", how]);
    assert_eq!(updated["sync_as"], how, "{updated}");
}

/// A row read: status and body.
async fn read(inst: &TestInstance, item: &str) -> (StatusCode, Value) {
    inst.call(
        Method::GET,
        &format!("/api/v1/items/{item}/rows?limit=10000"),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_read_rows_from_the_origin_at_read_time() {
    let (proxy, a, b, on_b) = peered_behind_proxy("datasets,features").await;
    let on_a = ferry_json(&a, &["peer", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // More than one export page (10,000 rows).
    let layer = import(&a, "roads", "Berths", "geojson", points_geojson(10_050)).await;
    // Every row line on the wire for the layer is counted: a reference's rows never travel.
    let leaked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counter, layer_id) = (leaked.clone(), id(&layer).to_string());
    proxy.rewrite_sync_lines(move |line| {
        if line.starts_with(ferry_proto::ROW_LINE_PREFIX) && line.contains(&layer_id) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        vec![line.to_string()]
    });
    import(&a, "roads", "Depths", "csv", "id,d\n1,4\n2,7\n".into()).await;
    set_sync_as(&a, id(&layer), "reference").await;
    // A file cannot go by reference: it is refused, not silently copied.
    let chart = import_file(&a, "space=roads&title=Chart", vec![7u8; 100]).await;
    let out = a.ferry(&["item", "update", id(&chart), "--sync-as", "reference"]);
    assert!(stderr(&out).contains("invalid_request"), "{}", stderr(&out));

    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["rows_received"], 2,
        "only the copy's rows travel: {run}"
    );
    assert_eq!(leaked.load(std::sync::atomic::Ordering::SeqCst), 0);
    let got = items(&b, "inbox").await;
    let reference = &got["Berths"];
    assert_eq!(
        (
            reference["reference"].as_bool(),
            reference["row_count"].as_i64()
        ),
        (Some(true), Some(10_050))
    );
    assert!(got["Depths"].get("reference").is_none(), "a copy");
    assert_eq!(rows(&b, id(reference)).await, rows(&a, id(&layer)).await);
    // Filters and pages are the origin's.
    let page = b
        .get(&format!(
            "/api/v1/items/{}/rows?limit=5&where=name:p7",
            id(reference)
        ))
        .await;
    assert_eq!(page["rows"].as_array().unwrap().len(), 1, "{page}");

    // Read at read time: an edit at the origin shows at once, with no sync.
    edit(
        &a,
        id(&layer),
        json!({"updates": [{"key": 1, "values": {"name": "renamed"}}]}),
    )
    .await;
    assert_eq!(rows(&b, id(reference)).await, rows(&a, id(&layer)).await);
    let (status, exported) = b
        .call(
            Method::GET,
            &format!("/api/v1/items/{}/export?format=geojson", id(reference)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        exported["features"].as_array().unwrap().len(),
        10_050,
        "every page"
    );
    assert_eq!(exported["features"][0]["properties"]["name"], "renamed");

    // The read endpoint answers only for items the link shares: not for one in another space,
    // even to the connected instance asking by hand.
    a.create_space("elsewhere").await;
    let private = import(&a, "elsewhere", "Private", "csv", "id\n1\n".into()).await;
    let request_id = ferry_json(&b, &["peer", "show", &on_b])["connection"]["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_id = crate::harness::instance_id(&a).await;
    let path = "/federation/v1/sync/rows";
    let ask = |item: &str| {
        json!({"link": {"kind": "peer", "request_id": request_id}, "origin_instance": a_id,
               "origin_item": item, "query": "limit=5"})
    };
    let (status, answer) =
        crate::harness::send_forged(&a, path, &signed_by(&b, path, &ask(id(&private)), 1).await)
            .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("item_not_found")),
        "{answer}"
    );
    let (status, answer) =
        crate::harness::send_forged(&a, path, &signed_by(&b, path, &ask(id(&layer)), 2).await)
            .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["page"]["rows"].as_array().unwrap().len(), 5);
    assert_eq!(
        answer["markings"],
        json!([]),
        "the item's markings at the origin"
    );

    // The origin checks access at every read: marked above the ceiling, or the link off, and
    // the rows are not given, with a clear error.
    set_markings(&a, id(&layer), json!(["OFFICIAL"])).await;
    let (status, refused) = read(&b, id(reference)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FAILED_DEPENDENCY, Some("reference_unavailable")),
        "{refused}"
    );
    assert!(
        refused["message"].as_str().unwrap().contains("not shared"),
        "{refused}"
    );
    set_markings(&a, id(&layer), json!([])).await;
    assert_eq!(read(&b, id(reference)).await.0, StatusCode::OK);
    ferry_json(&a, &["peer", "disable", &on_a]);
    let (status, refused) = read(&b, id(reference)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FAILED_DEPENDENCY, Some("reference_unavailable")),
        "{refused}"
    );
    ferry_json(&a, &["peer", "enable", &on_a]);

    // Back to a copy: the rows come whole and stay readable with the origin gone.
    set_sync_as(&a, id(&layer), "copy").await;
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Berths"];
    assert_eq!(copy["id"], reference["id"], "the same item, now a copy");
    assert!(copy.get("reference").is_none(), "{copy}");
    let expected = rows(&a, id(&layer)).await;
    let mut a = a;
    a.stop().await;
    assert_eq!(rows(&b, id(copy)).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_workspace_relays_references_and_copies_fail_loudly() {
    let host = instance("Port Authority", |_| {}).await;
    let sender = instance("City GIS", |_| {}).await;
    let reader = instance("Harbor Pilots", |_| {}).await;
    coast(
        &host,
        &[(&sender, "Roads=send"), (&reader, "Roads=send_receive")],
        &["--reference", "--max-item-bytes", "1000"],
    );
    let layer = import(&sender, "mine", "Berths", "geojson", points_geojson(40)).await;
    import(&sender, "mine", "Depths", "csv", "id,d\n1,4\n".into()).await;
    let gauges = import(&sender, "mine", "Gauges", "csv", "id,g\n1,9\n2,8\n".into()).await;
    set_sync_as(&sender, id(&gauges), "reference").await;
    import_file(&sender, "space=mine&title=Chart", vec![1u8; 5000]).await;

    // Layers go by reference, datasets as copies unless their owner says otherwise; the file
    // too large to copy fails with its error (never downgraded to a reference), and the run
    // goes on.
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "item_too_large", "{run}");
    assert_eq!(run["rows_received"], 1, "{run}");
    let at_host = items(&host, "coast").await;
    assert_eq!(
        at_host.keys().collect::<Vec<_>>(),
        vec!["Berths", "Depths", "Gauges"]
    );
    assert_eq!(at_host["Berths"]["reference"], true);
    assert_eq!(at_host["Gauges"]["reference"], true);
    // The reader's references read through the host, which reads from the sender; the
    // owner's choice holds on the second hop too.
    sync_now(&reader, "Coast/Roads");
    let at_reader = items(&reader, "mine").await;
    assert_eq!(at_reader["Berths"]["reference"], true);
    assert_eq!(at_reader["Gauges"]["reference"], true);
    assert_eq!(
        rows(&reader, id(&at_reader["Gauges"])).await,
        rows(&sender, id(&gauges)).await
    );
    edit(&sender, id(&layer), json!({"deletes": [1, 2]})).await;
    let berths = rows(&reader, id(&at_reader["Berths"])).await;
    assert_eq!(berths.len(), 38);
    assert_eq!(berths, rows(&sender, id(&layer)).await);

    // The reader sends too, so the host also has the layer from it. When the origin refuses,
    // that is final: the read does not wander back and forth between host and reader.
    sync_now(&host, "Coast/Roads");
    set_markings(&sender, id(&layer), json!(["OFFICIAL"])).await;
    let started = std::time::Instant::now();
    let (status, refused) = read(&reader, id(&at_reader["Berths"])).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FAILED_DEPENDENCY, Some("reference_unavailable")),
        "{refused}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Read through the host, the cause is said once, not wrapped in the host's own words.
    let message = refused["message"].as_str().unwrap();
    assert_eq!(message.matches("is a reference").count(), 1, "{message}");
    set_markings(&sender, id(&layer), json!([])).await;

    // A relaying host judges the read with the markings the item has at its origin now: the
    // sender lets PARTNER items go to the host, the host lets no marked item go on, and the
    // host's copy of the markings is older than the change.
    let collab_id = ferry_json(&sender, &["collab", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = sender
        .call(
            Method::PUT,
            &format!("/api/v1/collabs/{collab_id}/security"),
            Some(json!({"security": {"ceiling": ["PARTNER"], "mark": []}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        read(&reader, id(&at_reader["Berths"])).await.0,
        StatusCode::OK
    );
    set_markings(&sender, id(&layer), json!(["PARTNER"])).await;
    let (status, refused) = read(&reader, id(&at_reader["Berths"])).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FAILED_DEPENDENCY, Some("reference_unavailable")),
        "{refused}"
    );
    set_markings(&sender, id(&layer), json!([])).await;

    // A guest's own choice wins over the workspace's: a copy, rows and all.
    set_sync_as(&sender, id(&layer), "copy").await;
    sync_now(&host, "Coast/Roads");
    let copy = &items(&host, "coast").await["Berths"];
    assert!(copy.get("reference").is_none(), "{copy}");
    assert_eq!(copy["row_count"], 38);

    // A reference whose link ends can never be read again: it goes, even under the `keep`
    // policy that keeps copies.
    let run = sync_now(&reader, "Coast/Roads");
    assert_eq!(run["status"], "completed", "{run}");
    ferry_json(&reader, &["collab", "unlink", "Roads"]);
    let left = items(&reader, "mine").await;
    assert_eq!(left.keys().collect::<Vec<_>>(), vec!["Berths", "Depths"]);
    assert!(left["Berths"].get("reference").is_none(), "a copy stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_way_workspace_takes_copies_only() {
    let host = instance("Port Authority", |_| {}).await;
    let sender = instance("City GIS", |_| {}).await;
    coast(&host, &[(&sender, "Roads=send_receive")], &["--two-way"]);
    let layer = import(&sender, "mine", "Berths", "geojson", points_geojson(10)).await;
    set_sync_as(&sender, id(&layer), "reference").await;
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed_with_failures", "{run}");
    assert_eq!(run["errors"][0]["code"], "delivery_refused", "{run}");
    assert!(items(&host, "coast").await.is_empty());
    // Shared as a copy, it comes whole at the next run.
    set_sync_as(&sender, id(&layer), "copy").await;
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed", "{run}");
    let copy = items(&host, "coast").await["Berths"].clone();
    assert_eq!(
        rows(&host, id(&copy)).await,
        rows(&sender, id(&layer)).await
    );
    assert!(copy.get("stale").is_none(), "{copy}");

    // Switched to a reference once copied: the host keeps the rows it has, and says, on the
    // item, that they no longer follow the origin, and why.
    let before = rows(&host, id(&copy)).await;
    set_sync_as(&sender, id(&layer), "reference").await;
    edit(&sender, id(&layer), json!({"deletes": [1]})).await;
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["errors"][0]["code"], "delivery_refused", "{run}");
    let kept = items(&host, "coast").await["Berths"].clone();
    let why = kept["stale"].as_str().unwrap_or_default();
    assert!(
        why.contains("takes copies only") && why.ends_with("(delivery_refused)"),
        "{kept}"
    );
    assert_eq!(
        host.get(&format!("/api/v1/items/{}", id(&copy))).await["stale"],
        why
    );
    assert_eq!(
        rows(&host, id(&copy)).await,
        before,
        "the last accepted version"
    );
    let listed = stdout(&host.ferry(&["item", "list", "--space", "coast"]));
    assert!(listed.contains("Berths (STALE)"), "{listed}");
    let shown = stdout(&host.ferry(&["item", "show", id(&copy)]));
    assert!(
        shown.contains("STALE") && shown.contains("takes copies only"),
        "{shown}"
    );
    // A copy again: the host follows the origin again, and the mark goes.
    set_sync_as(&sender, id(&layer), "copy").await;
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed", "{run}");
    let copy = items(&host, "coast").await["Berths"].clone();
    assert!(copy.get("stale").is_none(), "{copy}");
    assert_eq!(
        rows(&host, id(&copy)).await,
        rows(&sender, id(&layer)).await
    );
}

/// A pretty-printed GeoJSON file of `n` points: properties and geometries stored as imported,
/// across several lines, and a string holding a tab.
pub(crate) fn pretty_points(n: usize) -> String {
    let mut layer: Value = serde_json::from_str(&points_geojson(n)).unwrap();
    for feature in layer["features"].as_array_mut().unwrap() {
        feature["properties"]["note"] = json!("tab\there");
    }
    serde_json::to_string_pretty(&layer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_printed_imports_sync_inline_and_whole() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (on_a, on_b) = peered(&a, &b, "features", &[]);
    // Small enough to stream inline; large enough to be copied whole by `/sync/item`.
    let small = import(&a, "roads", "Small", "geojson", pretty_points(40)).await;
    let large = import(&a, "roads", "Large", "geojson", pretty_points(10_050)).await;
    let run = sync_now(&b, &on_b);
    assert_eq!(
        (run["status"].as_str(), run["rows_received"].as_i64()),
        (Some("completed"), Some(10_090)),
        "{run}"
    );
    let got = items(&b, "inbox").await;
    for (title, sent) in [("Small", &small), ("Large", &large)] {
        let copy = rows(&b, id(&got[title])).await;
        assert_eq!(copy, rows(&a, id(sent)).await, "{title}");
        assert_eq!(copy[0][1]["note"], "tab\there", "{title}");
    }
    // The sender's side of that run: the pull and the whole copy, each item counted once.
    let sent = &ferry_json(&a, &["sync", "history", &on_a])[0];
    assert_eq!(
        (&sent["items_sent"], &sent["rows_sent"]),
        (&json!(2), &json!(10_090)),
        "{sent}"
    );
}

/// A sender that leaves out every item description: the run on `link` fails, refusing rows
/// that would go unchecked against their item's schema.
fn refused_without_descriptions(proxy: &Proxy, b: &TestInstance, link: &str) {
    proxy.rewrite_sync_lines(|line| match line.starts_with(r#"{"t":"item""#) {
        true => vec![],
        false => vec![line.to_string()],
    });
    let out = b.ferry(&["sync", "now", link]);
    assert!(
        stderr(&out).contains("before describing the item"),
        "{}",
        stderr(&out)
    );
}

/// Rewrites row 7 of a compact-row stream.
fn tamper_row_7(edit: fn(&mut Vec<String>)) -> impl Fn(&str) -> Vec<String> + Send + Sync {
    move |line: &str| {
        let mut parts: Vec<String> = line.split('\t').map(str::to_string).collect();
        if parts.len() == 3 && parts[0] == "7" {
            edit(&mut parts);
        }
        vec![parts.join("\t")]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_rows_a_sender_tampers_with_are_refused() {
    let (proxy, a, b, on_b) = peered_behind_proxy("features").await;
    // Large enough to be copied whole, in compact rows.
    let layer = import(&a, "roads", "Large", "geojson", points_geojson(10_050)).await;
    let copy_rows = async || {
        let copy = &items(&b, "inbox").await["Large"];
        rows(&b, id(copy)).await
    };
    // Parts that are not what they must be: the row is refused, and the item with it.
    let bad_rows: [fn(&mut Vec<String>); 4] = [
        |p| p[1].push_str(r#" {"smuggled":true}"#),
        |p| p[1] = "[1]".into(),
        |p| p[2] = r#"{"type":"Point","coordinates":[500,1]}"#.into(),
        |p| p[0] = "1.5".into(),
    ];
    for edit in bad_rows {
        proxy.rewrite_sync_lines(tamper_row_7(edit));
        let run = sync_now(&b, &on_b);
        assert_eq!(run["status"], "completed_with_failures", "{run}");
        assert_eq!(run["errors"][0]["code"], "schema_mismatch", "{run}");
        assert!(
            copy_rows().await.is_empty(),
            "nothing of a tampered copy is kept"
        );
    }
    // A stream that cannot be read, or rows before their item: the run fails.
    proxy.rewrite_sync_lines(tamper_row_7(|p| p.push("extra".into())));
    let out = b.ferry(&["sync", "now", &on_b]);
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    refused_without_descriptions(&proxy, &b, &on_b);
    assert!(copy_rows().await.is_empty());

    // The sender behaves again: the next run copies the item.
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Large"];
    assert_eq!(rows(&b, id(copy)).await, rows(&a, id(&layer)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_must_follow_their_item_description() {
    let (proxy, a, b, on_b) = peered_behind_proxy("datasets").await;
    let csv = "id,name\n1,North\n2,South\n".to_string();
    let dataset = import(&a, "roads", "Depths", "csv", csv).await;
    // Nothing of a refused stream is applied.
    refused_without_descriptions(&proxy, &b, &on_b);
    assert!(items(&b, "inbox").await.is_empty());
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Depths"];
    assert_eq!(rows(&b, id(copy)).await, rows(&a, id(&dataset)).await);
}

/// The value of one metric line (`name{labels} value`) in a Prometheus text page.
fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// `"properties": null` stays null, apart from `{}`: in the rows API, in both exports, after a
/// sync inline and whole, and after an edit of the feature's geometry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_properties_stay_null_through_sync_and_export() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor Authority", |_| {}).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let (_, on_b) = peered(&a, &b, "features", &[]);
    let with_nulls = |n: usize| {
        let mut layer: Value = serde_json::from_str(&points_geojson(n)).unwrap();
        let features = layer["features"].as_array_mut().unwrap();
        features[0]["properties"] = Value::Null;
        features[1]["properties"] = json!({});
        layer.to_string()
    };
    let small = import(&a, "roads", "Small", "geojson", with_nulls(5)).await;
    let large = import(&a, "roads", "Large", "geojson", with_nulls(10_050)).await;
    edit(
        &a,
        id(&small),
        json!({"updates": [{"key": 1, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}),
    )
    .await;
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    let got = items(&b, "inbox").await;
    for (title, sent) in [("Small", &small), ("Large", &large)] {
        let copy = id(&got[title]);
        let rows_b = rows(&b, copy).await;
        assert_eq!(rows_b, rows(&a, id(sent)).await, "{title}");
        assert_eq!(
            (&rows_b[0][1], &rows_b[1][1]),
            (&Value::Null, &json!({})),
            "{title}"
        );
        for format in ["geojson", "ndjson"] {
            let text = b.export_text(copy, &format!("?format={format}")).await;
            assert_eq!(
                (
                    text.matches(r#""properties":null"#).count(),
                    text.matches(r#""properties":{}"#).count()
                ),
                (1, 1),
                "{title} {format}"
            );
            assert_eq!(
                text,
                a.export_text(id(sent), &format!("?format={format}")).await
            );
        }
    }
}

/// With realtime on, a link that starts or widens carries what is already there at once, and
/// what reaches a host goes on to its other guests: nobody runs `sync now` here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_that_start_or_widen_carry_data_at_once() {
    let live = |c: &mut Config| c.realtime = true;
    let a = instance("City GIS", live).await;
    let b = instance("Harbor Authority", live).await;
    a.create_space("roads").await;
    b.create_space("inbox").await;
    // Activation: what A had before goes.
    import(&a, "roads", "Before", "csv", "id\n1\n".into()).await;
    let (on_a, on_b) = peered(&a, &b, "datasets", &[]);
    wait_for("activation", || async {
        items(&b, "inbox").await.contains_key("Before")
    })
    .await;
    // Enabled again: what changed while disabled goes.
    ferry_json(&b, &["peer", "disable", &on_b]);
    import(&a, "roads", "While off", "csv", "id\n1\n".into()).await;
    ferry_json(&b, &["peer", "enable", &on_b]);
    wait_for("enable", || async {
        items(&b, "inbox").await.contains_key("While off")
    })
    .await;
    let _ = on_a;

    // A collaboration: a guest that links gets what the workspace holds; a widened mode opens
    // what the host holds; what one guest sends reaches the other through the host.
    let host = instance("Port Authority", live).await;
    let sender = instance("Pilots", live).await;
    let reader = instance("Coast Guard", live).await;
    ferry_json(&host, &["space", "create", "coast"]);
    ferry_json(
        &host,
        &[
            "collab",
            "create",
            "Coast",
            "--workspace",
            "Roads",
            "--space",
            "coast",
        ],
    );
    import(&host, "coast", "From the port", "csv", "id\n1\n".into()).await;
    join_coast(&host, &reader, &reader.url, "Roads=receive");
    // Modes are the guest's, and `collab show` says what each means.
    let shown = stdout(&reader.ferry(&["collab", "show", "Coast"]));
    assert!(
        shown.contains("receive (the guest receives from the host)"),
        "{shown}"
    );
    wait_for("collab link", || async {
        items(&reader, "mine").await.contains_key("From the port")
    })
    .await;
    join_coast(&host, &sender, &sender.url, "Roads=send");
    assert!(!items(&sender, "mine").await.contains_key("From the port"));
    ferry_json(
        &host,
        &[
            "collab",
            "access",
            "Coast",
            "Pilots",
            "--access",
            "Roads=send_receive",
        ],
    );
    wait_for("a widened mode", || async {
        items(&sender, "mine").await.contains_key("From the port")
    })
    .await;
    import(&sender, "mine", "From the pilots", "csv", "id\n1\n".into()).await;
    wait_for("relay", || async {
        items(&reader, "mine").await.contains_key("From the pilots")
    })
    .await;
    // A workspace by its name alone, when only one collaboration has it; else which to name.
    assert_eq!(sync_now(&reader, "Roads")["status"], "completed");
    ferry_json(&host, &["space", "create", "bay"]);
    ferry_json(
        &host,
        &[
            "collab",
            "create",
            "Bay",
            "--workspace",
            "Roads",
            "--space",
            "bay",
        ],
    );
    let said = stderr(&host.ferry(&["sync", "now", "Roads"]));
    assert!(
        said.contains("link_not_found")
            && said.contains("Coast/Roads")
            && said.contains("Bay/Roads"),
        "{said}"
    );
    // Each of those runs says why it ran.
    let history = ferry_json(&b, &["sync", "history", &on_b]);
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["trigger"] != "on_demand"),
        "{history}"
    );
    assert!(history.to_string().contains("link_changed"), "{history}");
    // One time format everywhere: RFC 3339, UTC, milliseconds.
    let one_format = |t: &Value| {
        let t = t.as_str().unwrap_or_default();
        t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.'
    };
    let run = &history[0];
    assert!(
        one_format(&run["started_at"]) && one_format(&run["ended_at"]),
        "{run}"
    );
    let item = &items(&b, "inbox").await["Before"];
    assert!(
        one_format(&item["created_at"]) && one_format(&item["updated_at"]),
        "{item}"
    );
    let peer = ferry_json(&b, &["peer", "show", &on_b]);
    assert!(one_format(&peer["connection"]["created_at"]), "{peer}");
}

/// Reference flags of a space's items, by title.
async fn by_reference(
    inst: &TestInstance,
    space: &str,
) -> std::collections::BTreeMap<String, bool> {
    items(inst, space)
        .await
        .into_iter()
        .map(|(title, item)| (title, item["reference"] == true))
        .collect()
}

/// A guest's three layers in `space`, named `{prefix} link|copy|reference` by their sync_as.
async fn three_layers(guest: &TestInstance, space: &str, prefix: &str) {
    for how in ["link", "copy", "reference"] {
        let title = format!("{prefix} {how}");
        let layer = import(guest, space, &title, "geojson", points_geojson(3)).await;
        if how != "link" {
            set_sync_as(guest, id(&layer), how).await;
        }
    }
}

fn expect(pairs: &[(&str, bool)]) -> std::collections::BTreeMap<String, bool> {
    pairs.iter().map(|(t, r)| (t.to_string(), *r)).collect()
}

/// The host adds workspace `name` to Coast, over a new space of the same name in lower case,
/// with City GIS sending and receiving in it and `more` flags.
fn add_workspace(host: &TestInstance, name: &str, more: &[&str]) {
    let space = name.to_lowercase();
    ferry_json(host, &["space", "create", &space]);
    let mut args = vec![
        "collab",
        "workspace",
        "add",
        "Coast",
        name,
        "--space",
        &space,
    ];
    args.extend(["--access", "City GIS=send_receive"]);
    args.extend_from_slice(more);
    ferry_json(host, &args);
}

/// Guests choose how their own layers travel: in a copies workspace (Roads) and a references
/// workspace (Charts), City links with share modes of its own and Harbor follows the host's.
/// The precedence rule (the item's sync_as, then the guest's link, then the workspace) holds in
/// each combination at the host; a relaying host passes each layer on as it came; switching a
/// share mode converts what was sent before on every receiver; a two-way workspace refuses
/// references; the host learns nothing of the guests' choices but what arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_choose_how_their_layers_travel_and_a_switch_converts_them() {
    let host = instance("Port Authority", |_| {}).await;
    let city = instance("City GIS", |_| {}).await;
    let harbor = instance("Harbor", |_| {}).await;
    coast(&host, &[], &[]);
    for guest in [&city, &harbor] {
        let file = guest.data_dir().join("invitation.txt");
        let file = file.to_str().unwrap();
        ferry_json(
            &host,
            &[
                "collab",
                "invite",
                "Coast",
                "--guest-url",
                &guest.url,
                "--access",
                "Roads=send_receive",
                "--file",
                file,
            ],
        );
        ferry_json(guest, &["collab", "accept", file]);
    }
    add_workspace(
        &host,
        "Charts",
        &["--reference", "--access", "Harbor=send_receive"],
    );
    for guest in [&city, &harbor] {
        ferry_json(guest, &["space", "create", "mine"]);
        ferry_json(guest, &["space", "create", "my-charts"]);
    }
    let link = |guest: &TestInstance, workspace: &str, space: &str, share: &str| {
        ferry_json(
            guest,
            &[
                "collab", "link", workspace, "--space", space, "--share", share,
            ],
        )
    };
    link(&city, "Roads", "mine", "references");
    link(&city, "Charts", "my-charts", "copies");
    link(&harbor, "Roads", "mine", "workspace");
    link(&harbor, "Charts", "my-charts", "workspace");
    three_layers(&city, "mine", "City road").await;
    three_layers(&city, "my-charts", "City chart").await;
    three_layers(&harbor, "mine", "Harbor road").await;
    three_layers(&harbor, "my-charts", "Harbor chart").await;
    for workspace in ["Coast/Roads", "Coast/Charts"] {
        assert_eq!(sync_now(&host, workspace)["status"], "completed");
    }

    // The table: the item's own choice first, then the guest's link, then the workspace.
    let roads = expect(&[
        ("City road link", true), // City: references
        ("City road copy", false),
        ("City road reference", true),
        ("Harbor road link", false), // Harbor: the workspace's copies
        ("Harbor road copy", false),
        ("Harbor road reference", true),
    ]);
    let charts = expect(&[
        ("City chart link", false), // City: copies
        ("City chart copy", false),
        ("City chart reference", true),
        ("Harbor chart link", true), // Harbor: the workspace's references
        ("Harbor chart copy", false),
        ("Harbor chart reference", true),
    ]);
    assert_eq!(by_reference(&host, "coast").await, roads);
    assert_eq!(by_reference(&host, "charts").await, charts);
    // A relaying host passes each on as it came, whatever the workspace says.
    sync_now(&harbor, "Coast/Roads");
    let at_harbor = by_reference(&harbor, "mine").await;
    for (title, reference) in roads.iter().filter(|(t, _)| t.starts_with("City")) {
        assert_eq!(at_harbor[title], *reference, "{title} at Harbor");
    }
    let read_through = items(&harbor, "mine").await;
    let city_layers = items(&city, "mine").await;
    assert_eq!(
        rows(&harbor, id(&read_through["City road link"])).await,
        rows(&city, id(&city_layers["City road link"])).await
    );

    // Space views name each link with this instance's role, mode and share mode; the host's
    // views say nothing of the guests' choices.
    let shown = ferry_json(&city, &["space", "show", "mine"]);
    let links = &shown["links"];
    assert_eq!(links.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(
        (
            &links[0]["name"],
            &links[0]["role"],
            &links[0]["mode"],
            &links[0]["share"]
        ),
        (
            &json!("Coast / Roads"),
            &json!("guest"),
            &json!("send_receive"),
            &json!("references")
        ),
        "{shown}"
    );
    let harbor_spaces = ferry_json(&harbor, &["space", "list"]);
    let harbor_mine = harbor_spaces
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "my-charts")
        .unwrap();
    assert_eq!(harbor_mine["links"][0]["share"], "workspace (references)");
    let collab_at_host = ferry_json(&host, &["collab", "show", "Coast"]).to_string();
    assert!(!collab_at_host.contains("\"share\""), "{collab_at_host}");
    let spaces_at_host = ferry_json(&host, &["space", "list"]).to_string();
    for text in [&collab_at_host, &spaces_at_host] {
        assert!(
            !text.contains("my-charts") && !text.contains("\"mine\""),
            "{text}"
        );
    }
    let refused = host.ferry(&["collab", "share", "Roads", "--share", "copies"]);
    assert!(
        crate::harness::stderr(&refused).contains("a guest's choice"),
        "{refused:?}"
    );

    // City switches Roads to copies: at the next runs its layer becomes a copy at the host
    // and at Harbor, with rows of its own.
    ferry_json(&city, &["collab", "share", "Roads", "--share", "copies"]);
    sync_now(&host, "Coast/Roads");
    sync_now(&harbor, "Coast/Roads");
    let origin_rows = rows(&city, id(&city_layers["City road link"])).await;
    for (receiver, space) in [(&host, "coast"), (&harbor, "mine")] {
        let flags = by_reference(receiver, space).await;
        assert!(!flags["City road link"], "a copy now");
        assert!(flags["City road reference"], "its item's choice stays");
        let now = items(receiver, space).await;
        assert_eq!(now["City road link"]["row_count"], 3, "rows held now");
        assert_eq!(
            rows(receiver, id(&now["City road link"])).await,
            origin_rows
        );
    }
    // Harbor switches Roads to references: its copies become references, no rows left.
    ferry_json(
        &harbor,
        &["collab", "share", "Roads", "--share", "references"],
    );
    sync_now(&host, "Coast/Roads");
    let flags = by_reference(&host, "coast").await;
    assert!(
        flags["Harbor road link"] && !flags["Harbor road copy"],
        "{flags:?}"
    );
    let now = items(&host, "coast").await;
    // Nothing stale: the host holds none of the rows its copy had.
    let db = rusqlite::Connection::open(host.data_dir().join("ferry.db")).unwrap();
    let held = |title: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM rows r JOIN items i ON i.rid = r.item_rid
             WHERE i.id = ?1 AND r.deleted = 0",
            [id(&now[title])],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(held("Harbor road copy"), 3, "a copy holds its rows");
    assert_eq!(held("Harbor road link"), 0, "a reference holds none");
    let harbor_layers = items(&harbor, "mine").await;
    assert_eq!(
        rows(&host, id(&now["Harbor road link"])).await,
        rows(&harbor, id(&harbor_layers["Harbor road link"])).await,
        "read through"
    );

    // A two-way workspace takes copies only: a guest's references are refused, loudly.
    add_workspace(&host, "Edits", &["--two-way"]);
    ferry_json(&city, &["space", "create", "my-edits"]);
    let refused = city.ferry(&[
        "collab",
        "link",
        "Edits",
        "--space",
        "my-edits",
        "--share",
        "references",
    ]);
    assert!(
        crate::harness::stderr(&refused).contains("two-way"),
        "{refused:?}"
    );
    link(&city, "Edits", "my-edits", "copies");
    let refused = city.ferry(&["collab", "share", "Edits", "--share", "references"]);
    assert!(
        crate::harness::stderr(&refused).contains("delivery_refused"),
        "{refused:?}"
    );
    // A share mode belongs to a link: a workspace with no space linked here has none.
    ferry_json(&city, &["collab", "unlink", "Edits"]);
    let unlinked = city.ferry(&["collab", "share", "Edits", "--share", "copies"]);
    assert!(
        crate::harness::stderr(&unlinked).contains("workspace_not_linked"),
        "{unlinked:?}"
    );
}
