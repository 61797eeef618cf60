//! Collaborations between real instances over real HTTP: a host and three guests on different
//! modes per workspace, invitations online and as files, later changes, the privacy rule, and
//! every refusal with its own code.

use crate::harness::{
    TestInstance, events, ferry_json, forge, key_of, send_forged, stderr, stdout, wait_for,
};
use ed25519_dalek::SigningKey;
use ferry_proto::ticket::{
    CollabInvitation, CollabResponse, Issuer, OfferedWorkspace, TICKET_VERSION,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;

async fn instance(title: &str) -> TestInstance {
    let title = title.to_string();
    let inst = TestInstance::start_with(move |c| c.title = title).await;
    crate::harness::open_policies(&inst);
    inst
}

fn public_url(inst: &TestInstance) -> String {
    inst.url.clone()
}

fn file(inst: &TestInstance, name: &str) -> PathBuf {
    inst.data_dir().join(name)
}

fn text(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// The one collaboration an instance has (its record, as the API answers).
async fn only_collab(inst: &TestInstance) -> Value {
    let all = inst.get("/api/v1/collabs").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    all[0].clone()
}

async fn collab(inst: &TestInstance, id: &str) -> Value {
    inst.get(&format!("/api/v1/collabs/{id}")).await["collaboration"].clone()
}

/// Workspace name to this instance's mode in it.
fn modes(c: &Value) -> Vec<(String, String)> {
    c["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_string(),
                w["my_mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Participant title to status, in the order the collaboration lists them.
fn participants(c: &Value) -> Vec<(String, String, String)> {
    c["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["title"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn linked(c: &Value, workspace: &str) -> Option<String> {
    c["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == workspace)
        .and_then(|w| w["linked_space"].as_str().map(str::to_string))
}

/// Creates the collaboration "Coast" on the host with workspaces Roads and Berths.
async fn coast(host: &TestInstance) -> String {
    host.create_space("host-roads-7f3a").await;
    host.create_space("host-berths-7f3a").await;
    let created = ferry_json(
        host,
        &[
            "collab",
            "create",
            "Coast",
            "--description",
            "Shared coastal data",
            "--workspace",
            "Roads",
            "--space",
            "host-roads-7f3a",
        ],
    );
    assert_eq!(created["role"], "host");
    assert_eq!(created["state"], "active");
    let id = created["id"].as_str().unwrap().to_string();
    let added = ferry_json(
        host,
        &[
            "collab",
            "workspace",
            "add",
            "Coast",
            "Berths",
            "--space",
            "host-berths-7f3a",
            "--description",
            "Quays and berths",
            "--two-way",
        ],
    );
    assert_eq!(added["collaboration"]["workspaces"][1]["name"], "Berths");
    id
}

/// Invites `guest` with the given `WS=MODE` pairs; returns the invitation file.
fn invite(host: &TestInstance, guest: &TestInstance, access: &[&str], name: &str) -> PathBuf {
    let path = file(host, name);
    let url = public_url(guest);
    let mut args = vec![
        "collab",
        "invite",
        "Coast",
        "--guest-url",
        &url,
        "--file",
        path.to_str().unwrap(),
    ];
    for a in access {
        args.extend(["--access", a]);
    }
    let created = ferry_json(host, &args);
    assert_eq!(created["invitation"]["state"], "open");
    assert!(text(&path).starts_with("ferry1-collab-"));
    path
}

struct Coast {
    host: TestInstance,
    /// Online, Roads=send, Berths=send_receive.
    g1: TestInstance,
    /// Online, Roads=receive.
    g2: TestInstance,
    /// By files, Roads=send_receive, Berths=receive.
    g3: TestInstance,
    id: String,
}

/// The host and three guests, all joined and each with its own links.
async fn joined() -> Coast {
    let host = instance("Port Authority").await;
    let g1 = instance("City GIS").await;
    let g2 = instance("Harbor Pilots").await;
    let g3 = instance("Coast Guard").await;
    let id = coast(&host).await;

    let inv1 = invite(&host, &g1, &["Roads=send", "Berths=send_receive"], "g1.txt");
    let accepted = ferry_json(
        &g1,
        &[
            "collab",
            "accept",
            inv1.to_str().unwrap(),
            "--contact",
            "GIS desk <gis@city.example>",
        ],
    );
    assert_eq!(accepted["collaboration"]["state"], "active");
    assert_eq!(accepted["collaboration"]["role"], "guest");

    let inv2 = invite(&host, &g2, &["Roads=receive"], "g2.txt");
    ferry_json(&g2, &["collab", "accept", inv2.to_str().unwrap()]);

    // The air-gapped exchange: the response travels as a file.
    let inv3 = invite(
        &host,
        &g3,
        &["Roads=send_receive", "Berths=receive"],
        "g3.txt",
    );
    let response = file(&g3, "response.txt");
    let out = ferry_json(
        &g3,
        &[
            "collab",
            "accept",
            inv3.to_str().unwrap(),
            "--contact",
            "Ops room",
            "--response-file",
            response.to_str().unwrap(),
        ],
    );
    assert_eq!(out["collaboration"]["state"], "awaiting_host");
    assert!(text(&response).starts_with("ferry1-guest-"));
    let imported = ferry_json(
        &host,
        &[
            "collab",
            "import-response",
            "Coast",
            response.to_str().unwrap(),
        ],
    );
    assert_eq!(imported["not_notified"], json!([]), "G3 was told online");
    assert_eq!(
        only_collab(&g3).await["state"],
        "active",
        "the host's confirmation reached G3"
    );

    for (guest, space) in [
        (&g1, "g1-secret-roads"),
        (&g2, "g2-secret-roads"),
        (&g3, "g3-secret-roads"),
    ] {
        guest.create_space(space).await;
        let c = ferry_json(guest, &["collab", "link", "Roads", "--space", space]);
        assert_eq!(linked(&c, "Roads").as_deref(), Some(space));
    }
    g1.create_space("g1-secret-berths").await;
    ferry_json(
        &g1,
        &["collab", "link", "Berths", "--space", "g1-secret-berths"],
    );
    Coast {
        host,
        g1,
        g2,
        g3,
        id,
    }
}

/// Every answer an admin can get about collaborations on `inst`.
async fn everything_about_collabs(inst: &TestInstance, id: &str) -> String {
    let mut answers = vec![
        inst.get("/api/v1/collabs").await,
        inst.get(&format!("/api/v1/collabs/{id}")).await,
        inst.get("/api/v1/audit").await,
    ];
    let (status, invitations) = inst
        .call(
            Method::GET,
            &format!("/api/v1/collabs/{id}/invitations"),
            None,
        )
        .await;
    if status == StatusCode::OK {
        answers.push(invitations);
    }
    answers.iter().map(Value::to_string).collect()
}

/// No instance ever shows a space another participant linked: neither the host's nor a guest's.
async fn assert_private(c: &Coast) {
    let spaces = [
        ("host", vec!["host-roads-7f3a", "host-berths-7f3a"]),
        ("g1", vec!["g1-secret-roads", "g1-secret-berths"]),
        ("g2", vec!["g2-secret-roads"]),
        ("g3", vec!["g3-secret-roads"]),
    ];
    for (who, inst) in [
        ("host", &c.host),
        ("g1", &c.g1),
        ("g2", &c.g2),
        ("g3", &c.g3),
    ] {
        let seen = everything_about_collabs(inst, &c.id).await;
        for (owner, names) in &spaces {
            if *owner == who {
                continue;
            }
            for name in names {
                assert!(!seen.contains(name), "{who} shows {owner}'s space {name}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_three_guests_join_online_and_by_file() {
    let c = joined().await;
    let on_host = collab(&c.host, &c.id).await;
    assert_eq!(
        participants(&on_host),
        vec![
            ("Port Authority".into(), "host".into(), "active".into()),
            ("City GIS".into(), "guest".into(), "active".into()),
            ("Harbor Pilots".into(), "guest".into(), "active".into()),
            ("Coast Guard".into(), "guest".into(), "active".into()),
        ]
    );
    // The host sees each guest's identity, contact and modes.
    let g1_id = crate::harness::instance_id(&c.g1).await;
    let g1 = &on_host["participants"][1];
    assert_eq!(g1["instance"]["instance_id"], g1_id.as_str());
    assert_eq!(g1["contact"], "GIS desk <gis@city.example>");
    let roads = &on_host["workspaces"][0];
    let modes_on_host: Vec<(String, String)> = roads["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["title"].as_str().unwrap().into(),
                g["mode"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut expected = vec![
        ("City GIS".to_string(), "send".to_string()),
        ("Harbor Pilots".into(), "receive".into()),
        ("Coast Guard".into(), "send_receive".into()),
    ];
    let mut got = modes_on_host.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    // Each guest sees its own workspaces and modes, the host, and the others by title only.
    let on_g1 = collab(&c.g1, &c.id).await;
    assert_eq!(
        modes(&on_g1),
        vec![
            ("Roads".into(), "send".into()),
            ("Berths".into(), "send_receive".into())
        ]
    );
    assert_eq!(on_g1["workspaces"][1]["description"], "Quays and berths");
    assert_eq!(on_g1["workspaces"][1]["config"]["two_way_editing"], true);
    assert_eq!(participants(&on_g1), participants(&on_host));
    for p in on_g1["participants"].as_array().unwrap() {
        assert!(
            p.get("instance").is_none() && p.get("contact").is_none(),
            "{p}"
        );
    }
    assert_eq!(
        modes(&collab(&c.g2, &c.id).await),
        vec![("Roads".into(), "receive".into())],
        "G2 does not see Berths, which it takes no part in"
    );
    assert_eq!(
        modes(&collab(&c.g3, &c.id).await),
        vec![
            ("Roads".into(), "send_receive".into()),
            ("Berths".into(), "receive".into())
        ]
    );
    assert_eq!(
        on_g1["host"]["fingerprint"],
        c.host.get("/api/v1/instance").await["fingerprint"]
    );

    // The invitations are accepted and name their guests.
    let invitations = c
        .host
        .get(&format!("/api/v1/collabs/{}/invitations", c.id))
        .await;
    let states: Vec<(&str, &str)> = invitations
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["state"].as_str().unwrap(), i["guest"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("accepted", "City GIS"),
            ("accepted", "Harbor Pilots"),
            ("accepted", "Coast Guard")
        ]
    );

    // One space per workspace: a second link is refused and changes nothing.
    c.g1.create_space("g1-other").await;
    let out =
        c.g1.ferry(&["collab", "link", "Roads", "--space", "g1-other"]);
    assert!(
        stderr(&out).contains("workspace_already_linked"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        linked(&collab(&c.g1, &c.id).await, "Roads").as_deref(),
        Some("g1-secret-roads")
    );
    // Unlinking keeps the space; linking another works then.
    ferry_json(&c.g1, &["collab", "unlink", "Roads"]);
    assert!(c.g1.get("/api/v1/spaces/g1-secret-roads").await["name"] == "g1-secret-roads");
    ferry_json(&c.g1, &["collab", "link", "Roads", "--space", "g1-other"]);
    ferry_json(&c.g1, &["collab", "unlink", "Roads"]);
    ferry_json(
        &c.g1,
        &["collab", "link", "Roads", "--space", "g1-secret-roads"],
    );
    // A linked space cannot be deleted from under its workspace.
    let (status, body) =
        c.g1.call(Method::DELETE, "/api/v1/spaces/g1-secret-roads", None)
            .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("space_linked"))
    );

    assert_private(&c).await;

    // The audit logs tell the story on each side.
    let host_events = events(&c.host.get("/api/v1/audit").await);
    for e in [
        "collab.created",
        "collab.workspace_added",
        "collab.invited",
        "collab.guest_joined",
    ] {
        assert!(
            host_events.contains(&e.to_string()),
            "{e} in {host_events:?}"
        );
    }
    let g3_events = events(&c.g3.get("/api/v1/audit").await);
    for e in [
        "collab.accepted",
        "collab.confirmed_by_host",
        "collab.linked",
    ] {
        assert!(g3_events.contains(&e.to_string()), "{e} in {g3_events:?}");
    }

    // `collab show` gives a guest the whole picture.
    let shown = stdout(&c.g1.ferry(&["collab", "show", "Coast"]));
    for part in [
        "guest",
        "active",
        "Port Authority",
        "Roads",
        "mode send",
        "g1-secret-roads",
        "Berths",
        "send_receive",
        "Harbor Pilots (guest, active)",
        "collab.accepted",
    ] {
        assert!(shown.contains(part), "'{part}' missing from:\n{shown}");
    }
    let shown = stdout(&c.host.ferry(&["collab", "show", "Coast"]));
    assert!(shown.contains("guests City GIS=send"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_changes_reach_the_guests() {
    let c = joined().await;
    // A new workspace, with modes for two guests.
    c.host.create_space("host-tides-7f3a").await;
    let added = ferry_json(
        &c.host,
        &[
            "collab",
            "workspace",
            "add",
            "Coast",
            "Tides",
            "--space",
            "host-tides-7f3a",
            "--access",
            "City GIS=receive",
            "--access",
            "Coast Guard=send",
        ],
    );
    assert_eq!(added["not_notified"], json!([]));
    assert_eq!(
        modes(&collab(&c.g1, &c.id).await).last().unwrap(),
        &("Tides".to_string(), "receive".to_string())
    );
    assert!(
        !modes(&collab(&c.g2, &c.id).await)
            .iter()
            .any(|(w, _)| w == "Tides")
    );
    c.g3.create_space("g3-secret-tides").await;
    ferry_json(
        &c.g3,
        &["collab", "link", "Tides", "--space", "g3-secret-tides"],
    );

    // Workspace info and a guest's modes change; the guest learns at once.
    ferry_json(
        &c.host,
        &[
            "collab",
            "workspace",
            "update",
            "Coast",
            "Roads",
            "--description",
            "Road network",
        ],
    );
    ferry_json(
        &c.host,
        &[
            "collab",
            "access",
            "Coast",
            "Harbor Pilots",
            "--access",
            "Roads=send_receive",
            "--access",
            "Berths=send",
        ],
    );
    let on_g2 = collab(&c.g2, &c.id).await;
    assert_eq!(
        modes(&on_g2),
        vec![
            ("Roads".into(), "send_receive".into()),
            ("Berths".into(), "send".into())
        ]
    );
    assert_eq!(on_g2["workspaces"][0]["description"], "Road network");
    assert_eq!(
        linked(&on_g2, "Roads").as_deref(),
        Some("g2-secret-roads"),
        "links stay"
    );

    // Deleting a workspace ends it everywhere; linked spaces stay.
    ferry_json(
        &c.host,
        &["collab", "workspace", "delete", "Coast", "Tides"],
    );
    let on_g3 = collab(&c.g3, &c.id).await;
    assert!(!modes(&on_g3).iter().any(|(w, _)| w == "Tides"));
    assert_eq!(
        c.g3.get("/api/v1/spaces/g3-secret-tides").await["name"],
        "g3-secret-tides"
    );
    assert_eq!(
        c.host.get("/api/v1/spaces/host-tides-7f3a").await["name"],
        "host-tides-7f3a"
    );

    // G2 leaves: the host and the other guests see it.
    let left = ferry_json(&c.g2, &["collab", "leave", "Coast"]);
    assert_eq!(left["collaboration"]["state"], "left");
    assert_eq!(left["not_notified"], json!([]));
    assert_eq!(
        c.g2.get("/api/v1/spaces/g2-secret-roads").await["name"],
        "g2-secret-roads"
    );
    let host_view = collab(&c.host, &c.id).await;
    assert_eq!(participants(&host_view)[2].2, "left");
    assert!(
        host_view["workspaces"][0]["guests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["title"] != "Harbor Pilots")
    );
    // Other guests hear in the background.
    wait_for("the guest has left", || async {
        participants(&collab(&c.g1, &c.id).await)[2].2 == "left"
    })
    .await;

    // The host removes G3 while it cannot tell it (its rules permit data with no one).
    let before = events(&c.host.get("/api/v1/audit").await).len();
    let rules = c.host.get("/api/v1/policies").await;
    for rule in rules.as_array().unwrap() {
        c.host
            .call(
                Method::DELETE,
                &format!("/api/v1/policies/{}", rule["id"].as_str().unwrap()),
                None,
            )
            .await;
    }
    let removed = ferry_json(&c.host, &["collab", "remove-guest", "Coast", "Coast Guard"]);
    assert_eq!(removed["not_notified"], json!(["City GIS", "Coast Guard"]));
    crate::harness::open_policies(&c.host);
    assert!(events(&c.host.get("/api/v1/audit").await).len() > before);
    assert_eq!(
        collab(&c.g3, &c.id).await["state"],
        "active",
        "G3 has not heard yet"
    );
    // G3 calls again: the host refuses it with its own code, and G3 learns it was removed.
    let refreshed = ferry_json(&c.g3, &["collab", "refresh", "Coast"]);
    assert_eq!(refreshed["state"], "removed");
    assert_eq!(
        linked(&refreshed, "Roads"),
        None,
        "links end with the collaboration"
    );
    assert_eq!(
        c.g3.get("/api/v1/spaces/g3-secret-roads").await["name"],
        "g3-secret-roads"
    );
    let refusals: Vec<Value> = c
        .host
        .get("/api/v1/audit")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "federation.refused")
        .cloned()
        .collect();
    assert_eq!(
        refusals.last().unwrap()["detail"]["code"],
        "collab_guest_removed"
    );

    // The host deletes the collaboration: G1 hears at once.
    let deleted = ferry_json(&c.host, &["collab", "delete", "Coast"]);
    assert_eq!(deleted["collaboration"]["state"], "deleted");
    assert_eq!(deleted["not_notified"], json!([]));
    let on_g1 = collab(&c.g1, &c.id).await;
    assert_eq!(on_g1["state"], "deleted");
    assert_eq!(linked(&on_g1, "Berths"), None);
    for space in ["g1-secret-roads", "g1-secret-berths"] {
        assert_eq!(
            c.g1.get(&format!("/api/v1/spaces/{space}")).await["name"],
            space
        );
    }
    // Nothing more happens in a deleted collaboration.
    let out = c.host.ferry(&[
        "collab",
        "workspace",
        "add",
        "Coast",
        "More",
        "--space",
        "host-roads-7f3a",
    ]);
    assert!(
        stderr(&out).contains("collab_state_conflict"),
        "{}",
        stderr(&out)
    );

    let g1_events = events(&c.g1.get("/api/v1/audit").await);
    for e in ["collab.updated_by_host", "collab.deleted_by_host"] {
        assert!(g1_events.contains(&e.to_string()), "{e} in {g1_events:?}");
    }
    let host_events = events(&c.host.get("/api/v1/audit").await);
    for e in [
        "collab.workspace_updated",
        "collab.access_changed",
        "collab.workspace_deleted",
        "collab.guest_left",
        "collab.guest_removed",
        "collab.deleted",
    ] {
        assert!(
            host_events.contains(&e.to_string()),
            "{e} in {host_events:?}"
        );
    }
    assert_private(&c).await;
}

/// Adds a received item (as sync will) straight into a running instance's database.
fn receive_item(inst: &TestInstance, space: &str, link: &str) -> String {
    use ferry_store::{ItemDraft, NoRows, SqliteStore, Store};
    let store = SqliteStore::open(inst.data_dir().join("ferry.db")).unwrap();
    let item = store
        .create_item(
            &ItemDraft {
                space_ref: space.into(),
                kind: ferry_proto::ItemKind::Dataset,
                title: "Received".into(),
                description: String::new(),
                tags: vec![],
                markings: vec![],
                owner: "admin".into(),
                crs: None,
                file: None,
            },
            &mut NoRows::default(),
        )
        .unwrap();
    store
        .record_arrival(item.id, link, "origin-instance", "origin-item")
        .unwrap();
    store.close().unwrap();
    item.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_policies_apply_when_a_workspace_or_the_collaboration_ends() {
    let c = joined().await;
    let roads = collab(&c.g1, &c.id).await["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let berths = collab(&c.g1, &c.id).await["workspaces"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // G1 deletes what it received; G3 keeps it.
    let set = ferry_json(&c.g1, &["collab", "delete-policy", "Coast", "delete"]);
    assert_eq!(set["delete_policy"], "delete");
    let bad = c.g1.ferry(&["collab", "delete-policy", "Coast", "purge"]);
    assert!(stderr(&bad).contains("invalid_request"));
    let from_berths = receive_item(
        &c.g1,
        "g1-secret-berths",
        &format!("collab:{}:{berths}", c.id),
    );
    let from_roads = receive_item(
        &c.g1,
        "g1-secret-roads",
        &format!("collab:{}:{roads}", c.id),
    );
    let own =
        c.g1.import(
            "space=g1-secret-berths&title=Own",
            "text/csv",
            "id,x\n1,2\n",
        )
        .await
        .1;
    let kept = receive_item(
        &c.g3,
        "g3-secret-roads",
        &format!("collab:{}:{roads}", c.id),
    );

    ferry_json(
        &c.host,
        &["collab", "workspace", "delete", "Coast", "Berths"],
    );
    let (status, _) =
        c.g1.call(Method::GET, &format!("/api/v1/items/{from_berths}"), None)
            .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "received through Berths, deleted by policy"
    );
    assert_eq!(
        c.g1.get(&format!("/api/v1/items/{from_roads}")).await["id"],
        from_roads.as_str()
    );
    assert_eq!(
        c.g1.get(&format!("/api/v1/items/{}", own["id"].as_str().unwrap()))
            .await["title"],
        "Own"
    );

    ferry_json(&c.host, &["collab", "delete", "Coast"]);
    let (status, _) =
        c.g1.call(Method::GET, &format!("/api/v1/items/{from_roads}"), None)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.g3.get(&format!("/api/v1/items/{kept}")).await["id"],
        kept.as_str(),
        "G3 keeps"
    );
    assert!(
        events(&c.g1.get("/api/v1/audit").await)
            .contains(&"collab.received_items_deleted".to_string())
    );
}

/// An invitation signed by a key this test holds, as a host at `host_url` would issue it.
fn forged_invitation(key: &SigningKey, guest_url: &str, expires_at: i64) -> String {
    CollabInvitation {
        version: TICKET_VERSION,
        invitation_id: [1; 16],
        host: Issuer {
            instance_id: "elsewhere".into(),
            title: "Elsewhere".into(),
            url: "http://127.0.0.1:9".into(),
            public_key: key.verifying_key().to_bytes(),
        },
        collaboration_id: [2; 16],
        collaboration_name: "Elsewhere".into(),
        guest_url: guest_url.into(),
        workspaces: vec![OfferedWorkspace {
            workspace_id: [3; 16],
            name: "Roads".into(),
            description: String::new(),
            mode: "send".into(),
        }],
        expires_at,
        secret: [4; 32],
    }
    .issue(key)
}

fn refused(out: &std::process::Output, code: &str) {
    assert!(!out.status.success(), "expected {code}, but it succeeded");
    let said = stderr(out);
    assert!(
        said.contains(&format!("[{code},")),
        "expected {code}: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invitations_and_responses_are_refused_and_change_nothing() {
    let host = instance("Port Authority").await;
    let guest = instance("City GIS").await;
    let other = instance("Elsewhere GIS").await;
    let id = coast(&host).await;

    // An access mode for a workspace that does not exist.
    let url = public_url(&guest);
    let out = host.ferry(&[
        "collab",
        "invite",
        "Coast",
        "--guest-url",
        &url,
        "--access",
        "Nope=send",
    ]);
    refused(&out, "workspace_not_found");
    let out = host.ferry(&[
        "collab",
        "invite",
        "Coast",
        "--guest-url",
        &url,
        "--access",
        "Roads=write",
    ]);
    refused(&out, "invalid_request");
    assert_eq!(
        host.get(&format!("/api/v1/collabs/{id}/invitations")).await,
        json!([])
    );

    // Meant for another instance's URL.
    let for_other = invite(&host, &other, &["Roads=send"], "other.txt");
    refused(
        &guest.ferry(&["collab", "accept", for_other.to_str().unwrap()]),
        "invite_wrong_instance",
    );

    // Expired, and tampered.
    let key = SigningKey::from_bytes(&[7; 32]);
    let stale = forged_invitation(&key, &url, 1_000);
    refused(
        &guest.ferry(&["collab", "accept", &stale]),
        "invite_expired",
    );
    let fresh = forged_invitation(&key, &url, 4_000_000_000);
    let mut tampered = fresh.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'a' { b'b' } else { b'a' };
    let out = guest.ferry(&["collab", "accept", std::str::from_utf8(&tampered).unwrap()]);
    assert!(
        stderr(&out).contains("invite_tampered") || stderr(&out).contains("invite_malformed"),
        "{}",
        stderr(&out)
    );

    // Refreshed away: the old code is refused by the host, the new one works once.
    let first = invite(&host, &guest, &["Roads=send"], "first.txt");
    let invitation_id = host.get(&format!("/api/v1/collabs/{id}/invitations")).await[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = file(&host, "second.txt");
    ferry_json(
        &host,
        &[
            "collab",
            "invitation",
            "refresh",
            "Coast",
            &invitation_id,
            "--file",
            second.to_str().unwrap(),
        ],
    );
    refused(
        &guest.ferry(&["collab", "accept", first.to_str().unwrap()]),
        "invite_superseded",
    );
    assert_eq!(
        guest.get("/api/v1/collabs").await,
        json!([]),
        "nothing changed on the guest"
    );

    // Invalidated.
    ferry_json(
        &host,
        &[
            "collab",
            "invitation",
            "invalidate",
            "Coast",
            &invitation_id,
        ],
    );
    refused(
        &guest.ferry(&["collab", "accept", second.to_str().unwrap()]),
        "invite_invalidated",
    );
    let listed = host.get(&format!("/api/v1/collabs/{id}/invitations")).await;
    assert_eq!(listed[1]["state"], "invalidated");
    assert_eq!(guest.get("/api/v1/collabs").await, json!([]));

    // A tampered response file, then the real one; then the same response again.
    let third = invite(&host, &guest, &["Roads=send"], "third.txt");
    let response = file(&guest, "response.txt");
    ferry_json(
        &guest,
        &[
            "collab",
            "accept",
            third.to_str().unwrap(),
            "--contact",
            "Data desk",
            "--response-file",
            response.to_str().unwrap(),
        ],
    );
    let real = text(&response);
    let decoded = CollabResponse::parse(&real).unwrap();
    assert_eq!(decoded.contact, "Data desk");
    let altered = tamper_contact(&real);
    let altered_file = file(&host, "altered.txt");
    std::fs::write(&altered_file, &altered).unwrap();
    let host_before = collab(&host, &id).await;
    refused(
        &host.ferry(&[
            "collab",
            "import-response",
            "Coast",
            altered_file.to_str().unwrap(),
        ]),
        "response_tampered",
    );
    let garbage = file(&host, "garbage.txt");
    std::fs::write(&garbage, "ferry1-peer-abc").unwrap();
    refused(
        &host.ferry(&[
            "collab",
            "import-response",
            "Coast",
            garbage.to_str().unwrap(),
        ]),
        "response_invalid",
    );
    assert_eq!(
        collab(&host, &id).await,
        host_before,
        "nothing changed on the host"
    );
    ferry_json(
        &host,
        &[
            "collab",
            "import-response",
            "Coast",
            response.to_str().unwrap(),
        ],
    );
    refused(
        &host.ferry(&[
            "collab",
            "import-response",
            "Coast",
            response.to_str().unwrap(),
        ]),
        "invite_reused",
    );
    // Reused on the guest's side: it took part already.
    refused(
        &guest.ferry(&["collab", "accept", third.to_str().unwrap()]),
        "invite_reused",
    );

    // A guest trying host-only operations, on its own instance...
    guest.create_space("mine").await;
    for args in [
        vec![
            "collab",
            "workspace",
            "add",
            "Coast",
            "More",
            "--space",
            "mine",
        ],
        vec![
            "collab",
            "invite",
            "Coast",
            "--guest-url",
            "http://127.0.0.1:1",
            "--access",
            "Roads=send",
        ],
        vec!["collab", "remove-guest", "Coast", "Port Authority"],
        vec![
            "collab",
            "access",
            "Coast",
            "Port Authority",
            "--access",
            "Roads=send",
        ],
        vec!["collab", "delete", "Coast"],
        vec!["collab", "invitation", "list", "Coast"],
    ] {
        refused(&guest.ferry(&args), "collab_host_only");
    }
    // ...and over federation: a guest pushing the collaboration's state to the host.
    let snapshot = json!({
        "collaboration_id": id, "name": "Taken over", "description": "", "revision": 99,
        "state": "active", "participant_id": "x", "workspaces": [], "participants": [],
    });
    let path = "/federation/v1/collab/snapshot";
    let guest_id = crate::harness::instance_id(&guest).await;
    let now = jiff::Timestamp::now().as_second();
    let pushed = forge(&key_of(&guest), &guest_id, path, &snapshot, now, [9; 16]);
    let (status, body) = send_forged(&host, path, &pushed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("collab_host_only"))
    );
    assert_eq!(collab(&host, &id).await["name"], "Coast");
    let log = host.get("/api/v1/audit").await;
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["event"].as_str(), last["detail"]["code"].as_str()),
        (Some("federation.refused"), Some("collab_host_only"))
    );

    // An impostor answering an invitation meant for another URL, naming that URL as its own:
    // the host asks the instance at that URL who it is, and refuses.
    let for_other_text = text(&for_other);
    let invitation = CollabInvitation::parse(&for_other_text).unwrap();
    let impostor = SigningKey::from_bytes(&[11; 32]);
    let forged = CollabResponse {
        version: TICKET_VERSION,
        invitation_id: invitation.invitation_id,
        collaboration_id: invitation.collaboration_id,
        guest: Issuer {
            instance_id: "impostor".into(),
            title: "Impostor".into(),
            url: invitation.guest_url.clone(),
            public_key: impostor.verifying_key().to_bytes(),
        },
        contact: String::new(),
        secret: invitation.secret,
    }
    .issue(&impostor);
    let forged_file = file(&host, "impostor.txt");
    std::fs::write(&forged_file, forged).unwrap();
    refused(
        &host.ferry(&[
            "collab",
            "import-response",
            "Coast",
            forged_file.to_str().unwrap(),
        ]),
        "invite_wrong_instance",
    );
    assert_eq!(
        host.get(&format!("/api/v1/collabs/{id}/invitations")).await[0]["state"],
        "open"
    );

    // And the host trying a guest's.
    refused(
        &host.ferry(&["collab", "leave", "Coast"]),
        "collab_state_conflict",
    );
    let out = host.ferry(&["collab", "remove-guest", "Coast", "Nobody"]);
    refused(&out, "participant_not_found");
    assert_eq!(
        collab(&host, &id).await["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(collab(&guest, &id).await["state"], "active");
}

/// Changes the contact inside a signed response, keeping its signature.
fn tamper_contact(response: &str) -> String {
    let prefix = "ferry1-guest-";
    let body = response.strip_prefix(prefix).unwrap();
    let mut bytes = data_encoding::BASE32_NOPAD
        .decode(body.to_ascii_uppercase().as_bytes())
        .unwrap();
    let at = bytes.windows(9).position(|w| w == b"Data desk").unwrap();
    bytes[at..at + 9].copy_from_slice(b"Evil desk");
    format!(
        "{prefix}{}",
        data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
    )
}
