//! The whole peer connection flow between real instances over real HTTP, and the checks on
//! every signed server-to-server request.

use crate::harness::{
    TestInstance, events, ferry_json, forge, instance_id, key_of, open_policies, send_forged,
    stderr, stdout, temp_file,
};
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn instance(title: &str) -> TestInstance {
    let title = title.to_string();
    TestInstance::start_with(move |c| c.title = title).await
}

/// A requests, B imports: returns (A's connection id, B's connection id).
async fn requested_and_imported(a: &TestInstance, b: &TestInstance) -> (String, String) {
    a.create_space("roads").await;
    b.create_space("inbox").await;
    let created = ferry_json(
        a,
        &[
            "peer", "request", "--space", "roads", "--export", "features", "--import", "datasets",
        ],
    );
    let imported = ferry_json(b, &["peer", "import", created["code"].as_str().unwrap()]);
    (
        created["connection"]["id"].as_str().unwrap().to_string(),
        imported["id"].as_str().unwrap().to_string(),
    )
}

/// Removes every policy rule of one direction.
async fn remove_rules(inst: &TestInstance, direction: &str) {
    let rules = inst.get("/api/v1/policies").await;
    for r in rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == direction)
    {
        let path = format!("/api/v1/policies/{}", r["id"].as_str().unwrap());
        inst.call(Method::DELETE, &path, None).await;
    }
}

async fn peer(inst: &TestInstance, id: &str) -> Value {
    inst.get(&format!("/api/v1/peers/{id}")).await["connection"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_flow_request_import_approve_activate() {
    let (a, b) = (
        instance("City GIS").await,
        instance("Harbor Authority").await,
    );
    open_policies(&a);
    open_policies(&b);
    let (on_a, on_b) = requested_and_imported(&a, &b).await;
    let approved = ferry_json(
        &b,
        &[
            "peer",
            "approve",
            &on_b,
            "--space",
            "inbox",
            "--ceiling",
            "OFFICIAL",
            "--mark",
            "PARTNER",
        ],
    );
    assert_eq!(approved["connection"]["state"], "approved");
    assert_eq!(approved["connection"]["space"], "inbox");
    assert_eq!(
        approved["connection"]["security"],
        json!({"ceiling": ["OFFICIAL"], "mark": ["PARTNER"]})
    );
    let a_side = peer(&a, &on_a).await;
    let b_info = b.get("/api/v1/instance").await;
    assert_eq!(a_side["state"], "approved");
    assert_eq!(a_side["peer"]["instance_id"], b_info["id"]);
    assert_eq!(
        a_side["peer"]["fingerprint"], b_info["fingerprint"],
        "A pinned B's key"
    );

    let active = ferry_json(&a, &["peer", "activate", &on_a]);
    assert_eq!(
        (active["state"].as_str(), active["carries_data"].as_bool()),
        (Some("active"), Some(true))
    );
    let b_side = peer(&b, &on_b).await;
    assert_eq!(
        (b_side["state"].as_str(), b_side["carries_data"].as_bool()),
        (Some("active"), Some(true))
    );

    let check = ferry_json(&a, &["peer", "check", &on_a]);
    assert_eq!(check["ok"], true, "{check}");
    let shown = ferry_json(&b, &["peer", "show", &on_b]);
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        vec![
            "peer.code_imported",
            "peer.approved",
            "peer.remote_activated"
        ]
    );
    assert_eq!(
        events(&a.get("/api/v1/audit").await)[3..],
        ["peer.requested", "peer.approved", "peer.activated"]
    );
    assert_eq!(
        events(&b.get("/api/v1/audit").await)[3..],
        [
            "peer.code_imported",
            "peer.approved",
            "peer.remote_activated"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_files_carry_the_approval_and_are_single_use() {
    let (a, b) = (
        instance("City GIS").await,
        instance("Harbor Authority").await,
    );
    open_policies(&a);
    open_policies(&b);
    let (on_a, on_b) = requested_and_imported(&a, &b).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("response.txt");
    ferry_json(
        &b,
        &[
            "peer",
            "approve",
            &on_b,
            "--space",
            "inbox",
            "--response-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(
        peer(&a, &on_a).await["state"],
        "requested",
        "nothing was sent"
    );
    let tampered = temp_file(
        work.path(),
        "bad.txt",
        std::fs::read_to_string(&file)
            .unwrap()
            .replacen('a', "b", 1)
            .as_bytes(),
    );
    let bad = a.ferry(&["peer", "accept-response", tampered.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("response_"), "{}", stderr(&bad));
    let accepted = ferry_json(&a, &["peer", "accept-response", file.to_str().unwrap()]);
    assert_eq!(accepted["state"], "approved");
    let again = a.ferry(&["peer", "accept-response", file.to_str().unwrap()]);
    assert!(
        stderr(&again).contains("invite_reused"),
        "{}",
        stderr(&again)
    );
    ferry_json(&a, &["peer", "activate", &on_a]);
    assert_eq!(peer(&b, &on_b).await["state"], "active");
}

async fn active_pair() -> (TestInstance, TestInstance, String, String) {
    let (a, b) = (
        instance("City GIS").await,
        instance("Harbor Authority").await,
    );
    open_policies(&a);
    open_policies(&b);
    let (on_a, on_b) = requested_and_imported(&a, &b).await;
    ferry_json(&b, &["peer", "approve", &on_b, "--space", "inbox"]);
    ferry_json(&a, &["peer", "activate", &on_a]);
    (a, b, on_a, on_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_enable_and_delete_reach_the_other_side() {
    let (a, b, on_a, on_b) = active_pair().await;
    let off = ferry_json(&b, &["peer", "disable", &on_b]);
    assert_eq!(off["notified"], true);
    let seen = peer(&a, &on_a).await;
    assert_eq!(
        (
            seen["disabled_there"].as_bool(),
            seen["carries_data"].as_bool()
        ),
        (Some(true), Some(false))
    );
    // People see it on both sides, in the list and in the detail, with the side that did it.
    let listed = stdout(&a.ferry(&["peer", "list"]));
    assert!(listed.contains("active, disabled by the peer"), "{listed}");
    let shown = stdout(&b.ferry(&["peer", "show", &on_b]));
    assert!(shown.contains("active, disabled here"), "{shown}");
    // A cannot undo B's disable: enabling on A only clears A's own half.
    ferry_json(&a, &["peer", "disable", &on_a]);
    ferry_json(&a, &["peer", "enable", &on_a]);
    assert_eq!(peer(&a, &on_a).await["carries_data"], false);
    ferry_json(&b, &["peer", "enable", &on_b]);
    assert_eq!(peer(&a, &on_a).await["carries_data"], true);

    let deleted = ferry_json(&a, &["peer", "delete", &on_a]);
    assert_eq!(
        (
            deleted["connection"]["state"].as_str(),
            deleted["notified"].as_bool()
        ),
        (Some("deleted"), Some(true))
    );
    assert_eq!(peer(&b, &on_b).await["state"], "revoked");
    // The deleted connection's peer calling again is refused, and the refusal is audited.
    let (status, body) = b
        .call(Method::POST, &format!("/api/v1/peers/{on_b}/check"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], false);
    let log = a.get("/api/v1/audit").await;
    let refused: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "federation.refused")
        .collect();
    assert_eq!(refused.last().unwrap()["detail"]["code"], "peer_revoked");
    let (status, answer) = b
        .call(Method::POST, &format!("/api/v1/peers/{on_b}/disable"), None)
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("peer_state_conflict")),
        "a revoked connection takes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_are_checked_before_any_handler_runs() {
    let (a, b, on_a, _on_b) = active_pair().await;
    let path = "/federation/v1/peer/state";
    let b_id = instance_id(&b).await;
    let request_id = peer(&a, &on_a).await["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let notice = json!({"request_id": request_id, "event": "disabled"});
    let now = jiff::Timestamp::now().as_second();
    let b_key = key_of(&b);
    let stranger = SigningKey::from_bytes(&[42; 32]);

    let mut tampered = forge(&b_key, &b_id, path, &notice, now, [1; 16]);
    tampered.body =
        serde_json::to_vec(&json!({"request_id": request_id, "event": "deleted"})).unwrap();
    let cases = [
        (
            "wrong key",
            forge(&stranger, &b_id, path, &notice, now, [2; 16]),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "stale",
            forge(&b_key, &b_id, path, &notice, now - 3600, [3; 16]),
            StatusCode::UNAUTHORIZED,
            "signature_stale",
        ),
        (
            "body swapped",
            tampered,
            StatusCode::BAD_REQUEST,
            "digest_mismatch",
        ),
        (
            "unknown sender",
            forge(&stranger, "someone-else", path, &notice, now, [4; 16]),
            StatusCode::UNAUTHORIZED,
            "peer_unknown",
        ),
        (
            "signed for another path",
            forge(&b_key, &b_id, "/federation/v1/probe", &notice, now, [5; 16]),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
    ];
    for (what, forged, status, code) in cases {
        let (got, body) = send_forged(&a, path, &forged).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert_eq!(
            peer(&a, &on_a).await["carries_data"],
            true,
            "{what} changed nothing"
        );
    }
    let unsigned = a
        .request(Method::POST, path, None)
        .json(&notice)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);

    // A genuine request works once; its replay is refused.
    let genuine = forge(&b_key, &b_id, path, &notice, now, [6; 16]);
    assert_eq!(send_forged(&a, path, &genuine).await.0, StatusCode::OK);
    assert_eq!(peer(&a, &on_a).await["disabled_there"], true);
    let (status, body) = send_forged(&a, path, &genuine).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("request_replayed"))
    );
    // The same notice sent again as a new request (a retry) is harmless.
    let retry = forge(&b_key, &b_id, path, &notice, now, [16; 16]);
    assert_eq!(send_forged(&a, path, &retry).await.0, StatusCode::OK);
    assert_eq!(peer(&a, &on_a).await["disabled_there"], true);

    // Outside the policy (no data may flow with B either way): refused with its own code, even
    // with a valid signature.
    remove_rules(&a, "ingress").await;
    remove_rules(&a, "egress").await;
    let enable = json!({"request_id": request_id, "event": "enabled"});
    let (status, body) =
        send_forged(&a, path, &forge(&b_key, &b_id, path, &enable, now, [7; 16])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("policy_denied"))
    );
    assert_eq!(
        peer(&a, &on_a).await["disabled_there"],
        true,
        "the refused enable changed nothing"
    );

    let log = a.get("/api/v1/audit").await;
    let codes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "federation.refused")
        .map(|e| e["detail"]["code"].as_str().unwrap())
        .collect();
    for code in [
        "signature_invalid",
        "signature_stale",
        "digest_mismatch",
        "peer_unknown",
        "request_replayed",
        "policy_denied",
    ] {
        assert!(codes.contains(&code), "audit lacks {code}: {codes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_down_gets_a_clear_error_and_local_changes_still_apply() {
    let (a, mut b, on_a, _on_b) = active_pair().await;
    b.stop().await;
    let changed = ferry_json(&a, &["peer", "disable", &on_a]);
    assert_eq!(
        changed["connection"]["disabled_here"], true,
        "the local change stands"
    );
    assert_eq!(changed["notified"], false);
    assert!(
        changed["notice_error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{changed}"
    );
    let (status, body) = a
        .call(Method::POST, &format!("/api/v1/peers/{on_a}/check"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], false);
    // The local API keeps answering.
    assert_eq!(a.get("/api/v1/spaces").await.as_array().unwrap().len(), 1);
}

/// Two separate `ferry serve` processes, administered only through the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ferry_serve_processes_peer_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut proc_a = crate::harness::spawn_serve(&data_a, "City GIS").await;
    let mut proc_b = crate::harness::spawn_serve(&data_b, "Harbor Authority").await;
    let ferry = |data: &std::path::Path, args: &[&str]| -> Value {
        let out = crate::harness::ferry_local(data, &[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "ferry {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for data in [&data_a, &data_b] {
        ferry(data, &["policy", "ingress", "allow", "127.0.0.0/8"]);
        ferry(data, &["policy", "egress", "allow", "127.0.0.1"]);
    }
    ferry(&data_a, &["space", "create", "roads"]);
    ferry(&data_b, &["space", "create", "inbox"]);
    let created = ferry(
        &data_a,
        &[
            "peer", "request", "--space", "roads", "--export", "features",
        ],
    );
    let imported = ferry(
        &data_b,
        &["peer", "import", created["code"].as_str().unwrap()],
    );
    ferry(
        &data_b,
        &[
            "peer",
            "approve",
            imported["id"].as_str().unwrap(),
            "--space",
            "inbox",
        ],
    );
    ferry(
        &data_a,
        &[
            "peer",
            "activate",
            created["connection"]["id"].as_str().unwrap(),
        ],
    );
    for data in [&data_a, &data_b] {
        let list = ferry(data, &["peer", "list"]);
        assert_eq!(list[0]["state"], "active", "{list}");
        assert_eq!(list[0]["carries_data"], true);
    }
    for p in [&mut proc_a, &mut proc_b] {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &p.id().to_string()])
            .status();
        assert!(p.wait().unwrap().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_changes_wait_for_the_other_sides_approval() {
    let (a, b, on_a, on_b) = active_pair().await;
    let proposed = ferry_json(
        &b,
        &[
            "peer",
            "security",
            &on_b,
            "--ceiling",
            "OFFICIAL,RESTRICTED",
            "--mark",
            "PARTNER",
        ],
    );
    assert_eq!(
        proposed["security"],
        json!({"ceiling": null, "mark": []}),
        "nothing applies before approval"
    );
    assert_eq!(proposed["pending_security"]["proposed_by"], "here");
    let seen = peer(&a, &on_a).await;
    assert_eq!(seen["pending_security"]["proposed_by"], "there");
    assert_eq!(
        seen["pending_security"]["security"]["ceiling"],
        json!(["OFFICIAL", "RESTRICTED"])
    );
    // A second proposal waits for the first; the proposer cannot approve its own change.
    let (status, body) = b
        .call(
            Method::POST,
            &format!("/api/v1/peers/{on_b}/security"),
            Some(json!({"security": {"mark": ["X"]}})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("peer_state_conflict"))
    );
    let (status, _) = b
        .call(
            Method::POST,
            &format!("/api/v1/peers/{on_b}/security/approve"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    ferry_json(&a, &["peer", "approve-change", &on_a]);
    let applied = peer(&b, &on_b).await;
    assert_eq!(
        applied["security"],
        json!({"ceiling": ["OFFICIAL", "RESTRICTED"], "mark": ["PARTNER"]})
    );
    assert_eq!(applied["pending_security"], Value::Null);
    assert_eq!(peer(&a, &on_a).await["pending_security"], Value::Null);

    // A rejected proposal leaves the settings as they were.
    ferry_json(&b, &["peer", "security", &on_b, "--ceiling", ""]);
    ferry_json(&a, &["peer", "reject-change", &on_a]);
    assert_eq!(
        peer(&b, &on_b).await["security"]["ceiling"],
        json!(["OFFICIAL", "RESTRICTED"])
    );

    let b_events = events(&b.get("/api/v1/audit").await);
    for e in [
        "peer.security_change_requested",
        "peer.security_change_approved_by_peer",
        "peer.security_change_rejected_by_peer",
    ] {
        assert!(b_events.iter().any(|x| x == e), "{e} missing: {b_events:?}");
    }
    let a_events = events(&a.get("/api/v1/audit").await);
    for e in [
        "peer.security_change_received",
        "peer.security_change_approved",
        "peer.security_change_rejected",
    ] {
        assert!(a_events.iter().any(|x| x == e), "{e} missing: {a_events:?}");
    }
}

/// Three instances: A peers with B and with C. Each connection answers only to its own peer, a
/// code claiming a known instance with another key is refused, and a refreshed-away code is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_keep_their_connections_apart() {
    let (a, b, a_b, b_a) = active_pair().await;
    let c = instance("Port Police").await;
    open_policies(&c);
    c.create_space("inbox").await;
    let to_c = ferry_json(
        &a,
        &["peer", "request", "--space", "roads", "--export", "files"],
    );
    let c_a = ferry_json(&c, &["peer", "import", to_c["code"].as_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    ferry_json(&c, &["peer", "approve", &c_a, "--space", "inbox"]);
    let a_c = to_c["connection"]["id"].as_str().unwrap().to_string();
    ferry_json(&a, &["peer", "activate", &a_c]);
    assert_eq!(
        ferry_json(&a, &["peer", "list"]).as_array().unwrap().len(),
        2
    );

    // B, a genuine peer of A, cannot act on the A–C connection.
    let b_id = instance_id(&b).await;
    let a_c_request = peer(&a, &a_c).await["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let notice = json!({"request_id": a_c_request, "event": "disabled"});
    let now = jiff::Timestamp::now().as_second();
    let (status, body) = send_forged(
        &a,
        "/federation/v1/peer/state",
        &forge(
            &key_of(&b),
            &b_id,
            "/federation/v1/peer/state",
            &notice,
            now,
            [9; 16],
        ),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("peer_not_found"))
    );
    assert_eq!(peer(&a, &a_c).await["carries_data"], true);

    // A code naming A's instance id with another key is refused by B, which pinned A's key.
    let a_info = a.get("/api/v1/instance").await;
    let impostor = SigningKey::from_bytes(&[77; 32]);
    let forged_code = ferry_proto::ticket::PeerTicket::issue(
        &ferry_proto::ticket::PeerOffer {
            version: ferry_proto::ticket::TICKET_VERSION,
            request_id: [5; 16],
            issuer: ferry_proto::ticket::Issuer {
                instance_id: a_info["id"].as_str().unwrap().into(),
                title: "City GIS".into(),
                url: a.url.clone(),
                public_key: impostor.verifying_key().to_bytes(),
            },
            space_name: "roads".into(),
            export: ferry_proto::ticket::DataTypes {
                datasets: true,
                features: false,
                files: false,
            },
            import: ferry_proto::ticket::DataTypes::NONE,
            expires_at: now + 3600,
            secret: [1; 32],
        },
        &impostor,
    );
    let out = b.ferry(&["peer", "import", &forged_code]);
    assert!(
        stderr(&out).contains("invite_key_mismatch"),
        "{}",
        stderr(&out)
    );

    // A response claiming B's instance id with another key is refused: ids are bound to keys.
    let lure = ferry_json(
        &a,
        &["peer", "request", "--space", "roads", "--export", "files"],
    );
    let lure_offer = ferry_proto::ticket::PeerTicket::parse(lure["code"].as_str().unwrap())
        .unwrap()
        .offer;
    let forged_response = ferry_proto::ticket::PeerResponse {
        version: ferry_proto::ticket::TICKET_VERSION,
        request_id: lure_offer.request_id,
        acceptor: ferry_proto::ticket::Issuer {
            instance_id: b_id.clone(),
            title: "Harbor Authority".into(),
            url: b.url.clone(),
            public_key: impostor.verifying_key().to_bytes(),
        },
        secret: lure_offer.secret,
    }
    .issue(&impostor);
    let (status, body) = a
        .call(
            Method::POST,
            "/api/v1/peers/accept-response",
            Some(json!({"response": forged_response})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("invite_key_mismatch")),
        "{body}"
    );
    assert_eq!(
        peer(&a, lure["connection"]["id"].as_str().unwrap()).await["state"],
        "requested"
    );

    // A refreshed-away code is dead: answering it is refused and nothing changes.
    let fresh = ferry_json(
        &a,
        &["peer", "request", "--space", "roads", "--export", "files"],
    );
    let old_code = fresh["code"].as_str().unwrap().to_string();
    let fresh_id = fresh["connection"]["id"].as_str().unwrap().to_string();
    let refreshed = ferry_json(&a, &["peer", "refresh", &fresh_id, "--expires", "7d"]);
    let c_old = ferry_json(&c, &["peer", "import", &old_code])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = c.ferry(&["peer", "approve", &c_old, "--space", "inbox"]);
    assert!(stderr(&out).contains("invite_reused"), "{}", stderr(&out));
    assert_eq!(peer(&a, &fresh_id).await["state"], "requested");
    assert_eq!(peer(&c, &c_old).await["state"], "imported");
    // The refreshed code is what refresh is for: it takes the stale one's place on C, even once
    // C deleted the stale record, and the approval goes through.
    ferry_json(&c, &["peer", "delete", &c_old]);
    let c_new = ferry_json(&c, &["peer", "import", refreshed["code"].as_str().unwrap()]);
    assert_eq!(c_new["id"].as_str(), Some(c_old.as_str()), "{c_new}");
    assert_eq!(c_new["state"], "imported");
    let out = c.ferry(&["peer", "import", &old_code]);
    assert!(
        stderr(&out).contains("invite_superseded"),
        "{}",
        stderr(&out)
    );
    ferry_json(&c, &["peer", "approve", &c_old, "--space", "inbox"]);
    assert_eq!(peer(&a, &fresh_id).await["state"], "approved");

    // B deletes its side: A's copy is revoked; A–C is untouched.
    ferry_json(&b, &["peer", "delete", &b_a]);
    assert_eq!(peer(&a, &a_b).await["state"], "revoked");
    assert_eq!(peer(&a, &a_c).await["state"], "active");
    assert_eq!(peer(&c, &c_a).await["carries_data"], true);
}
