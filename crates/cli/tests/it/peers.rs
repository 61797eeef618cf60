//! Peer connections between two real instances: the request and the import of its code.

use crate::harness::{TestInstance, events, ferry_json, stderr};
use ed25519_dalek::SigningKey;
use ferry_proto::ticket::{DataTypes, Issuer, PeerOffer, PeerTicket, TICKET_VERSION};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn two() -> (TestInstance, TestInstance) {
    let a = TestInstance::start_with(|c| c.title = "City GIS".into()).await;
    let b = TestInstance::start_with(|c| c.title = "Harbor Authority".into()).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_carries_the_offer_to_the_other_instance() {
    let (a, b) = two().await;
    a.create_space("roads").await;
    let created = ferry_json(
        &a,
        &[
            "peer",
            "request",
            "--space",
            "roads",
            "--export",
            "features,files",
            "--import",
            "datasets",
        ],
    );
    let code = created["code"].as_str().unwrap();
    assert!(code.starts_with("ferry1-peer-"));
    let request = &created["connection"];
    assert_eq!(
        (request["role"].as_str(), request["state"].as_str()),
        (Some("originator"), Some("requested"))
    );
    assert_eq!(request["sends"], json!(["features", "files"]));

    let imported = ferry_json(&b, &["peer", "import", code]);
    let a_info = a.get("/api/v1/instance").await;
    assert_eq!(imported["role"], "acceptor");
    assert_eq!(imported["state"], "imported");
    assert_eq!(imported["request_id"], request["request_id"]);
    assert_eq!(imported["offered_space"], "roads");
    assert_eq!(
        imported["receives"],
        json!(["features", "files"]),
        "the mirror of what A exports"
    );
    assert_eq!(imported["sends"], json!(["datasets"]));
    assert_eq!(imported["peer"]["title"], "City GIS");
    assert_eq!(imported["peer"]["url"], a_info["public_url"]);
    assert_eq!(imported["peer"]["instance_id"], a_info["id"]);
    assert_eq!(
        imported["peer"]["fingerprint"], a_info["fingerprint"],
        "people compare this with A's admin"
    );
    assert_eq!(imported["expires_at"], request["expires_at"]);
    assert_eq!(imported["carries_data"], false);

    // Nothing was sent to A: its request is still unanswered.
    let on_a = a
        .get(&format!(
            "/api/v1/peers/{}",
            request["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(on_a["connection"]["state"], "requested");
    assert_eq!(
        events(&a.get("/api/v1/audit").await),
        vec!["token.created", "peer.requested"]
    );
    assert_eq!(
        events(&b.get("/api/v1/audit").await),
        vec!["token.created", "peer.code_imported"]
    );
    let shown =
        crate::harness::stdout(&b.ferry(&["peer", "show", imported["id"].as_str().unwrap()]));
    assert!(
        shown.contains("City GIS") && shown.contains(a_info["fingerprint"].as_str().unwrap()),
        "{shown}"
    );
}

/// Refused codes each have their own code, and change nothing on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_codes_are_refused_with_their_own_codes() {
    let (a, b) = two().await;
    a.create_space("roads").await;
    let created = ferry_json(
        &a,
        &[
            "peer", "request", "--space", "roads", "--export", "features",
        ],
    );
    let code = created["code"].as_str().unwrap().to_string();
    let import = |code: String| {
        let b = &b;
        async move {
            b.call(
                Method::POST,
                "/api/v1/peers/import",
                Some(json!({"code": code})),
            )
            .await
        }
    };
    let mut tampered = code.clone().into_bytes();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == b'a' { b'b' } else { b'a' };
    let expired = {
        let key = SigningKey::from_bytes(&[8; 32]);
        let offer = PeerOffer {
            version: TICKET_VERSION,
            request_id: [1; 16],
            issuer: Issuer {
                instance_id: "x".into(),
                title: "Old".into(),
                url: "http://127.0.0.1:9".into(),
                public_key: key.verifying_key().to_bytes(),
            },
            space_name: "s".into(),
            export: DataTypes {
                datasets: true,
                features: false,
                files: false,
            },
            import: DataTypes::NONE,
            expires_at: 1_000,
            secret: [2; 32],
        };
        PeerTicket::issue(&offer, &key)
    };
    let cases = [
        (
            String::from_utf8(tampered).unwrap(),
            StatusCode::BAD_REQUEST,
            "invite_tampered",
        ),
        (
            code[..code.len() / 2].to_string(),
            StatusCode::BAD_REQUEST,
            "invite_malformed",
        ),
        (
            "ferry1-collab-aaaa".to_string(),
            StatusCode::BAD_REQUEST,
            "invite_wrong_kind",
        ),
        (
            "hello".to_string(),
            StatusCode::BAD_REQUEST,
            "invite_wrong_kind",
        ),
        (expired, StatusCode::GONE, "invite_expired"),
    ];
    for (bad, status, expected) in cases {
        let (got, body) = import(bad).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(expected)),
            "{body}"
        );
    }
    assert_eq!(
        b.get("/api/v1/peers").await,
        json!([]),
        "no refused code left a record"
    );
    assert_eq!(
        events(&b.get("/api/v1/audit").await),
        vec!["token.created"],
        "the first admin token only"
    );

    // Once imported, the same code is refused; A cannot import its own code.
    assert_eq!(import(code.clone()).await.0, StatusCode::CREATED);
    let (status, body) = import(code.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("invite_reused"))
    );
    let (status, body) = a
        .call(
            Method::POST,
            "/api/v1/peers/import",
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invite_own"))
    );
    assert_eq!(b.get("/api/v1/peers").await.as_array().unwrap().len(), 1);

    // Deleting an imported code tells nobody: the issuer does not know this instance yet.
    let imported_id = b.get("/api/v1/peers").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, dropped) = b
        .call(
            Method::DELETE,
            &format!("/api/v1/peers/{imported_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            dropped["connection"]["state"].as_str(),
            dropped["notified"].as_bool()
        ),
        (Some("deleted"), Some(false))
    );
    let a_log = a.get("/api/v1/audit").await;
    assert!(
        a_log
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"] != "federation.refused"),
        "{a_log}"
    );

    // The CLI shows the reason.
    let out = b.ferry(&["peer", "import", "ferry1-peer-zzzz"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invite_malformed"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_refreshed_and_invalidated() {
    let (a, _b) = two().await;
    a.create_space("roads").await;
    let created = ferry_json(
        &a,
        &[
            "peer",
            "request",
            "--space",
            "roads",
            "--import",
            "files",
            "--expires",
            "2h",
        ],
    );
    let id = created["connection"]["id"].as_str().unwrap();
    let refreshed = ferry_json(&a, &["peer", "refresh", id, "--expires", "7d"]);
    assert_ne!(refreshed["code"], created["code"], "a new code");
    assert!(
        refreshed["connection"]["expires_at"].as_str()
            > created["connection"]["expires_at"].as_str()
    );
    let listed = ferry_json(&a, &["peer", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let withdrawn = ferry_json(&a, &["peer", "invalidate", id]);
    assert_eq!(withdrawn["state"], "invalidated");
    let (status, body) = a
        .call(
            Method::POST,
            &format!("/api/v1/peers/{id}/refresh"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("peer_state_conflict"))
    );
    let (status, body) = a
        .call(
            Method::POST,
            &format!("/api/v1/peers/{id}/invalidate"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("peer_state_conflict"))
    );
    assert_eq!(
        events(&a.get("/api/v1/audit").await),
        vec![
            "token.created",
            "peer.requested",
            "peer.refreshed",
            "peer.invalidated"
        ]
    );

    for (body, code) in [
        (json!({"space": "roads"}), "invalid_request"),
        (
            json!({"space": "roads", "export": ["rasters"]}),
            "invalid_request",
        ),
        (
            json!({"space": "roads", "export": ["files"], "expires_in": "1000d"}),
            "invalid_request",
        ),
        (
            json!({"space": "nope", "export": ["files"]}),
            "space_not_found",
        ),
    ] {
        let (_, answer) = a
            .call(Method::POST, "/api/v1/peers/requests", Some(body))
            .await;
        assert_eq!(answer["code"], code, "{answer}");
    }
    assert_eq!(
        a.get("/api/v1/peers").await.as_array().unwrap().len(),
        1,
        "refused requests left nothing"
    );
    let editor = a.create_token("ed", "editor").await;
    assert_eq!(
        a.call_as(&editor, Method::GET, "/api/v1/peers", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}
