//! A connection as stored, and as people and the other instance see it.

use crate::error::NodeResult;
use crate::federation;
use crate::ids::rfc3339;
use crate::node::Node;
use crate::task::blocking;
use ferry_core::peering::{Phase, Role};
use ferry_proto::{PeerConnection, PeerInfo};
use ferry_store::{NewAuditEntry, PeerRecord};

/// An acceptor that approved by file holds the code's secret until the originator activates:
/// its response file can be made again.
pub(crate) fn awaits_response_file(record: &PeerRecord) -> bool {
    record.role == Role::Acceptor
        && record.status.phase == Phase::Approved
        && record.secret.is_some()
}

/// The wire view of a record.
pub(crate) fn view(record: &PeerRecord) -> PeerConnection {
    PeerConnection {
        id: record.id.clone(),
        role: record.role.as_str().to_string(),
        request_id: record.request_id.clone(),
        state: record.status.phase.as_str().to_string(),
        disabled_here: record.status.disabled_here,
        disabled_there: record.status.disabled_there,
        carries_data: record.status.carries_data(),
        space: record.space.clone(),
        offered_space: record.offered_space.clone(),
        sends: record.sends.names().iter().map(|s| s.to_string()).collect(),
        receives: record
            .receives
            .names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        peer: record.peer.as_ref().map(|p| PeerInfo {
            instance_id: p.instance_id.clone(),
            title: p.title.clone(),
            url: p.url.clone(),
            fingerprint: crate::instance::fingerprint(&p.public_key),
        }),
        expires_at: record.expires_at.map(rfc3339),
        security: record.security.clone(),
        pending_security: record.pending_security.clone(),
        response_file_ready: awaits_response_file(record),
        created_at: record.created_at.clone(),
        updated_at: record.updated_at.clone(),
        warnings: record
            .peer
            .iter()
            .filter_map(|p| federation::transport_warning(&p.title, &p.url))
            .collect(),
    }
}

pub(crate) async fn save_peer(
    node: &Node,
    record: PeerRecord,
    entry: NewAuditEntry,
) -> NodeResult<PeerRecord> {
    let store = node.store.clone();
    blocking(move || store.update_peer(&record, &entry)).await
}
