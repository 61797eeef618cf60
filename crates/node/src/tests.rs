//! The node's operations as calls: no HTTP server runs here. Two nodes in one process exchange
//! what their admins would carry between them (invite codes, response files), and each rule
//! answers with its stable code.

use crate::{Caller, Config, Instance, Node, NodeError, NodeResult};
use ferry_proto::{ErrorCode, Role};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

struct TestNode {
    node: Node,
    admin: Caller,
    admin_token: String,
    _dir: tempfile::TempDir,
}

fn open(title: &str, public_url: &str) -> TestNode {
    crate::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.title = title.into();
    let instance = Instance::open(config).expect("the instance opens");
    let admin_token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    TestNode {
        node: Node::new(&instance, public_url.into()),
        admin: Caller {
            name: "admin".into(),
            role: Role::Admin,
        },
        admin_token,
        _dir: dir,
    }
}

/// A request body as a door would have parsed it.
fn body<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid body")
}

fn code_of<T: std::fmt::Debug>(result: NodeResult<T>) -> ErrorCode {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(NodeError(error)) => error.code,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_name_their_caller_and_roles_hold() {
    let t = open("Harbor", "http://127.0.0.1:1");
    let caller = crate::tokens::authenticate(&t.node, &t.admin_token)
        .await
        .unwrap();
    assert_eq!((caller.name.as_str(), caller.role), ("admin", Role::Admin));
    assert_eq!(
        code_of(crate::tokens::authenticate(&t.node, "ferry_not_a_token").await),
        ErrorCode::Unauthenticated
    );
    let created = crate::tokens::create_token(
        &t.node,
        &t.admin,
        body(json!({"name": "ana", "role": "viewer"})),
    )
    .await
    .unwrap();
    let ana = crate::tokens::authenticate(&t.node, &created.token)
        .await
        .unwrap();
    assert_eq!(code_of(ana.require(Role::Editor)), ErrorCode::Forbidden);
    ana.require(Role::Viewer).unwrap();
    // Every operation checks its caller's role itself, whichever door the call came through.
    assert_eq!(
        code_of(crate::spaces::create_space(&t.node, &ana, body(json!({"name": "x"}))).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(crate::trust::list_audit(&t.node, &ana, None).await),
        ErrorCode::Forbidden
    );
    assert!(
        crate::spaces::list_spaces(&t.node, &ana)
            .await
            .unwrap()
            .is_empty()
    );
    crate::tokens::revoke_token(&t.node, &t.admin, created.info.id.to_string())
        .await
        .unwrap();
    assert_eq!(
        code_of(crate::tokens::authenticate(&t.node, &created.token).await),
        ErrorCode::Unauthenticated,
        "a revoked token names nobody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaces_and_items_keep_their_rules() {
    let t = open("Harbor", "http://127.0.0.1:1");
    let space = crate::spaces::create_space(&t.node, &t.admin, body(json!({"name": "berths"})))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            crate::spaces::create_space(&t.node, &t.admin, body(json!({"name": "berths"}))).await
        ),
        ErrorCode::SpaceNameTaken
    );
    let item = crate::items::create_item(
        &t.node,
        &t.admin,
        body(json!({"space": "berths", "kind": "dataset", "title": "Vessels",
            "schema": {"fields": [{"name": "imo", "type": "integer"}, {"name": "name", "type": "string"}],
                       "primary_key": "imo"}})),
    )
    .await
    .unwrap();
    let results = crate::items::apply_edits(
        &t.node,
        &t.admin,
        item.id.to_string(),
        body(json!({"adds": [{"values": {"imo": 9321483, "name": "Nordic Star"}}]})),
    )
    .await
    .unwrap();
    assert!(results.results.iter().all(|r| r.success), "{results:?}");
    let page = crate::items::query_rows(&t.node, &t.admin, item.id.to_string(), None)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].values["name"], "Nordic Star");
    // An editor may retitle an item but not change who receives it.
    let editor = Caller {
        name: "ed".into(),
        role: Role::Editor,
    };
    assert_eq!(
        code_of(
            crate::items::update_item(
                &t.node,
                &editor,
                item.id.to_string(),
                body(json!({"markings": ["PUBLIC"]}))
            )
            .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(crate::spaces::delete_space(&t.node, &t.admin, space.name.clone(), None).await),
        ErrorCode::SpaceNotEmpty
    );
    crate::spaces::delete_space(&t.node, &t.admin, space.name, Some("force=true".into()))
        .await
        .unwrap();
    assert_eq!(
        code_of(crate::items::show_item(&t.node, &t.admin, item.id.to_string()).await),
        ErrorCode::ItemNotFound
    );
}

/// The whole exchange of a peer connection up to approval, carried by hand: the code one way,
/// the response file back. A code is good once, and not for its own issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connection_is_requested_imported_and_approved_by_file() {
    let city = open("City GIS", "http://127.0.0.1:1");
    let harbor = open("Harbor Authority", "http://127.0.0.1:2");
    crate::spaces::create_space(&city.node, &city.admin, body(json!({"name": "roads"})))
        .await
        .unwrap();
    crate::spaces::create_space(&harbor.node, &harbor.admin, body(json!({"name": "inbox"})))
        .await
        .unwrap();
    let created = crate::peers::create_request(
        &city.node,
        &city.admin,
        body(json!({"space": "roads", "export": ["features"], "import": []})),
    )
    .await
    .unwrap();
    assert_eq!(
        code_of(
            crate::peers::import_code(&city.node, &city.admin, body(json!({"code": created.code})))
                .await
        ),
        ErrorCode::InviteOwn
    );
    let imported = crate::peers::import_code(
        &harbor.node,
        &harbor.admin,
        body(json!({"code": created.code})),
    )
    .await
    .unwrap();
    assert_eq!(imported.state, "imported");
    // Activation is the originator's, once approved.
    assert_eq!(
        code_of(crate::peers::activate(&harbor.node, &harbor.admin, imported.id.clone()).await),
        ErrorCode::PeerStateConflict
    );
    let approved = crate::peers::approve(
        &harbor.node,
        &harbor.admin,
        imported.id.clone(),
        body(json!({"space": "inbox", "response_file": true})),
    )
    .await
    .unwrap();
    let response = approved.response.expect("a response to carry");
    let answered = crate::peers::accept_response_file(
        &city.node,
        &city.admin,
        body(json!({"response": response})),
    )
    .await
    .unwrap();
    assert_eq!(answered.state, "approved");
    assert_eq!(
        answered.peer.as_ref().map(|p| p.title.as_str()),
        Some("Harbor Authority")
    );
    // A response file is accepted once; a tampered one is refused.
    assert_eq!(
        code_of(
            crate::peers::accept_response_file(
                &city.node,
                &city.admin,
                body(json!({"response": response}))
            )
            .await
        ),
        ErrorCode::InviteReused
    );
    let mut tampered = response.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        code_of(
            crate::peers::accept_response_file(
                &city.node,
                &city.admin,
                body(json!({"response": tampered}))
            )
            .await
        ),
        ErrorCode::ResponseTampered
    );
    let audit = crate::trust::list_audit(&city.node, &city.admin, None)
        .await
        .unwrap();
    let events: Vec<&str> = audit.iter().map(|e| e.event.as_str()).collect();
    assert!(
        events.contains(&"peer.requested") && events.contains(&"peer.approved"),
        "{events:?}"
    );
}

/// A collaboration from creation to a guest that joined by response file, and the host's
/// rules on modes and guests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_joins_a_collaboration_by_file_and_the_host_keeps_the_rules() {
    let host = open("City GIS", "http://127.0.0.1:1");
    let guest = open("Harbor Authority", "http://127.0.0.1:2");
    crate::spaces::create_space(&host.node, &host.admin, body(json!({"name": "coast"})))
        .await
        .unwrap();
    let collab = crate::collabs::host::create(
        &host.node,
        &host.admin,
        body(json!({"name": "Coast", "workspaces": [{"name": "Reports", "space": "coast"}]})),
    )
    .await
    .unwrap();
    assert_eq!(
        code_of(
            crate::collabs::host::invite(
                &host.node,
                &host.admin,
                collab.id.clone(),
                body(
                    json!({"guest_url": "http://127.0.0.1:2", "access": {"Reports": "sometimes"}})
                ),
            )
            .await
        ),
        ErrorCode::InvalidRequest
    );
    let invited = crate::collabs::host::invite(
        &host.node,
        &host.admin,
        collab.id.clone(),
        body(json!({"guest_url": "http://127.0.0.1:2", "access": {"Reports": "send"}})),
    )
    .await
    .unwrap();
    // Only the instance at the guest URL can accept, and never the host itself.
    let other = open("Pilots", "http://127.0.0.1:3");
    for (node, expected) in [
        (&other, ErrorCode::InviteWrongInstance),
        (&host, ErrorCode::InviteOwn),
    ] {
        let accepted = crate::collabs::guest::accept(
            &node.node,
            &node.admin,
            body(json!({"code": invited.code, "response_file": true})),
        )
        .await;
        assert_eq!(code_of(accepted), expected);
    }
    let preview = crate::collabs::guest::preview(
        &guest.node,
        &guest.admin,
        body(json!({"code": invited.code})),
    )
    .await
    .unwrap();
    assert_eq!(preview.collaboration, "Coast");
    let accepted = crate::collabs::guest::accept(
        &guest.node,
        &guest.admin,
        body(json!({"code": invited.code, "contact": "GIS desk", "response_file": true})),
    )
    .await
    .unwrap();
    let response = accepted.response.expect("a response to carry");
    let joined = crate::collabs::host::import_response(
        &host.node,
        &host.admin,
        collab.id.clone(),
        body(json!({"response": response})),
    )
    .await
    .unwrap();
    let guests: Vec<&str> = joined
        .collaboration
        .participants
        .iter()
        .filter(|p| p.role == "guest")
        .map(|p| p.title.as_str())
        .collect();
    assert_eq!(guests, ["Harbor Authority"]);
    // A response file joins once.
    let again = crate::collabs::host::import_response(
        &host.node,
        &host.admin,
        collab.id.clone(),
        body(json!({"response": response})),
    )
    .await;
    assert_eq!(code_of(again), ErrorCode::InviteReused);
    assert_eq!(
        code_of(
            crate::collabs::host::set_access(
                &host.node,
                &host.admin,
                collab.id.clone(),
                "Nobody Here".into(),
                body(json!({"access": {"Reports": "receive"}})),
            )
            .await
        ),
        ErrorCode::ParticipantNotFound
    );
    // A guest cannot act as host.
    let on_guest = crate::collabs::list_collabs(&guest.node, &guest.admin)
        .await
        .unwrap();
    assert_eq!(on_guest.len(), 1);
    assert_eq!(
        code_of(
            crate::collabs::host::delete(&guest.node, &guest.admin, on_guest[0].id.clone()).await
        ),
        ErrorCode::CollabHostOnly
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_names_the_links_it_knows() {
    let t = open("Harbor", "http://127.0.0.1:1");
    assert_eq!(
        code_of(
            crate::sync::status::sync_now(
                &t.node,
                &t.admin,
                body(json!({"link": "Nowhere/Nothing"}))
            )
            .await
        ),
        ErrorCode::LinkNotFound
    );
    assert!(
        crate::sync::status::sync_status(&t.node, &t.admin)
            .await
            .unwrap()
            .is_empty()
    );
}
