//! Peer connections: the originator's request (invite code, refresh, invalidate), the acceptor's
//! import and approval, activation, disable/enable/delete on either side, and the policy check.
//! Every step is audited in the transaction that makes it; the other instance hears of each
//! change over the signed federation channel.

use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::federation;
use crate::federation::policy::peer_flows;
use crate::ids::{hex_id, id_bytes, random, rfc3339, unix_now};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::CoreError;
use ferry_core::peering::{self, Event, Phase, Role, Status};
use ferry_proto::ticket::{DataTypes, Issuer, PeerOffer, PeerResponse, PeerTicket, TICKET_VERSION};
use ferry_proto::{
    AcceptPeerResponse, ApprovePeer, ErrorCode, ImportInviteCode, NewPeerRequest, PeerApproved,
    PeerChanged, PeerConnection, PeerDetail, PeerRequestCreated, PeerSends, PeerStateNotice,
    PendingSecurity, PolicyCheck, ProposeSecurity, RefreshPeerRequest, SecurityNotice,
};
use ferry_store::{NewAuditEntry, PeerIdentity, PeerRecord, StoreError};
use reqwest::Method;
use serde_json::json;

pub mod inbound;
mod records;

pub(crate) use records::{save_peer, view};

fn data_types(names: &[String]) -> Result<DataTypes, CoreError> {
    DataTypes::parse(&names.join(",")).map_err(CoreError::InvalidRequest)
}

fn audit(
    actor: &str,
    event: &str,
    record: &PeerRecord,
    detail: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        subject: Some(record.id.clone()),
        detail,
    }
}

/// Mints a fresh secret and expiry for an originator's record and renders its code.
fn issue_code(
    node: &Node,
    instance_id: &str,
    record: &mut PeerRecord,
    validity_secs: i64,
) -> String {
    let secret = random::<32>();
    let expires_at = unix_now() + validity_secs;
    record.secret = Some(blake3::hash(&secret).as_bytes().to_vec());
    record.expires_at = Some(expires_at);
    let request_id = id_bytes(&record.request_id);
    let offer = PeerOffer {
        version: TICKET_VERSION,
        request_id,
        issuer: Issuer {
            instance_id: instance_id.to_string(),
            title: node.info.title.clone(),
            url: node.info.public_url.clone(),
            public_key: node.identity.public_key(),
        },
        space_name: record.offered_space.clone(),
        export: record.sends,
        import: record.receives,
        expires_at,
        secret,
    };
    node.identity.issue_peer_ticket(&offer)
}

/// Creates a peer request on a local space and returns its invite code.
pub async fn create_request(
    node: &Node,
    caller: &Caller,
    new: NewPeerRequest,
) -> NodeResult<PeerRequestCreated> {
    caller.require(ferry_proto::Role::Admin)?;
    let sends = data_types(&new.export)?;
    let receives = data_types(&new.import)?;
    if sends.is_empty() && receives.is_empty() {
        return Err(CoreError::InvalidRequest(
            "a peer request exports or imports at least one data type: datasets, features or files"
                .into(),
        )
        .into());
    }
    let validity = match &new.expires_in {
        Some(text) => peering::parse_validity(text)?,
        None => peering::DEFAULT_VALIDITY_SECS,
    };
    let store = node.store.clone();
    let space_name = new.space.clone();
    let (space, instance) =
        blocking(move || Ok::<_, StoreError>((store.space(&space_name)?, store.instance()?)))
            .await?;
    let mut record = PeerRecord {
        id: uuid_v7(),
        role: Role::Originator,
        request_id: hex_id(),
        status: Status::new(Role::Originator),
        space: Some(space.name.clone()),
        offered_space: space.name,
        sends,
        receives,
        peer: None,
        secret: None,
        expires_at: None,
        security: Default::default(),
        pending_security: None,
        version: 0,
        created_at: rfc3339(unix_now()),
        updated_at: String::new(),
    };
    let code = issue_code(node, &instance.id, &mut record, validity);
    let entry = audit(
        &caller.name,
        "peer.requested",
        &record,
        json!({
            "space": record.offered_space, "export": sends.names(), "import": receives.names(), "expires_at": record.expires_at,
        }),
    );
    let store = node.store.clone();
    let stored = blocking(move || store.insert_peer(&record, &entry)).await?;
    Ok(PeerRequestCreated {
        connection: view(&stored),
        code,
    })
}

fn uuid_v7() -> String {
    ferry_proto::ItemId::generate().to_string()
}

async fn load(node: &Node, id: String) -> NodeResult<PeerRecord> {
    let store = node.store.clone();
    blocking(move || store.peer(&id)).await
}

/// Replaces an unanswered request's code: new secret, new expiry; the old code stops working.
pub async fn refresh_request(
    node: &Node,
    caller: &Caller,
    id: String,
    body: RefreshPeerRequest,
) -> NodeResult<PeerRequestCreated> {
    caller.require(ferry_proto::Role::Admin)?;
    let validity = match &body.expires_in {
        Some(text) => peering::parse_validity(text)?,
        None => peering::DEFAULT_VALIDITY_SECS,
    };
    let mut record = load(node, id).await?;
    if record.role != Role::Originator || record.status.phase != Phase::Requested {
        return Err(NodeError::new(
            ErrorCode::PeerStateConflict,
            format!(
                "only an unanswered request can be refreshed; this connection is {}",
                record.status.phase.as_str()
            ),
        ));
    }
    let store = node.store.clone();
    let instance = blocking(move || store.instance()).await?;
    let code = issue_code(node, &instance.id, &mut record, validity);
    let entry = audit(
        &caller.name,
        "peer.refreshed",
        &record,
        json!({"expires_at": record.expires_at}),
    );
    let saved = save_peer(node, record, entry).await?;
    Ok(PeerRequestCreated {
        connection: view(&saved),
        code,
    })
}

/// Withdraws an unanswered request; its code stops working.
pub async fn invalidate_request(
    node: &Node,
    caller: &Caller,
    id: String,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    record.status = peering::apply(record.role, record.status, Event::Invalidate)?;
    record.secret = None;
    let entry = audit(&caller.name, "peer.invalidated", &record, json!({}));
    Ok(view(&save_peer(node, record, entry).await?))
}

/// Checks an invite code and records what it offers. Nothing is sent to the issuer yet: the
/// admin reviews the details, then approves.
pub async fn import_code(
    node: &Node,
    caller: &Caller,
    body: ImportInviteCode,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    let offer = PeerTicket::parse(&body.code)
        .inspect_err(|e| {
            tracing::warn!(error = %e, "refused an invite code");
        })?
        .offer;
    let store = node.store.clone();
    let instance = blocking(move || store.instance()).await?;
    if offer.issuer.instance_id == instance.id
        || offer.issuer.public_key == node.identity.public_key()
    {
        return Err(NodeError::new(
            ErrorCode::InviteOwn,
            "this invite code was issued by this instance; enter it on the other instance",
        ));
    }
    let store = node.store.clone();
    let known = blocking(move || store.list_peers()).await?;
    let issuer = &offer.issuer;
    if let Some(pinned) = known
        .iter()
        .filter_map(|r| r.peer.as_ref())
        .find(|p| p.instance_id == issuer.instance_id && p.public_key != issuer.public_key)
    {
        return Err(NodeError::new(
            ErrorCode::InviteKeyMismatch,
            format!(
                "this code claims to come from '{}' (id {}) but carries another key than the one pinned for it (fingerprint {}); do not use it, and confirm with that instance's admin",
                issuer.title,
                issuer.instance_id,
                crate::instance::fingerprint(&pinned.public_key)
            ),
        ));
    }
    if offer.check_expiry(unix_now()).is_err() {
        return Err(NodeError::new(
            ErrorCode::InviteExpired,
            format!(
                "this invite code expired at {}; ask its issuer to refresh it",
                rfc3339(offer.expires_at)
            ),
        ));
    }
    let record = PeerRecord {
        id: uuid_v7(),
        role: Role::Acceptor,
        request_id: data_encoding::HEXLOWER.encode(&offer.request_id),
        status: Status::new(Role::Acceptor),
        space: None,
        offered_space: offer.space_name.clone(),
        // The mirror of the issuer's choice: what it exports, this side receives.
        sends: offer.import,
        receives: offer.export,
        peer: Some(PeerIdentity {
            instance_id: offer.issuer.instance_id.clone(),
            title: offer.issuer.title.clone(),
            url: offer.issuer.url.clone(),
            public_key: offer.issuer.public_key,
        }),
        secret: Some(offer.secret.to_vec()),
        expires_at: Some(offer.expires_at),
        security: Default::default(),
        pending_security: None,
        version: 0,
        created_at: rfc3339(unix_now()),
        updated_at: String::new(),
    };
    let entry = audit(
        &caller.name,
        "peer.code_imported",
        &record,
        json!({
            "issuer": offer.issuer.instance_id, "issuer_title": offer.issuer.title, "space": offer.space_name,
        }),
    );
    let store = node.store.clone();
    let request_id = record.request_id.clone();
    let record_issuer = &offer.issuer;
    let earlier = blocking(move || store.peer_by_request(Role::Acceptor, &request_id)).await?;
    let store = node.store.clone();
    let stored = match earlier {
        // A refreshed code for a request this side imported but never answered (or deleted
        // before answering): the new code takes the old one's place. Refresh exists for this.
        // The same code again is a reuse; an older one than the one held is refused.
        Some(earlier) if earlier.secret == record.secret => {
            return Err(NodeError::new(
                ErrorCode::InviteReused,
                "this invite code was imported already; `ferry peer list` shows its connection",
            ));
        }
        Some(earlier) if earlier.space.is_none() && earlier.expires_at >= record.expires_at => {
            return Err(NodeError::new(
                ErrorCode::InviteSuperseded,
                "a newer code for this request was imported already; use that one",
            ));
        }
        // Only the instance that issued the request refreshes its code.
        Some(earlier)
            if !earlier.peer.as_ref().is_some_and(|p| {
                p.instance_id == record_issuer.instance_id
                    && p.public_key == record_issuer.public_key
            }) =>
        {
            return Err(NodeError::new(
                ErrorCode::InviteKeyMismatch,
                "this code names a request another instance issued; do not use it, and confirm with the instance that sent it",
            ));
        }
        Some(earlier) if earlier.space.is_none() => {
            let renewed = PeerRecord {
                id: earlier.id.clone(),
                version: earlier.version,
                created_at: earlier.created_at.clone(),
                ..record
            };
            let entry = NewAuditEntry {
                event: "peer.code_reimported".into(),
                subject: Some(earlier.id),
                ..entry
            };
            blocking(move || store.update_peer(&renewed, &entry)).await?
        }
        _ => blocking(move || store.insert_peer(&record, &entry)).await?,
    };
    Ok(view(&stored))
}

/// Every peer connection of this instance, in every node.
pub async fn list_peers(node: &Node, caller: &Caller) -> NodeResult<Vec<PeerConnection>> {
    caller.require(ferry_proto::Role::Admin)?;
    let store = node.store.clone();
    let records = blocking(move || store.list_peers()).await?;
    Ok(records.iter().map(view).collect())
}

pub async fn show_peer(node: &Node, caller: &Caller, id: String) -> NodeResult<PeerDetail> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    let store = node.store.clone();
    let subject = record.id.clone();
    let history = blocking(move || store.audit_of(&subject)).await?;
    Ok(PeerDetail {
        connection: view(&record),
        history,
    })
}

fn conflict(message: impl Into<String>) -> NodeError {
    NodeError::new(ErrorCode::PeerStateConflict, message)
}

fn peer_of(record: &PeerRecord) -> NodeResult<PeerIdentity> {
    record
        .peer
        .clone()
        .ok_or_else(|| conflict("the other instance of this connection is not known yet"))
}

/// Approves an imported code: picks the receiving space and security, and answers the originator
/// online, or returns the signed response for a file.
pub async fn approve(
    node: &Node,
    caller: &Caller,
    id: String,
    body: ApprovePeer,
) -> NodeResult<PeerApproved> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    if record.role != Role::Acceptor {
        return Err(conflict(
            "only the instance that imported the code approves; the originator activates",
        ));
    }
    let status = peering::apply(record.role, record.status, Event::Approve)?;
    if record.expires_at.is_some_and(|t| unix_now() >= t) {
        return Err(NodeError::new(
            ErrorCode::InviteExpired,
            "the invite code expired; ask its issuer to refresh it",
        ));
    }
    ferry_core::names::check_markings(body.security.ceiling.as_deref().unwrap_or_default())?;
    ferry_core::names::check_markings(&body.security.mark)?;
    let store = node.store.clone();
    let space_name = body.space.clone();
    let (space, instance) =
        blocking(move || Ok::<_, StoreError>((store.space(&space_name)?, store.instance()?)))
            .await?;
    let peer = peer_of(&record)?;
    let response = signed_response(node, &record, instance.id)?;
    if !body.response_file {
        let answer: Result<PeerConnection, _> = node
            .federation
            .call(
                crate::federation::Callee::of(&peer, peer_flows(&record)),
                Method::POST,
                federation::RESPONSES_PATH,
                &AcceptPeerResponse {
                    response: response.clone(),
                },
            )
            .await;
        answer?;
    }
    record.status = status;
    record.space = Some(space.name.clone());
    record.security = body.security.clone();
    // Answered online, the secret served its purpose. Answered by file, it stays until the
    // originator activates, so the file can be downloaded again if it is lost on the way.
    if !body.response_file {
        record.secret = None;
    }
    let entry = audit(
        &caller.name,
        "peer.approved",
        &record,
        json!({
            "space": space.name, "security": body.security, "delivery": if body.response_file { "file" } else { "online" },
        }),
    );
    let saved = save_peer(node, record, entry).await?;
    Ok(PeerApproved {
        connection: view(&saved),
        response: body.response_file.then_some(response),
    })
}

/// The acceptor's signed answer to the code: the request, who answers, and the code's secret
/// as proof of holding it. Signing is deterministic, so the same record gives the same file.
fn signed_response(node: &Node, record: &PeerRecord, instance_id: String) -> NodeResult<String> {
    let secret = record
        .secret
        .as_deref()
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or_else(|| conflict("this connection no longer holds the code's secret"))?;
    Ok(PeerResponse {
        version: TICKET_VERSION,
        request_id: id_bytes(&record.request_id),
        acceptor: Issuer {
            instance_id,
            title: node.info.title.clone(),
            url: node.info.public_url.clone(),
            public_key: node.identity.public_key(),
        },
        secret,
    }
    .issue(node.identity.signing_key()))
}

/// The response file of a connection approved for delivery by file, again: until the
/// originator activates, its admin may need it once more.
pub async fn response_file(node: &Node, caller: &Caller, id: String) -> NodeResult<String> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    if !records::awaits_response_file(&record) {
        return Err(conflict(
            "this connection has no response file to give: only a request approved with a response file has one, until the originator activates it",
        ));
    }
    let store = node.store.clone();
    let instance = blocking(move || store.instance()).await?;
    signed_response(node, &record, instance.id)
}

/// Imports a response file from the instance that approved one of this instance's requests.
pub async fn accept_response_file(
    node: &Node,
    caller: &Caller,
    body: AcceptPeerResponse,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    let response = PeerResponse::parse(&body.response).map_err(|e| {
        crate::error::response_error(
            e,
            ferry_proto::ticket::PEER_RESPONSE_PREFIX,
            "the approving instance's admin",
        )
    })?;
    let check = inbound::check_response(node, &response).await?;
    if matches!(check, inbound::ResponseCheck::Repeated(_)) {
        return Err(NodeError::new(
            ErrorCode::InviteReused,
            "this response was already accepted",
        ));
    }
    Ok(view(
        &inbound::apply_response(node, &response, check, &caller.name).await?,
    ))
}

/// Activates an approved connection and tells the other instance; until then no data flows.
pub async fn activate(node: &Node, caller: &Caller, id: String) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    let status = peering::apply(record.role, record.status, Event::Activate)?;
    notify(node, &record, "activated").await?;
    record.status = status;
    // The code's secret served its purpose: once active, no response is accepted again.
    record.secret = None;
    let entry = audit(&caller.name, "peer.activated", &record, json!({}));
    let saved = save_peer(node, record, entry).await?;
    // What each side already holds goes now: this side pulls, and asks the other to.
    crate::sync::link_changed(
        node,
        crate::sync::Link::Peer {
            id: saved.id.clone(),
        },
    )
    .await;
    Ok(view(&saved))
}

/// Tells the other instance of a change, over the signed federation channel.
async fn notify(node: &Node, record: &PeerRecord, event: &str) -> NodeResult<()> {
    let peer = peer_of(record)?;
    let notice = PeerStateNotice {
        request_id: record.request_id.clone(),
        event: event.to_string(),
    };
    let _: PeerConnection = node
        .federation
        .call(
            crate::federation::Callee::of(&peer, peer_flows(record)),
            Method::POST,
            federation::STATE_PATH,
            &notice,
        )
        .await?;
    Ok(())
}

/// Applies a local change, then tells the other side; the change stands even if it cannot be told.
async fn change(
    node: &Node,
    caller: &str,
    id: String,
    event: Event,
    name: &str,
) -> NodeResult<PeerChanged> {
    let mut record = load(node, id).await?;
    // Only a connection both sides completed is known to the other side: nobody to tell before.
    let known_there = record.status.phase.is_established();
    record.status = peering::apply(record.role, record.status, event)?;
    if record.status.phase.is_final() {
        record.secret = None;
    }
    let entry = audit(caller, &format!("peer.{name}"), &record, json!({}));
    let saved = save_peer(node, record, entry).await?;
    let told = if known_there {
        notify(node, &saved, name).await.map_err(|e| e.0.message)
    } else {
        Err("the other instance does not know this connection yet".to_string())
    };
    // Enabled again: what changed meanwhile goes now.
    if event == Event::Enable && saved.status.carries_data() {
        crate::sync::link_changed(
            node,
            crate::sync::Link::Peer {
                id: saved.id.clone(),
            },
        )
        .await;
    }
    Ok(PeerChanged {
        connection: view(&saved),
        notified: told.is_ok(),
        notice_error: told.err(),
    })
}

pub async fn disable(node: &Node, caller: &Caller, id: String) -> NodeResult<PeerChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    change(node, &caller.name, id, Event::Disable, "disabled").await
}

pub async fn enable(node: &Node, caller: &Caller, id: String) -> NodeResult<PeerChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    change(node, &caller.name, id, Event::Enable, "enabled").await
}

/// Deletes the connection here; the other instance revokes its copy and stops accepting this
/// instance's key for it.
pub async fn delete(node: &Node, caller: &Caller, id: String) -> NodeResult<PeerChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    change(node, &caller.name, id, Event::Delete, "deleted").await
}

/// Checks both instances' policies for this connection: for each direction it carries, the
/// sender's egress to the receiver and the receiver's ingress from the sender.
pub async fn check(node: &Node, caller: &Caller, id: String) -> NodeResult<PolicyCheck> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    let peer = peer_of(&record)?;
    let flows = peer_flows(&record);
    // Before approval nothing goes to the other instance (it does not know this one yet): only
    // this side's rules are checked. Once it knew, asking tells the admin what it says now.
    let ask_peer = if matches!(
        record.status.phase,
        Phase::Requested | Phase::Imported | Phase::Invalidated
    ) {
        federation::admission::AskPeer::No
    } else {
        federation::admission::AskPeer::Yes
    };
    let findings = federation::admission::check_flows(node, &peer, flows, ask_peer).await;
    Ok(PolicyCheck {
        ok: findings.iter().all(|f| f.ok),
        findings,
    })
}

async fn send_security(
    node: &Node,
    record: &PeerRecord,
    notice: &SecurityNotice,
) -> NodeResult<()> {
    let peer = peer_of(record)?;
    let _: PeerConnection = node
        .federation
        .call(
            crate::federation::Callee::of(&peer, peer_flows(record)),
            Method::POST,
            federation::SECURITY_PATH,
            notice,
        )
        .await?;
    Ok(())
}

/// Narrows the data types this side sends. Fewer is this side's own decision; more would need
/// the other side's approval, so it is refused. Items of a type no longer sent leave the
/// other side's view: its next run starts a full pass (the scope changed) that retracts them.
pub async fn narrow_sends(
    node: &Node,
    caller: &Caller,
    id: String,
    body: PeerSends,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    let sends = data_types(&body.sends)?;
    let mut record = load(node, id).await?;
    if !matches!(record.status.phase, Phase::Approved | Phase::Active) {
        return Err(conflict(
            "what a connection sends changes once it is approved; before, the code says it",
        ));
    }
    let was = record.sends;
    if sends.is_empty() {
        return Err(CoreError::InvalidRequest(
            "a connection sends at least one data type; to send nothing, disable the connection (`ferry peer disable`) or delete it".into(),
        )
        .into());
    }
    if !sends.is_within(was) {
        return Err(conflict(format!(
            "this connection was approved to send {}; to send more, create a new connection",
            list_or_nothing(was)
        )));
    }
    record.sends = sends;
    let entry = audit(
        &caller.name,
        "peer.sends_narrowed",
        &record,
        json!({"from": was.names(), "to": sends.names()}),
    );
    let saved = save_peer(node, record, entry).await?;
    crate::sync::poke_receivers(
        node,
        &crate::sync::Link::Peer {
            id: saved.id.clone(),
        },
    )
    .await;
    Ok(view(&saved))
}

fn list_or_nothing(types: DataTypes) -> String {
    match types.names() {
        names if names.is_empty() => "nothing".into(),
        names => names.join(", "),
    }
}

/// Proposes new security settings for this side. They take effect only once the other side's
/// admin approves (`ferry peer approve-change`).
pub async fn propose_security(
    node: &Node,
    caller: &Caller,
    id: String,
    body: ProposeSecurity,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    ferry_core::names::check_markings(body.security.ceiling.as_deref().unwrap_or_default())?;
    ferry_core::names::check_markings(&body.security.mark)?;
    let mut record = load(node, id).await?;
    if !matches!(record.status.phase, Phase::Approved | Phase::Active) {
        return Err(conflict(
            "security changes apply to approved or active connections",
        ));
    }
    if record.pending_security.is_some() {
        return Err(conflict(
            "a security change is already waiting; approve or reject it first",
        ));
    }
    let change_id = uuid_v7();
    let notice = SecurityNotice {
        request_id: record.request_id.clone(),
        change_id: change_id.clone(),
        action: "proposed".into(),
        security: Some(body.security.clone()),
    };
    send_security(node, &record, &notice).await?;
    record.pending_security = Some(PendingSecurity {
        change_id,
        proposed_by: "here".into(),
        security: body.security.clone(),
    });
    let entry = audit(
        &caller.name,
        "peer.security_change_requested",
        &record,
        json!({"security": body.security}),
    );
    Ok(view(&save_peer(node, record, entry).await?))
}

async fn decide_security(
    node: &Node,
    caller: &str,
    id: String,
    approve: bool,
) -> NodeResult<PeerConnection> {
    let mut record = load(node, id).await?;
    let pending = record
        .pending_security
        .clone()
        .filter(|p| p.proposed_by == "there")
        .ok_or_else(|| {
            conflict("no security change from the other side is waiting on this connection")
        })?;
    let action = if approve { "approved" } else { "rejected" };
    let notice = SecurityNotice {
        request_id: record.request_id.clone(),
        change_id: pending.change_id.clone(),
        action: action.into(),
        security: None,
    };
    send_security(node, &record, &notice).await?;
    record.pending_security = None;
    let entry = audit(
        caller,
        &format!("peer.security_change_{action}"),
        &record,
        json!({"security": pending.security}),
    );
    Ok(view(&save_peer(node, record, entry).await?))
}

/// Approves the other side's proposed security settings; they take effect there at once.
pub async fn approve_security(
    node: &Node,
    caller: &Caller,
    id: String,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    decide_security(node, &caller.name, id, true).await
}

/// Rejects the other side's proposed security settings; its current settings stay.
pub async fn reject_security(
    node: &Node,
    caller: &Caller,
    id: String,
) -> NodeResult<PeerConnection> {
    caller.require(ferry_proto::Role::Admin)?;
    decide_security(node, &caller.name, id, false).await
}
