//! Two-way editing between real instances: copies edit, their edits go back to the origin at
//! its next run, concurrent edits are found and kept as conflicts, and every instance ends with
//! the same rows.

use crate::harness::{TestInstance, ferry_json, points_geojson};
use crate::sync::{coast, connect, id, import, instance, items, join_coast, rows, sync_now};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Posts an edit batch; returns status and body.
async fn try_edit(inst: &TestInstance, item: &str, batch: Value) -> (StatusCode, Value) {
    inst.call(
        Method::POST,
        &format!("/api/v1/items/{item}/edits"),
        Some(batch),
    )
    .await
}

/// Posts an edit batch that must be applied.
async fn edit_ok(inst: &TestInstance, item: &str, batch: Value) {
    let (status, body) = try_edit(inst, item, batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The copy of the host's layer on a guest.
async fn copy_on(guest: &TestInstance) -> String {
    id(&items(guest, "mine").await["Berths"]).to_string()
}

fn update(key: i64, values: Value) -> Value {
    json!({"updates": [{"key": key, "values": values}]})
}

/// A host and three guests in a two-way workspace: two that send and receive, one that only
/// receives. Edits to the same and to different rows meet at the host; disjoint ones merge, the
/// same field is one conflict with both versions, and all four instances end with the host's
/// rows. A conflict resolved by the admin reaches every copy like any edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_edit_and_every_instance_converges_with_conflicts_kept() {
    let host = instance("Port Authority", |_| {}).await;
    let city = instance("City GIS", |_| {}).await;
    let harbor = instance("Harbor", |_| {}).await;
    let pilots = instance("Pilots", |_| {}).await;
    coast(&host, &[], &["--two-way"]);
    join_coast(&host, &city, &city.url, "Roads=send_receive");
    join_coast(&host, &harbor, &harbor.url, "Roads=send_receive");
    join_coast(&host, &pilots, &pilots.url, "Roads=receive");
    let layer = import(&host, "coast", "Berths", "geojson", points_geojson(5)).await;
    let layer = id(&layer).to_string();
    for guest in [&city, &harbor, &pilots] {
        assert_eq!(sync_now(guest, "Coast/Roads")["status"], "completed");
    }

    // Read-only until the owner turns two-way editing on.
    let on_city = copy_on(&city).await;
    let (status, body) = try_edit(&city, &on_city, update(1, json!({"name": "x"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("two_way_off")),
        "{body}"
    );
    let updated = ferry_json(&host, &["item", "update", &layer, "--two-way", "on"]);
    assert_eq!(
        updated["two_way"]["conflict_policy"], "origin_wins",
        "{updated}"
    );
    for guest in [&city, &harbor, &pilots] {
        sync_now(guest, "Coast/Roads");
    }
    let on_harbor = copy_on(&harbor).await;
    let on_pilots = copy_on(&pilots).await;
    // The guest that only receives cannot edit, and says why.
    let (status, body) = try_edit(&pilots, &on_pilots, update(1, json!({"name": "p"}))).await;
    assert_eq!(body["code"], "edit_not_allowed", "{status} {body}");
    // A copy cannot make up keys.
    let (_, body) = try_edit(
        &city,
        &on_city,
        json!({"adds": [{"values": {"name": "new"}}]}),
    )
    .await;
    assert_eq!(body["code"], "key_required", "{body}");

    // Between runs: City and Harbor change row 1's name; Harbor also row 2's n; the host
    // changes row 1's n. City inserts row 100.
    edit_ok(&city, &on_city, update(1, json!({"name": "city"}))).await;
    let point = json!({"type": "Point", "coordinates": [4.5, 52.25]});
    let add = json!({"adds": [{"key": 100, "values": {"name": "new", "n": 1, "v": 0.5}, "geometry": point}]});
    edit_ok(&city, &on_city, add).await;
    edit_ok(&harbor, &on_harbor, update(1, json!({"name": "harbor"}))).await;
    edit_ok(&harbor, &on_harbor, update(2, json!({"n": 42}))).await;
    edit_ok(&host, &layer, update(1, json!({"n": 7}))).await;
    // The copies show their own edits at once.
    let row1 = |rows: &[Value]| rows.iter().find(|r| r[0] == 1).cloned().unwrap();
    assert_eq!(row1(&rows(&city, &on_city).await)[1]["name"], "city");

    // The host pulls City first, then Harbor.
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed", "{run}");
    let on_host = rows(&host, &layer).await;
    let first = row1(&on_host);
    assert_eq!(first[1]["n"], 7, "the host's own disjoint change stays");
    assert_eq!(
        first[1]["name"], "city",
        "origin_wins: City's name was there first"
    );
    assert_eq!(
        on_host.iter().find(|r| r[0] == 2).unwrap()[1]["n"],
        42,
        "a disjoint row merges"
    );
    assert!(on_host.iter().any(|r| r[0] == 100), "City's insert arrives");

    // Exactly one conflict, with both versions, the field, and who edited.
    let conflicts = ferry_json(&host, &["conflicts", "list"]);
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let conflict = &conflicts[0];
    assert_eq!(conflict["kind"], "same_field");
    assert_eq!(conflict["fields"], json!(["name"]));
    assert_eq!(conflict["ours"]["name"], "city");
    assert_eq!(conflict["theirs"]["name"], "harbor");
    assert_eq!(
        conflict["their_instance"],
        harbor.get("/api/v1/instance").await["id"]
    );
    assert_eq!(
        (conflict["status"].as_str(), conflict["kept"].as_str()),
        (Some("settled"), Some("ours"))
    );
    let settled = ferry_json(&host, &["conflicts", "list", "--status", "settled"]);
    assert_eq!(settled.as_array().unwrap().len(), 1);
    let open = ferry_json(&host, &["conflicts", "list", "--status", "open"]);
    assert!(
        open.as_array().unwrap().is_empty(),
        "origin_wins settles: {open}"
    );
    let metrics = host.metrics().await;
    assert!(metrics.contains("ferry_conflicts_total 1"), "{metrics}");

    // Every guest takes the host's rows; pending edits settle.
    for guest in [&city, &harbor, &pilots] {
        assert_eq!(sync_now(guest, "Coast/Roads")["status"], "completed");
    }
    for (guest, copy) in [
        (&city, &on_city),
        (&harbor, &on_harbor),
        (&pilots, &on_pilots),
    ] {
        assert_eq!(rows(guest, copy).await, on_host, "{} converged", guest.url);
    }
    // A second host run finds nothing new to judge: no edit is applied twice.
    sync_now(&host, "Coast/Roads");
    assert_eq!(rows(&host, &layer).await, on_host);
    assert_eq!(
        ferry_json(&host, &["conflicts", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The admin keeps Harbor's version instead: an edit that reaches every copy.
    let conflict_id = conflict["id"].as_str().unwrap();
    let resolved = ferry_json(
        &host,
        &["conflicts", "resolve", conflict_id, "--keep", "theirs"],
    );
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    let (status, again) = host
        .call(
            Method::POST,
            &format!("/api/v1/conflicts/{conflict_id}/resolve"),
            Some(json!({"keep": "ours"})),
        )
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict_resolved"))
    );
    let on_host = rows(&host, &layer).await;
    assert_eq!(row1(&on_host)[1]["name"], "harbor");
    for guest in [&city, &harbor, &pilots] {
        sync_now(guest, "Coast/Roads");
    }
    for (guest, copy) in [
        (&city, &on_city),
        (&harbor, &on_harbor),
        (&pilots, &on_pilots),
    ] {
        assert_eq!(
            rows(guest, copy).await,
            on_host,
            "{} has the resolution",
            guest.url
        );
    }
}

/// A peer connection that carries features both ways lets the other side edit; a delete on
/// the copy against an update at the origin keeps the row, as a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_way_peer_connection_edits_and_update_beats_delete() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor", |_| {}).await;
    let (on_a, on_b) = connect(&a, &b, "features", "features").await;
    let layer = import(&a, "roads", "Berths", "geojson", points_geojson(3)).await;
    let layer = id(&layer).to_string();
    ferry_json(
        &a,
        &["item", "update", &layer, "--conflict-policy", "latest_wins"],
    );
    sync_now(&b, &on_b);
    let copy = id(&items(&b, "inbox").await["Berths"]).to_string();

    // B deletes row 3 while A updates it; B also updates row 2.
    edit_ok(&b, &copy, json!({"deletes": [3]})).await;
    edit_ok(&b, &copy, update(2, json!({"name": "from b"}))).await;
    edit_ok(&a, &layer, update(3, json!({"name": "kept"}))).await;
    let run = sync_now(&a, &on_a);
    assert_eq!(run["status"], "completed", "{run}");
    let on_a_rows = rows(&a, &layer).await;
    let name_of = |rows: &[Value], key: i64| {
        rows.iter()
            .find(|r| r[0] == key)
            .map(|r| r[1]["name"].clone())
    };
    assert_eq!(
        name_of(&on_a_rows, 3),
        Some(json!("kept")),
        "the update beats the delete"
    );
    assert_eq!(name_of(&on_a_rows, 2), Some(json!("from b")));
    let conflicts = ferry_json(&a, &["conflicts", "list"]);
    assert_eq!(conflicts[0]["kind"], "delete_update", "{conflicts}");
    sync_now(&b, &on_b);
    assert_eq!(rows(&b, &copy).await, on_a_rows, "B converges, row 3 back");
}

/// A layer large enough to be copied whole carries each row's version in the copy: an edit on
/// the copy of a row the origin changed before the copy is no conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_copy_carries_versions_so_later_edits_are_not_conflicts() {
    let host = instance("Port Authority", |_| {}).await;
    let city = instance("City GIS", |_| {}).await;
    coast(&host, &[], &["--two-way"]);
    join_coast(&host, &city, &city.url, "Roads=send_receive");
    let layer = import(&host, "coast", "Berths", "geojson", points_geojson(12_000)).await;
    let layer = id(&layer).to_string();
    ferry_json(&host, &["item", "update", &layer, "--two-way", "on"]);
    edit_ok(&host, &layer, update(5, json!({"name": "host"}))).await;
    let run = sync_now(&city, "Coast/Roads");
    assert_eq!(run["rows_received"], 12_000, "{run}");
    let on_city = copy_on(&city).await;
    edit_ok(&city, &on_city, update(5, json!({"name": "city"}))).await;
    sync_now(&host, "Coast/Roads");
    let on_host = rows(&host, &layer).await;
    assert_eq!(
        on_host.iter().find(|r| r[0] == 5).unwrap()[1]["name"],
        "city"
    );
    assert!(
        ferry_json(&host, &["conflicts", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    sync_now(&city, "Coast/Roads");
    assert_eq!(rows(&city, &on_city).await, on_host);
}

/// A (behind a proxy that plays it) connected to B, A sending datasets and taking `import` from
/// B; returns the proxy, A, B and the connection's id on B.
async fn behind_proxy(import: &str) -> (crate::harness::Proxy, TestInstance, TestInstance, String) {
    let proxy = crate::harness::Proxy::start().await;
    let url = proxy.url.clone();
    let a = instance("City GIS", move |c| c.public_url = Some(url)).await;
    proxy.point_at(&a.url);
    // The proxy plays A: what it sends, A itself could have sent.
    proxy.sign_as(crate::harness::key_of(&a));
    let b = instance("Harbor", |_| {}).await;
    let (_, on_b) = connect(&a, &b, "datasets", import).await;
    (proxy, a, b, on_b)
}

/// A peer that sends edits it may not send: to an item whose owner has not turned two-way on,
/// in another instance's name, of an item that does not exist, with a version the row never
/// had, with a value of the wrong type, and of an item not sent to it. Each is refused with its
/// own code in the run, and B's rows stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_a_peer_may_not_send_are_refused_and_change_nothing() {
    let (proxy, a, b, on_b) = behind_proxy("datasets").await;
    let depths = import(&b, "inbox", "Depths", "csv", "id,m\n1,0.5\n2,0.7\n".into()).await;
    let depths = id(&depths).to_string();
    import(&a, "roads", "Honest", "csv", "id\n1\n".into()).await;
    let a_id = crate::harness::instance_id(&a).await;
    let before = rows(&b, &depths).await;

    let edit = |editor: &str, item: &str, base: i64, row: Value| {
        json!({"t": "edit", "origin_item": item, "key": 1, "edit": {
            "editor": editor, "seq": 7, "base": base,
            "action": {"do": "put", "set": {"m": row["m"]}, "row": row},
            "at": {"ms": 1, "count": 0, "instance": editor}}})
    };
    let run_with = |lines: Vec<Value>| {
        proxy.rewrite_sync_lines(crate::hostile::inject_after_start(lines, false));
        sync_now(&b, &on_b)
    };
    let good = json!({"id": 1, "m": 9.5});
    // Two-way editing is off for Depths.
    let run = run_with(vec![edit(&a_id, &depths, 0, good.clone())]);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    assert!(
        run["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("two-way editing is off")
    );
    ferry_json(&b, &["item", "update", &depths, "--two-way", "on"]);
    // In another instance's name.
    let run = run_with(vec![edit("someone-else", &depths, 0, good.clone())]);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    // An item that is not there.
    let run = run_with(vec![edit(
        &a_id,
        "0190f0c0-0000-7000-8000-000000000000",
        0,
        good.clone(),
    )]);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    // A version the row never had.
    let run = run_with(vec![edit(&a_id, &depths, 1_000_000, good.clone())]);
    assert_eq!(run["errors"][0]["code"], "version_invalid", "{run}");
    // A value of the wrong type: refused, its row unchanged, and kept as an open conflict of
    // its own (law 9), so nothing an editor sent is lost.
    let run = run_with(vec![edit(&a_id, &depths, 0, json!({"id": 1, "m": "deep"}))]);
    assert_eq!(run["errors"][0]["code"], "schema_mismatch", "{run}");
    let kept = ferry_json(&b, &["conflicts", "list"]);
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    assert_eq!(
        (
            &kept[0]["kind"],
            &kept[0]["status"],
            &kept[0]["theirs"]["m"]
        ),
        (&json!("refused"), &json!("open"), &json!("deep")),
        "{kept}"
    );
    assert!(
        kept[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("schema_mismatch")
    );
    // An item this instance does not send the editor (marked above the link's ceiling).
    ferry_json(&b, &["item", "update", &depths, "--marking", "SECRET"]);
    let run = run_with(vec![edit(&a_id, &depths, 0, good.clone())]);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    assert!(
        run["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not sent"),
        "{run}"
    );
    ferry_json(&b, &["item", "update", &depths, "--clear-markings"]);
    assert_eq!(rows(&b, &depths).await, before, "nothing changed");
    assert_eq!(
        ferry_json(&b, &["conflicts", "list"])
            .as_array()
            .unwrap()
            .len(),
        1,
        "no refusal but the kept one left a trace"
    );

    // The same edit, well formed and later in A's feed, is taken: the refusals were about the
    // edits, not the link.
    let mut later = edit(&a_id, &depths, 0, good);
    later["edit"]["seq"] = json!(8);
    let run = run_with(vec![later]);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(rows(&b, &depths).await[0][1]["m"], 9.5);
}

/// Over a connection that carries datasets one way only, edits from the sender are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_connection_carries_no_edits() {
    let (proxy, a, b, on_b) = behind_proxy("features").await;
    let depths = import(&b, "inbox", "Depths", "csv", "id,m\n1,0.5\n".into()).await;
    let depths = id(&depths).to_string();
    ferry_json(&b, &["item", "update", &depths, "--two-way", "on"]);
    let a_id = crate::harness::instance_id(&a).await;
    let line = json!({"t": "edit", "origin_item": depths, "key": 1, "edit": {
        "editor": a_id, "seq": 3, "base": 0,
        "action": {"do": "delete"}, "at": {"ms": 1, "count": 0, "instance": a_id}}});
    proxy.rewrite_sync_lines(crate::hostile::inject_after_start(vec![line], false));
    let run = sync_now(&b, &on_b);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    assert!(
        run["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("both ways"),
        "{run}"
    );
    assert_eq!(rows(&b, &depths).await.len(), 1, "the row is still there");
}

/// In the console: the owner turns two-way editing on from the item's page, a conflict shows
/// both versions on the Conflicts page, and an admin keeps the copy's version by clicking; the
/// row changes at the origin and reaches the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_seen_and_resolved_in_the_console() {
    use crate::console::Browser;
    let host = instance("Port Authority", |_| {}).await;
    let city = instance("City GIS", |_| {}).await;
    let harbor = instance("Harbor", |_| {}).await;
    coast(&host, &[], &["--two-way"]);
    join_coast(&host, &city, &city.url, "Roads=send_receive");
    join_coast(&host, &harbor, &harbor.url, "Roads=send_receive");
    let layer = import(&host, "coast", "Berths", "geojson", points_geojson(5)).await;
    let layer = id(&layer).to_string();

    let browser = Browser::start().await;
    browser.sign_in(&host.url, &host.admin_token).await;
    browser.goto(&format!("{}/items/{layer}", host.url)).await;
    browser.select("two-way", "latest_wins").await;
    browser.click("#save-two-way").await;
    assert!(browser.text_of("#item-edits").await.contains("two-way"));
    let shown = host.get(&format!("/api/v1/items/{layer}")).await;
    assert_eq!(
        shown["two_way"]["conflict_policy"], "latest_wins",
        "{shown}"
    );

    for guest in [&city, &harbor] {
        sync_now(guest, "Coast/Roads");
    }
    let on_city = copy_on(&city).await;
    let on_harbor = copy_on(&harbor).await;
    edit_ok(&city, &on_city, update(3, json!({"name": "city"}))).await;
    edit_ok(&harbor, &on_harbor, update(3, json!({"name": "harbor"}))).await;
    sync_now(&host, "Coast/Roads");

    browser.click("nav a[href='/conflicts']").await;
    let listed = browser.text_of("#conflicts").await;
    assert!(
        listed.contains("same_field") && listed.contains("name"),
        "{listed}"
    );
    browser.screenshot("conflicts").await;
    browser.click("#conflicts tbody a").await;
    let versions = browser.text_of("#conflict-versions").await;
    assert!(
        versions.contains("\"city\"") && versions.contains("\"harbor\""),
        "{versions}"
    );
    let kept_before = browser.text_of("#conflict-kept").await;
    browser.screenshot_page("conflict").await;
    // Keep the version the policy did not keep.
    let other = if kept_before == "ours" {
        "theirs"
    } else {
        "ours"
    };
    browser.click(&format!("#keep-{other}")).await;
    assert_eq!(browser.text_of("#conflict-status").await, "resolved");
    let conflict = ferry_json(&host, &["conflicts", "list"])[0].clone();
    let expected = conflict[other]["name"].clone();
    let row3 = |rows: Vec<Value>| rows.into_iter().find(|r| r[0] == 3).unwrap()[1]["name"].clone();
    assert_eq!(row3(rows(&host, &layer).await), expected);
    sync_now(&city, "Coast/Roads");
    assert_eq!(
        row3(rows(&city, &on_city).await),
        expected,
        "the resolution reaches the copy"
    );
}

/// Schema changes at the origin of a two-way dataset: an added field reaches the copy at its
/// next run; a removed field fails the copy with `schema_changed` (its rows kept as they were)
/// until its admin accepts, and a copy's edit made against the old schema is refused at the
/// origin and kept there as an open conflict, not lost. A retype the rows do not fit, or one of
/// the primary key, is refused at the origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_reach_copies_and_no_edit_against_an_old_schema_is_lost() {
    let a = instance("City GIS", |_| {}).await;
    let b = instance("Harbor", |_| {}).await;
    let (on_a, on_b) = connect(&a, &b, "datasets", "datasets").await;
    let csv = "id,m,note\n1,0.5,shallow\n2,0.7,deep\n".to_string();
    let depths = import(&a, "roads", "Depths", "csv", csv).await;
    let depths = id(&depths).to_string();
    ferry_json(&a, &["item", "update", &depths, "--two-way", "on"]);
    sync_now(&b, &on_b);
    let copy = id(&items(&b, "inbox").await["Depths"]).to_string();
    let fields = |item: &Value| -> Vec<String> {
        item["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}:{}",
                    f["name"].as_str().unwrap(),
                    f["type"].as_str().unwrap()
                )
            })
            .collect()
    };

    // Refused at the origin: a retype that a row does not fit, and one of the primary key.
    let out = a.ferry(&["item", "update", &depths, "--retype-field", "m:integer"]);
    assert!(!out.status.success());
    assert!(crate::harness::stderr(&out).contains("never converted"));
    let out = a.ferry(&["item", "update", &depths, "--retype-field", "id:string"]);
    assert!(crate::harness::stderr(&out).contains("primary key"));
    // A field that is not there, and a schema change by an editor, change nothing.
    let out = a.ferry(&["item", "update", &depths, "--remove-field", "tide"]);
    assert!(
        crate::harness::stderr(&out).contains("no field 'tide'"),
        "{out:?}"
    );
    let editor = a.create_token("gis-editor", "editor").await;
    let out = crate::harness::ferry_with_token(
        &a.url,
        &editor,
        &["item", "update", &depths, "--add-field", "tide:number"],
    );
    assert!(
        crate::harness::stderr(&out).contains("needs admin"),
        "{out:?}"
    );
    assert_eq!(
        fields(&ferry_json(&a, &["item", "show", &depths])),
        ["id:integer", "m:number", "note:string"]
    );

    // An added field reaches the copy on its own.
    ferry_json(
        &a,
        &["item", "update", &depths, "--add-field", "tide:number"],
    );
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        fields(&ferry_json(&b, &["item", "show", &copy])),
        ["id:integer", "m:number", "note:string", "tide:number"]
    );

    // B edits a note while A removes the field.
    edit_ok(&b, &copy, update(1, json!({"note": "rocky"}))).await;
    ferry_json(&a, &["item", "update", &depths, "--remove-field", "note"]);
    let on_a_rows = rows(&a, &depths).await;
    assert_eq!(on_a_rows[0][1], json!({"id": 1, "m": 0.5}), "{on_a_rows:?}");
    let run = sync_now(&a, &on_a);
    assert_eq!(run["errors"][0]["code"], "schema_mismatch", "{run}");
    assert_eq!(rows(&a, &depths).await, on_a_rows, "nothing applied");
    let kept = ferry_json(&a, &["conflicts", "list"]);
    assert_eq!(
        (
            &kept[0]["kind"],
            &kept[0]["status"],
            &kept[0]["theirs"]["note"]
        ),
        (&json!("refused"), &json!("open"), &json!("rocky")),
        "{kept}"
    );

    // The copy fails, keeping its rows, until its admin accepts; then it is copied whole.
    let before = rows(&b, &copy).await;
    let run = sync_now(&b, &on_b);
    assert_eq!(run["errors"][0]["code"], "schema_changed", "{run}");
    let message = run["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("removes note") && message.contains("accept-schema"),
        "{run}"
    );
    assert_eq!(rows(&b, &copy).await, before, "the copy's rows stay");
    let run = sync_now(&b, &on_b);
    assert_eq!(
        run["errors"][0]["code"], "schema_changed",
        "still, until an admin acts"
    );
    // Only a copy accepts: an own item changes its schema itself.
    let own = import(&b, "inbox", "Own", "csv", "id\n1\n".into()).await;
    let out = b.ferry(&["item", "accept-schema", id(&own)]);
    assert!(crate::harness::stderr(&out).contains("own"), "{out:?}");
    ferry_json(&b, &["item", "accept-schema", &copy]);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        fields(&ferry_json(&b, &["item", "show", &copy])),
        ["id:integer", "m:number", "tide:number"]
    );
    assert_eq!(
        rows(&b, &copy).await,
        on_a_rows,
        "every instance holds the same rows"
    );
    // The refused edit waits at the origin: an admin keeps the origin's row.
    let conflict = kept[0]["id"].as_str().unwrap();
    ferry_json(&a, &["conflicts", "resolve", conflict, "--keep", "ours"]);
    // Later edits flow again.
    edit_ok(&b, &copy, update(2, json!({"tide": 1.25}))).await;
    sync_now(&a, &on_a);
    sync_now(&b, &on_b);
    assert_eq!(rows(&a, &depths).await[1][1]["tide"], 1.25);
    assert_eq!(rows(&b, &copy).await, rows(&a, &depths).await);
}

/// A guest whose mode drops below send and receive: the edit it made before still reaches the
/// host at the host's next run (the host opens the channel for it, for edits only, in grace),
/// and an edit it tries after is refused with `edit_not_allowed`. The grace ends with that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_before_a_mode_drops_still_come_and_later_ones_are_refused() {
    let host = instance("Port Authority", |_| {}).await;
    let city = instance("City GIS", |_| {}).await;
    coast(&host, &[], &["--two-way"]);
    join_coast(&host, &city, &city.url, "Roads=send_receive");
    let layer = import(&host, "coast", "Berths", "geojson", points_geojson(3)).await;
    let layer = id(&layer).to_string();
    ferry_json(&host, &["item", "update", &layer, "--two-way", "on"]);
    sync_now(&city, "Coast/Roads");
    let notes = import(&city, "mine", "City notes", "csv", "id\n1\n".into()).await;
    sync_now(&host, "Coast/Roads");
    let on_city = copy_on(&city).await;
    edit_ok(&city, &on_city, update(1, json!({"name": "before"}))).await;

    ferry_json(
        &host,
        &[
            "collab",
            "access",
            "Coast",
            "City GIS",
            "--access",
            "Roads=receive",
        ],
    );
    // City heard of its new mode at once: a new edit is refused, and says why.
    let (status, body) = try_edit(&city, &on_city, update(2, json!({"name": "after"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("edit_not_allowed")),
        "{body}"
    );
    // City's channel to the host carries edits only now: no item (a whole copy asked of it is
    // refused), and no retraction (City deleting its notes does not reach the host).
    ferry_json(&city, &["item", "delete", id(&notes)]);
    let collab = &ferry_json(&host, &["collab", "show", "Coast"])["collaboration"];
    let path = "/federation/v1/sync/item";
    let ask = json!({
        "link": {"kind": "collab", "collaboration_id": collab["id"],
                 "workspace_id": collab["workspaces"][0]["id"]},
        "origin_instance": crate::harness::instance_id(&city).await,
        "origin_item": id(&notes),
    });
    let forged = crate::sync::signed_by(&host, path, &ask, 9).await;
    let (status, answer) = crate::harness::send_forged(&city, path, &forged).await;
    assert_eq!(answer["code"], "link_inactive", "{status} {answer}");
    // The host's next run brings the edit made before.
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(run["status"], "completed", "{run}");
    assert!(
        items(&host, "coast").await.contains_key("City notes"),
        "nothing retracted"
    );
    let on_host = rows(&host, &layer).await;
    assert_eq!(on_host[0][1]["name"], "before", "{on_host:?}");
    assert_eq!(
        on_host[1][1]["name"], "p2",
        "the refused edit never left City"
    );
    // City receives as before and converges.
    sync_now(&city, "Coast/Roads");
    assert_eq!(rows(&city, &on_city).await, on_host);
    // The grace is over: a later run of the host is as before the drop's.
    let run = sync_now(&host, "Coast/Roads");
    assert_eq!(
        (&run["status"], &run["rows_received"]),
        (&json!("completed"), &json!(0)),
        "{run}"
    );
}

/// The origin's side of a grace, with a hostile editor: over a connection that no longer
/// carries datasets from A to B both ways, B holds a grace for datasets opened at a time T
/// (as a lost right leaves one). In one run, an edit A stamps before T is taken and one it
/// stamps after is refused; that run ends the grace, so an edit stamped before T and sent
/// later is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_in_grace_are_taken_only_when_made_before_the_change() {
    let (proxy, a, b, on_b) = behind_proxy("features").await;
    let csv = "id,m\n1,0.5\n2,0.7\n".to_string();
    let depths = import(&b, "inbox", "Depths", "csv", csv).await;
    let depths = id(&depths).to_string();
    ferry_json(&b, &["item", "update", &depths, "--two-way", "on"]);
    let a_id = crate::harness::instance_id(&a).await;
    let until_ms = jiff::Timestamp::now().as_millisecond() - 10_000;
    let db = rusqlite::Connection::open(b.data_dir().join("ferry.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute(
        "INSERT INTO edit_graces (channel, types, until_ms) VALUES (?1, 'datasets', ?2)",
        rusqlite::params![format!("peer:{on_b}"), until_ms],
    )
    .unwrap();
    let edit = |key: i64, seq: i64, ms: i64, m: f64| {
        json!({"t": "edit", "origin_item": depths, "key": key, "edit": {
            "editor": a_id, "seq": seq, "base": 0,
            "action": {"do": "put", "set": {"m": m}, "row": {"id": key, "m": m}},
            "at": {"ms": ms, "count": 0, "instance": a_id}}})
    };
    let run_with = |lines: Vec<Value>| {
        proxy.rewrite_sync_lines(crate::hostile::inject_after_start(lines, false));
        sync_now(&b, &on_b)
    };
    let run = run_with(vec![
        edit(1, 5, until_ms - 1, 7.5),
        edit(2, 6, until_ms + 1, 9.5),
    ]);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    assert!(
        run["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("after"),
        "{run}"
    );
    let after = rows(&b, &depths).await;
    assert_eq!(
        (&after[0][1]["m"], &after[1][1]["m"]),
        (&json!(7.5), &json!(0.7)),
        "made before: taken; made after: refused"
    );
    let left: i64 = db
        .query_row("SELECT count(*) FROM edit_graces", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the run ended the grace");
    let run = run_with(vec![edit(1, 7, until_ms - 1, 3.5)]);
    assert_eq!(run["errors"][0]["code"], "edit_refused", "{run}");
    assert_eq!(rows(&b, &depths).await, after, "nothing changed");
}
