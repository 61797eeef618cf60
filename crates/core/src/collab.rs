//! Collaborations: one host, guests with an access mode per workspace. Pure rules.
//!
//! Data between participants flows only between the host and a guest: what a guest sends lands at
//! the host and travels on to the guests that receive, so guests never open channels to each other.

use crate::error::{CoreError, CoreResult};

/// A guest's access mode in one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessMode {
    /// The guest sends to the host and receives nothing.
    Send,
    /// The guest receives and sends nothing.
    Receive,
    /// Both.
    SendReceive,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Send => "send",
            AccessMode::Receive => "receive",
            AccessMode::SendReceive => "send_receive",
        }
    }

    pub fn parse(s: &str) -> CoreResult<AccessMode> {
        match s {
            "send" => Ok(AccessMode::Send),
            "receive" => Ok(AccessMode::Receive),
            "send_receive" => Ok(AccessMode::SendReceive),
            other => Err(CoreError::InvalidRequest(format!(
                "access mode '{other}' is not valid: use send, receive or send_receive"
            ))),
        }
    }
}

/// A participant of one workspace: the host (always sends and receives) or a guest in a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Participant {
    Host,
    Guest(AccessMode),
}

/// Which directions a participant takes part in, in one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directions {
    pub sends: bool,
    pub receives: bool,
}

/// The one function that says what a participant may send and receive in a workspace.
pub fn directions(participant: Participant) -> Directions {
    match participant {
        Participant::Host => Directions {
            sends: true,
            receives: true,
        },
        Participant::Guest(AccessMode::Send) => Directions {
            sends: true,
            receives: false,
        },
        Participant::Guest(AccessMode::Receive) => Directions {
            sends: false,
            receives: true,
        },
        Participant::Guest(AccessMode::SendReceive) => Directions {
            sends: true,
            receives: true,
        },
    }
}

/// Whether a channel carries data from `from` to `to` in a workspace: only between the host and
/// a guest, from one that sends to one that receives.
pub fn channel(from: Participant, to: Participant) -> bool {
    let one_is_host = matches!(
        (from, to),
        (Participant::Host, Participant::Guest(_)) | (Participant::Guest(_), Participant::Host)
    );
    one_is_host && directions(from).sends && directions(to).receives
}

/// Which ways data moves between `me` and `other` in one workspace, seen from `me`: what the
/// network policies of the two instances must permit.
pub fn flows(me: Participant, other: Participant) -> crate::policy::Flows {
    crate::policy::Flows {
        sends: channel(me, other),
        receives: channel(other, me),
    }
}

/// Two-way editing of feature layers needs send-and-receive on the guest's side.
pub fn may_edit_two_way(guest: AccessMode) -> bool {
    guest == AccessMode::SendReceive
}

/// Workspace names have at most 100 characters, descriptions at most 250.
pub fn check_workspace(name: &str, description: &str) -> CoreResult<()> {
    check_info("workspace", name, description)
}

/// Collaboration names and descriptions follow the same limits as workspaces'.
pub fn check_collab(name: &str, description: &str) -> CoreResult<()> {
    check_info("collaboration", name, description)
}

fn check_info(what: &str, name: &str, description: &str) -> CoreResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(CoreError::InvalidRequest(format!(
            "a {what} name has 1-100 characters"
        )));
    }
    if description.chars().count() > 250 {
        return Err(CoreError::InvalidRequest(format!(
            "a {what} description has at most 250 characters"
        )));
    }
    Ok(())
}

/// Ids of collaborations, workspaces and invitations: 128 bits as 32 lowercase hex characters.
/// Checked on everything another instance sends, since ids end up in stored link names.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The two roles in a collaboration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollabRole {
    Host,
    Guest,
}

impl CollabRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CollabRole::Host => "host",
            CollabRole::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<CollabRole> {
        match s {
            "host" => Some(CollabRole::Host),
            "guest" => Some(CollabRole::Guest),
            _ => None,
        }
    }
}

/// Where a collaboration stands for this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollabState {
    /// A guest accepted with a response file; the host has not confirmed yet.
    AwaitingHost,
    Active,
    /// This guest left.
    Left,
    /// The host removed this guest.
    Removed,
    /// The host deleted the collaboration.
    Deleted,
}

impl CollabState {
    pub const ALL: [CollabState; 5] = [
        CollabState::AwaitingHost,
        CollabState::Active,
        CollabState::Left,
        CollabState::Removed,
        CollabState::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CollabState::AwaitingHost => "awaiting_host",
            CollabState::Active => "active",
            CollabState::Left => "left",
            CollabState::Removed => "removed",
            CollabState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<CollabState> {
        CollabState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Over for good: nothing more happens in it here.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            CollabState::Left | CollabState::Removed | CollabState::Deleted
        )
    }
}

/// What happens to a collaboration, from this instance's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollabEvent {
    /// Guest: the host confirmed this guest (its first snapshot arrived).
    HostConfirmed,
    /// Guest: this instance leaves.
    Leave,
    /// Guest: the host removed this instance.
    RemovedByHost,
    /// Host deletes it; a guest hears of that.
    Delete,
}

/// A change the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAllowed {
    pub role: CollabRole,
    pub state: CollabState,
    pub event: CollabEvent,
}

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.event {
            CollabEvent::HostConfirmed => "be confirmed by the host",
            CollabEvent::Leave => "be left",
            CollabEvent::RemovedByHost => "have this guest removed",
            CollabEvent::Delete => "be deleted",
        };
        write!(
            f,
            "a collaboration that is {} for this {} cannot {what}",
            self.state.as_str(),
            self.role.as_str()
        )
    }
}

/// The collaboration state machine for one instance.
pub fn apply(
    role: CollabRole,
    state: CollabState,
    event: CollabEvent,
) -> Result<CollabState, NotAllowed> {
    use CollabEvent as E;
    use CollabState as S;
    let next = match (role, state, event) {
        (CollabRole::Host, S::Active, E::Delete) => Some(S::Deleted),
        (CollabRole::Guest, S::AwaitingHost | S::Active, E::HostConfirmed) => Some(S::Active),
        (CollabRole::Guest, S::AwaitingHost | S::Active, E::Leave) => Some(S::Left),
        (CollabRole::Guest, S::AwaitingHost | S::Active, E::RemovedByHost) => Some(S::Removed),
        (CollabRole::Guest, S::AwaitingHost | S::Active, E::Delete) => Some(S::Deleted),
        _ => None,
    };
    next.ok_or(NotAllowed { role, state, event })
}

/// A guest's standing, as the host records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestStatus {
    Active,
    Left,
    Removed,
}

impl GuestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestStatus::Active => "active",
            GuestStatus::Left => "left",
            GuestStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<GuestStatus> {
        [GuestStatus::Active, GuestStatus::Left, GuestStatus::Removed]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// What a participant does with the items it received when a workspace or the collaboration
/// ends for it. Never touches its own items or the linked space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeletePolicy {
    #[default]
    Keep,
    Delete,
}

impl DeletePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletePolicy::Keep => "keep",
            DeletePolicy::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> CoreResult<DeletePolicy> {
        match s {
            "keep" => Ok(DeletePolicy::Keep),
            "delete" => Ok(DeletePolicy::Delete),
            other => Err(CoreError::InvalidRequest(format!(
                "delete policy '{other}' is not valid: use keep or delete"
            ))),
        }
    }
}

/// A workspace's config: feature layers as `copy` or `reference`, a positive item size limit, and
/// two-way editing only on copies (a reference holds nothing to edit).
pub fn check_workspace_config(
    feature_layers: &str,
    max_item_bytes: u64,
    two_way_editing: bool,
) -> CoreResult<()> {
    if !matches!(feature_layers, "copy" | "reference") {
        return Err(CoreError::InvalidRequest(format!(
            "feature layers are shared as 'copy' or 'reference', not '{feature_layers}'"
        )));
    }
    if max_item_bytes == 0 {
        return Err(CoreError::InvalidRequest(
            "the largest item size must be above zero".into(),
        ));
    }
    if two_way_editing && feature_layers != "copy" {
        return Err(CoreError::InvalidRequest(
            "two-way editing needs feature layers shared as copies".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccessMode::*;
    use Participant::*;

    const ALL: [Participant; 4] = [Host, Guest(Send), Guest(Receive), Guest(SendReceive)];

    #[test]
    fn directions_per_role_and_mode() {
        let table: Vec<(bool, bool)> = ALL
            .iter()
            .map(|p| (directions(*p).sends, directions(*p).receives))
            .collect();
        assert_eq!(
            table,
            vec![(true, true), (true, false), (false, true), (true, true)]
        );
    }

    /// The full table of channels: row = sender, column = receiver, in the order of `ALL`.
    #[test]
    fn channel_table() {
        let expected = [
            // to: Host   Send   Receive SendReceive
            [false, false, true, true],   // from Host
            [true, false, false, false],  // from Guest(Send)
            [false, false, false, false], // from Guest(Receive)
            [true, false, false, false],  // from Guest(SendReceive)
        ];
        for (i, from) in ALL.iter().enumerate() {
            for (j, to) in ALL.iter().enumerate() {
                assert_eq!(channel(*from, *to), expected[i][j], "{from:?} -> {to:?}");
            }
        }
    }

    /// Every (role, state, event) combination: the allowed ones and where they lead.
    #[test]
    fn state_machine_full_table() {
        use CollabEvent as E;
        use CollabState as S;
        let events = [E::HostConfirmed, E::Leave, E::RemovedByHost, E::Delete];
        let mut allowed = Vec::new();
        for role in [CollabRole::Host, CollabRole::Guest] {
            for state in S::ALL {
                for event in events {
                    if let Ok(next) = apply(role, state, event) {
                        allowed.push((role, state, event, next));
                    } else {
                        assert_eq!(
                            apply(role, state, event),
                            Err(NotAllowed { role, state, event })
                        );
                    }
                }
            }
        }
        let guest = CollabRole::Guest;
        assert_eq!(
            allowed,
            vec![
                (CollabRole::Host, S::Active, E::Delete, S::Deleted),
                (guest, S::AwaitingHost, E::HostConfirmed, S::Active),
                (guest, S::AwaitingHost, E::Leave, S::Left),
                (guest, S::AwaitingHost, E::RemovedByHost, S::Removed),
                (guest, S::AwaitingHost, E::Delete, S::Deleted),
                (guest, S::Active, E::HostConfirmed, S::Active),
                (guest, S::Active, E::Leave, S::Left),
                (guest, S::Active, E::RemovedByHost, S::Removed),
                (guest, S::Active, E::Delete, S::Deleted),
            ]
        );
        for state in S::ALL {
            assert_eq!(CollabState::parse(state.as_str()), Some(state));
            assert_eq!(
                state.is_over(),
                apply(guest, state, E::Leave).is_err() && state != S::AwaitingHost
            );
        }
    }

    #[test]
    fn policies_and_configs() {
        assert_eq!(DeletePolicy::parse("delete").unwrap(), DeletePolicy::Delete);
        assert_eq!(DeletePolicy::default(), DeletePolicy::Keep);
        assert!(DeletePolicy::parse("purge").is_err());
        assert!(check_workspace_config("copy", 1, true).is_ok());
        assert!(check_workspace_config("reference", 1, false).is_ok());
        assert!(check_workspace_config("reference", 1, true).is_err());
        assert!(check_workspace_config("link", 1, false).is_err());
        assert!(check_workspace_config("copy", 0, false).is_err());
        for g in [GuestStatus::Active, GuestStatus::Left, GuestStatus::Removed] {
            assert_eq!(GuestStatus::parse(g.as_str()), Some(g));
        }
    }

    #[test]
    fn modes_and_limits() {
        for m in [Send, Receive, SendReceive] {
            assert_eq!(AccessMode::parse(m.as_str()).unwrap(), m);
        }
        assert!(AccessMode::parse("write").is_err());
        assert!(
            may_edit_two_way(SendReceive) && !may_edit_two_way(Send) && !may_edit_two_way(Receive)
        );
        assert!(check_workspace("Roads", "").is_ok());
        assert!(check_workspace(&"x".repeat(101), "").is_err());
        assert!(check_workspace("Roads", &"x".repeat(251)).is_err());
        assert!(check_workspace(" ", "").is_err());
        assert!(check_collab(&"x".repeat(100), &"y".repeat(250)).is_ok());
        assert!(check_collab("", "").is_err());
        assert!(is_valid_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "a",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
