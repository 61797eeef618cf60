//! Network policy applied to this instance's calls and data: whether data may move to or from
//! a party now, whether a caller could be admitted before its body is read, and the check a
//! person runs on a link (`peer check`, `collab check`).

use super::client::{Callee, FederationError};
use super::policy::{
    Audience, Party, addresses_of, admit_call, missing, permitted, refusal, rules,
};
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::policy::{Decision, Direction, Flows, judge};
use ferry_proto::{ErrorCode, PolicyFinding};
use ferry_store::PeerIdentity;
use std::net::IpAddr;

/// Whether data may move in `direction` (egress: from this instance to `party`; ingress: from
/// `party` here) under this instance's rules now; the refusal is for `party` to read.
pub(crate) async fn data_permitted(
    node: &Node,
    party: &Party,
    direction: Direction,
) -> NodeResult<()> {
    let rules = rules(&node.store).await;
    let verdict = judge(&rules, &party.address());
    match verdict.on(direction) {
        Decision::Allowed(_) => Ok(()),
        decision => Err(refusal(
            &node.info.title,
            party,
            &[(direction, decision)],
            Audience::Caller,
        )),
    }
}

/// Whether the rules could admit a caller at all, on what is known before its signature is
/// checked: the instance it claims to be and its address. A caller the rules refuse outright,
/// and that this instance has no relation with, is turned away without its body being read. A
/// caller this instance knows is judged once verified, where the refusal can name it and the
/// links' directions; so is any caller when a host rule exists (a host is known only then).
pub(crate) async fn could_admit(node: &Node, claimed: &str, ip: Option<IpAddr>) -> NodeResult<()> {
    let rules = rules(&node.store).await;
    let party = Party {
        title: match ip {
            Some(ip) => format!("the caller at {ip}"),
            None => "the caller".into(),
        },
        instance_id: claimed.to_string(),
        host: None,
        ip,
    };
    let host_rules = rules.iter().any(|r| {
        r.effect == ferry_core::policy::Effect::Allow
            && matches!(r.matcher, ferry_core::policy::Matcher::Host(_))
    });
    let refused = match admit_call(
        &rules,
        &node.info.title,
        &party,
        Flows::BOTH,
        Audience::Caller,
    ) {
        Ok(()) => return Ok(()),
        Err(_) if host_rules => return Ok(()),
        Err(refused) => refused,
    };
    let store = node.store.clone();
    let claimed = claimed.to_string();
    let known = blocking(move || {
        let peer = store
            .list_peers()?
            .into_iter()
            .any(|p| p.peer.as_ref().is_some_and(|p| p.instance_id == claimed));
        let collab = || -> Result<bool, ferry_store::StoreError> {
            Ok(store.list_collabs()?.iter().any(|c| {
                c.host.instance_id == claimed
                    || c.participants
                        .iter()
                        .any(|p| p.instance() == Some(claimed.as_str()))
            }))
        };
        Ok::<_, ferry_store::StoreError>(peer || collab()?)
    })
    .await?;
    if known { Ok(()) } else { Err(refused) }
}

/// Both instances' rules for the flows between this instance and `peer`: per direction, the
/// sender's egress and the receiver's ingress. This instance's rules are read here; the peer's
/// come from its answer to a probe (or, if it refuses the probe on policy, from the refusal).
pub(crate) async fn check_flows(
    node: &Node,
    peer: &PeerIdentity,
    flows: Flows,
    ask_peer: AskPeer,
) -> Vec<PolicyFinding> {
    let here = node.info.title.as_str();
    let there = peer.title.as_str();
    // Address rules match where the peer is: its first address.
    let first = addresses_of(&peer.url)
        .await
        .ok()
        .and_then(|a| a.first().copied());
    let party = Party::of(peer, first);
    let me = Party::new(here, &node.info.instance_id, &node.info.public_url, None);
    let rules = rules(&node.store).await;
    let verdict = judge(&rules, &party.address());
    let theirs = match ask_peer {
        AskPeer::Yes => Some(probe(node, peer).await),
        AskPeer::No => None,
    };
    let mut findings = Vec::new();
    for direction in flows.directions() {
        let flow = match direction {
            Direction::Egress => format!("{here} -> {there}"),
            Direction::Ingress => format!("{there} -> {here}"),
        };
        let decision = verdict.on(direction);
        findings.push(PolicyFinding {
            flow: flow.clone(),
            instance: here.to_string(),
            rule: direction.as_str().into(),
            ok: decision.is_allowed(),
            message: match decision {
                Decision::Allowed(_) => permitted(here, &party, direction),
                refused => missing(here, &party, direction, refused),
            },
        });
        // The same flow needs the opposite rule over there.
        let their_direction = match direction {
            Direction::Egress => Direction::Ingress,
            Direction::Ingress => Direction::Egress,
        };
        let Some(theirs) = &theirs else {
            continue;
        };
        let (ok, message) = match theirs {
            Ok(allowed) if allowed(their_direction) => {
                (true, permitted(there, &me, their_direction))
            }
            Ok(_) => (
                false,
                missing(there, &me, their_direction, &Decision::NoRule),
            ),
            Err(why) => (
                false,
                format!(
                    "the {} rule of '{there}' could not be checked: {why}",
                    their_direction.as_str()
                ),
            ),
        };
        findings.push(PolicyFinding {
            flow,
            instance: there.to_string(),
            rule: their_direction.as_str().into(),
            ok,
            message,
        });
    }
    findings
}

/// Whether a policy check asks the other instance for its side. Not before a connection is
/// approved: until then nothing goes to it (it would not know this instance anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AskPeer {
    Yes,
    No,
}

/// Asks `peer` which directions its rules permit with this instance. A refusal on policy means
/// its rules permit none of the directions `flows` carries. The probe carries no data, so this
/// instance's own rules do not stop it (a check must report them, not be stopped by them); only
/// where it goes is judged.
async fn probe(node: &Node, peer: &PeerIdentity) -> Result<impl Fn(Direction) -> bool, String> {
    let answer: Result<serde_json::Value, FederationError> = node
        .federation
        .call(
            Callee::probe(peer),
            reqwest::Method::POST,
            super::paths::PROBE_PATH,
            &serde_json::json!({}),
        )
        .await;
    let (ingress, egress) = match answer {
        Ok(answer) => (
            answer["ingress_from_caller"].as_bool() == Some(true),
            answer["egress_to_caller"].as_bool() == Some(true),
        ),
        Err(FederationError::Refused { error, .. })
            if matches!(
                error.code,
                ErrorCode::IngressDenied | ErrorCode::EgressDenied | ErrorCode::PolicyDenied
            ) =>
        {
            (false, false)
        }
        Err(e) => return Err(NodeError::from(e).0.message),
    };
    Ok(move |direction| match direction {
        Direction::Ingress => ingress,
        Direction::Egress => egress,
    })
}
