//! `/federation/v1`: what other Ferry instances ask of this one, and the client this instance
//! calls them with. Every request is signed (`ferry_proto::signing`); [`SignedByPeer::check`]
//! checks signature, clock, nonce, connection state and ingress policy before any operation
//! runs. The HTTP routes are the server's.

mod client;
pub mod collabs;
pub mod inbound;
pub mod policy;
mod refusals;

pub(crate) use client::{
    Callee, FederationClient, FederationError, Transport, read_bounded, transport_warning,
};
pub use inbound::{Incoming, RequestHead, SignedByPeer, json_body};
pub(crate) use inbound::{ResponseCheck, apply_response, check_response};
pub(crate) use refusals::RefusalLog;

use crate::node::Node;
use ferry_core::policy::{Direction, Effect, Matcher, Rule};
use ferry_proto::{InstanceIdentity, PolicyRule};

pub const RESPONSES_PATH: &str = "/federation/v1/peer/responses";
pub const STATE_PATH: &str = "/federation/v1/peer/state";
pub const PROBE_PATH: &str = "/federation/v1/probe";
pub const SECURITY_PATH: &str = "/federation/v1/peer/security";
pub const COLLAB_RESPONSES_PATH: &str = "/federation/v1/collab/responses";
pub const COLLAB_SNAPSHOT_PATH: &str = "/federation/v1/collab/snapshot";
pub const COLLAB_FETCH_PATH: &str = "/federation/v1/collab/fetch";
pub const COLLAB_LEAVE_PATH: &str = "/federation/v1/collab/leave";
pub const IDENTITY_PATH: &str = "/federation/v1/identity";
pub const SYNC_PULL_PATH: &str = "/federation/v1/sync/pull";
pub const SYNC_ITEM_PATH: &str = "/federation/v1/sync/item";
pub const SYNC_CHUNK_PATH: &str = "/federation/v1/sync/chunk";
pub const SYNC_POKE_PATH: &str = "/federation/v1/sync/poke";
pub const SYNC_ROWS_PATH: &str = "/federation/v1/sync/rows";

/// Answers that are streams, not control answers: sync streams sign themselves batch by batch,
/// and a chunk is checked against the hash its signed file description gives.
pub const STREAM_PATHS: [&str; 3] = [SYNC_PULL_PATH, SYNC_ITEM_PATH, SYNC_CHUNK_PATH];

/// The largest control answer signed (and so sent): most are a few KiB, a page of reference rows
/// at most what a reader takes of one (`reference::ROWS_ANSWER_BYTES`).
pub const MAX_SIGNED_ANSWER: usize = 32 << 20;

/// Writes a refused call to the audit log, as [`RefusalLog`] allows: the first of its source and
/// code in a minute, and summaries of the minutes before.
async fn record_refusal(state: &Node, refusal: refusals::Refusal) {
    let minute = jiff::Timestamp::now().as_second().div_euclid(60);
    write_audit(state, state.refusals.note(refusal, minute)).await;
}

/// Writes the summaries of refusals repeated in minutes that are over (`None`: all, at
/// shutdown).
pub async fn flush_refusals(state: &Node, all: bool) {
    let minute = (!all).then(|| jiff::Timestamp::now().as_second().div_euclid(60));
    write_audit(state, state.refusals.flush(minute)).await;
}

async fn write_audit(state: &Node, entries: Vec<ferry_store::NewAuditEntry>) {
    if entries.is_empty() {
        return;
    }
    let store = state.store.clone();
    let written =
        crate::node::blocking(move || entries.iter().try_for_each(|entry| store.audit(entry)))
            .await;
    if let Err(e) = written {
        tracing::warn!(error = ?e, "could not record refused federation calls");
    }
}

/// Who this instance is: public facts, answered to anyone.
pub fn identity(state: &Node) -> InstanceIdentity {
    InstanceIdentity {
        instance_id: state.info.instance_id.clone(),
        title: state.info.title.clone(),
        public_key: state.info.public_key.clone(),
    }
}

/// A stored policy rule as the evaluator's rule (rules are stored in canonical form).
pub fn rule_of(rule: &PolicyRule) -> Option<Rule> {
    Some(Rule {
        id: rule.id.clone(),
        direction: match rule.direction.as_str() {
            "ingress" => Direction::Ingress,
            _ => Direction::Egress,
        },
        effect: match rule.effect.as_str() {
            "deny" => Effect::Deny,
            _ => Effect::Allow,
        },
        matcher: Matcher::parse(&rule.pattern).ok()?,
    })
}
