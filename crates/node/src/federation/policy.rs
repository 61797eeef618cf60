//! Network policy on federation traffic, in the terms of `ferry_core::policy`: data from S to R
//! needs S's egress to R and R's ingress from S. Calls are admitted when data may flow between
//! the two in some direction their links carry; data is judged per direction where it moves:
//! the sender before serving anything ([`data_permitted`] with egress), the receiver before it
//! asks for anything (its calls to the sender carry [`Flows::RECEIVES`], so the client's check
//! is an ingress check). Rules are read at every call: a change takes effect at the next one.

use super::{Callee, FederationError};
use crate::error::{NodeError, NodeResult};
use crate::node::{Node, blocking};
use ferry_core::collab::{self, AccessMode, CollabRole, Participant};
use ferry_core::policy::{Decision, Direction, Flows, PeerAddress, Rule, judge};
use ferry_proto::{ErrorCode, PolicyFinding};
use ferry_store::{CollabRecord, PeerIdentity, PeerRecord, Store};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// This instance's rules (none if they cannot be read: then nothing is allowed).
pub(crate) async fn rules(store: &Arc<dyn Store>) -> Vec<Rule> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.list_policy_rules())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
        .iter()
        .filter_map(super::rule_of)
        .collect()
}

/// The other instance of a call or of data, as rules match it.
#[derive(Debug, Clone)]
pub(crate) struct Party {
    pub(crate) title: String,
    pub(crate) instance_id: String,
    /// The host name of its URL, lower case.
    pub(crate) host: Option<String>,
    /// Its address: where its call came from, or the address its URL names.
    pub(crate) ip: Option<IpAddr>,
}

impl Party {
    pub(crate) fn new(title: &str, instance_id: &str, url: &str, ip: Option<IpAddr>) -> Party {
        let host = host_of(url);
        let literal = host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
        Party {
            title: title.to_string(),
            instance_id: instance_id.to_string(),
            ip: ip.or(literal).map(|ip| ip.to_canonical()),
            host,
        }
    }

    pub(crate) fn of(peer: &PeerIdentity, ip: Option<IpAddr>) -> Party {
        Party::new(&peer.title, &peer.instance_id, &peer.url, ip)
    }

    pub(crate) fn address(&self) -> PeerAddress<'_> {
        PeerAddress {
            instance_id: Some(&self.instance_id),
            ip: self.ip,
            host: self.host.as_deref(),
        }
    }
}

/// The addresses a peer URL leads to: its literal address, or what its name resolves to.
pub(crate) async fn addresses_of(url: &str) -> Result<Vec<IpAddr>, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = host_of(url).ok_or("not a URL with a host")?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip.to_canonical()]);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let found = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    Ok(found.map(|a| a.ip().to_canonical()).collect())
}

/// The host of a URL, lower case, without brackets or a trailing dot.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(
        url.host_str()?
            .trim_matches(['[', ']'])
            .trim_end_matches('.')
            .to_ascii_lowercase(),
    )
}

/// Who reads a refusal: this instance's own people see which rule decided; another instance
/// learns only which rule is missing, nothing of this instance's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Here,
    Caller,
}

/// Whether `here`'s rules let a call with `party` happen for links carrying `flows`: data must
/// be allowed to move in at least one of those directions.
pub(crate) fn admit_call(
    rules: &[Rule],
    here: &str,
    party: &Party,
    flows: Flows,
    audience: Audience,
) -> NodeResult<()> {
    // A relation that carries no data now (a guest with no access left) still needs calls to
    // say so: either rule admits them.
    let flows = match flows.is_empty() {
        true => Flows::BOTH,
        false => flows,
    };
    let verdict = judge(rules, &party.address());
    if verdict.permits_any(flows) {
        return Ok(());
    }
    Err(refusal(here, party, &verdict.refused(flows), audience))
}

/// Whether data may move in `direction` (egress: from this instance to `party`; ingress: from
/// `party` here) under this instance's rules now; the refusal is for `party` to read.
pub(crate) async fn data_permitted(
    state: &Node,
    party: &Party,
    direction: Direction,
) -> NodeResult<()> {
    let rules = rules(&state.store).await;
    let verdict = judge(&rules, &party.address());
    match verdict.on(direction) {
        Decision::Allowed(_) => Ok(()),
        decision => Err(refusal(
            &state.info.title,
            party,
            &[(direction, decision)],
            Audience::Caller,
        )),
    }
}

/// The refusal for directions these rules refuse: `egress_denied` or `ingress_denied` naming the
/// instance and the rule; `policy_denied` when both directions of a link are refused.
pub(crate) fn refusal(
    here: &str,
    party: &Party,
    refused: &[(Direction, &Decision<'_>)],
    audience: Audience,
) -> NodeError {
    let code = match refused {
        [(Direction::Egress, _)] => ErrorCode::EgressDenied,
        [(Direction::Ingress, _)] => ErrorCode::IngressDenied,
        _ => ErrorCode::PolicyDenied,
    };
    let sentences: Vec<String> = refused
        .iter()
        .map(|(direction, decision)| match audience {
            Audience::Here => missing(here, party, *direction, decision),
            Audience::Caller => missing(here, party, *direction, &Decision::NoRule),
        })
        .collect();
    NodeError::new(code, sentences.join("; and "))
}

/// One instance's rule refusing one direction, in the words of the policy model, with what to
/// run about it. `decision` is [`Decision::NoRule`] when the rules are another instance's.
pub(crate) fn missing(
    here: &str,
    party: &Party,
    direction: Direction,
    decision: &Decision<'_>,
) -> String {
    let (verb, way) = match direction {
        Direction::Egress => ("egress", "to"),
        Direction::Ingress => ("ingress", "from"),
    };
    let other = format!(
        "'{}' (instance {})",
        party.title,
        truncated(&party.instance_id)
    );
    match decision {
        Decision::Denied(rule) => format!(
            "'{here}' denies {verb} {way} {other} by rule {} ({}): its admin can run `ferry policy {verb} remove {}`",
            rule.id,
            rule.matcher.render(),
            rule.id
        ),
        _ => format!(
            "'{here}' does not permit {verb} {way} {other}: its admin can run `ferry policy {verb} allow instance:{}`",
            truncated(&party.instance_id)
        ),
    }
}

/// What `here`'s rule permitting `direction` says, for checks.
pub(crate) fn permitted(here: &str, party: &Party, direction: Direction) -> String {
    match direction {
        Direction::Egress => format!("'{here}' permits egress to '{}'", party.title),
        Direction::Ingress => format!("'{here}' permits ingress from '{}'", party.title),
    }
}

/// An id from a caller, cut short before it is quoted back.
fn truncated(id: &str) -> String {
    super::refusals::truncated(id)
}

/// The directions a peer connection carries, from this side.
pub(crate) fn peer_flows(record: &PeerRecord) -> Flows {
    Flows {
        sends: !record.sends.is_empty(),
        receives: !record.receives.is_empty(),
    }
}

/// The directions a collaboration carries between this instance and `other` (an instance id),
/// over all its workspaces: a guest and its host, or a host and one guest.
pub(crate) fn collab_flows(record: &CollabRecord, other: &str) -> Flows {
    let mode_of = |participant: &str, workspace: &ferry_store::WorkspaceRecord| {
        workspace
            .modes
            .get(participant)
            .and_then(|m| AccessMode::parse(m).ok())
    };
    let mut flows = Flows::default();
    match record.role {
        CollabRole::Guest if record.host.instance_id == other => {
            for workspace in &record.workspaces {
                if let Some(mode) = mode_of(&record.self_participant, workspace) {
                    flows = flows.union(collab::flows(Participant::Guest(mode), Participant::Host));
                }
            }
        }
        CollabRole::Guest => {}
        CollabRole::Host => {
            let guests = record
                .participants
                .iter()
                .filter(|p| p.instance() == Some(other));
            for guest in guests {
                for workspace in &record.workspaces {
                    if let Some(mode) = mode_of(&guest.id, workspace) {
                        flows =
                            flows.union(collab::flows(Participant::Host, Participant::Guest(mode)));
                    }
                }
            }
        }
    }
    flows
}

/// The directions an invitation offers, seen from its host: workspace id to mode.
pub(crate) fn invitation_flows(access: &BTreeMap<String, String>) -> Flows {
    access
        .values()
        .filter_map(|m| AccessMode::parse(m).ok())
        .map(|mode| collab::flows(Participant::Host, Participant::Guest(mode)))
        .fold(Flows::default(), Flows::union)
}

/// Whether the rules could admit a caller at all, on what is known before its signature is
/// checked: the instance it claims to be and its address. A caller the rules refuse outright,
/// and that this instance has no relation with, is turned away without its body being read. A
/// caller this instance knows is judged once verified, where the refusal can name it and the
/// links' directions; so is any caller when a host rule exists (a host is known only then).
pub(crate) async fn could_admit(state: &Node, claimed: &str, ip: Option<IpAddr>) -> NodeResult<()> {
    let rules = rules(&state.store).await;
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
        &state.info.title,
        &party,
        Flows::BOTH,
        Audience::Caller,
    ) {
        Ok(()) => return Ok(()),
        Err(_) if host_rules => return Ok(()),
        Err(refused) => refused,
    };
    let store = state.store.clone();
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
    state: &Node,
    peer: &PeerIdentity,
    flows: Flows,
) -> Vec<PolicyFinding> {
    let here = state.info.title.as_str();
    let there = peer.title.as_str();
    // Address rules match where the peer is: its first address.
    let first = addresses_of(&peer.url)
        .await
        .ok()
        .and_then(|a| a.first().copied());
    let party = Party::of(peer, first);
    let me = Party::new(here, &state.info.instance_id, &state.info.public_url, None);
    let rules = rules(&state.store).await;
    let verdict = judge(&rules, &party.address());
    let theirs = probe(state, peer).await;
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
        let (ok, message) = match &theirs {
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

/// Asks `peer` which directions its rules permit with this instance. A refusal on policy means
/// its rules permit none of the directions `flows` carries. The probe carries no data, so this
/// instance's own rules do not stop it (a check must report them, not be stopped by them); only
/// where it goes is judged.
async fn probe(state: &Node, peer: &PeerIdentity) -> Result<impl Fn(Direction) -> bool, String> {
    let answer: Result<serde_json::Value, FederationError> = state
        .federation
        .call(
            Callee::probe(peer),
            reqwest::Method::POST,
            super::PROBE_PATH,
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
