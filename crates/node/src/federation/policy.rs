//! Network policy on federation traffic, in the terms of `ferry_core::policy`: data from S to R
//! needs S's egress to R and R's ingress from S. Calls are admitted when data may flow between
//! the two in some direction their links carry; data is judged per direction where it moves:
//! the sender before serving anything ([`super::admission::data_permitted`] with egress), the receiver before it
//! asks for anything (its calls to the sender carry [`Flows::RECEIVES`], so the client's check
//! is an ingress check). Rules are read at every call: a change takes effect at the next one.

use crate::error::{NodeError, NodeResult};
use ferry_core::collab::{self, AccessMode, CollabRole, Participant};
use ferry_core::policy::{Decision, Direction, Effect, Flows, Matcher, PeerAddress, Rule, judge};
use ferry_proto::{ErrorCode, PolicyRule};
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
        .filter_map(rule_of)
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

/// A stored policy rule as the evaluator's rule (rules are stored in canonical form).
pub(crate) fn rule_of(rule: &PolicyRule) -> Option<Rule> {
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
