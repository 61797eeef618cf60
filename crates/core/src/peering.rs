//! The life of a peer connection, as seen from one side: a pure state machine.
//!
//! The **originator** creates a request (an invite code); the **acceptor** imports the code,
//! approves and sends a response; the originator accepts the response and activates. Either side
//! may then disable and enable its own half, and delete; the other side hears of it. A connection
//! carries data only when it is active and neither side has disabled it.
//!
//! ```text
//! originator: requested ──response──▶ approved ──activate──▶ active
//!                 └─invalidate─▶ invalidated
//! acceptor:   imported ──approve──▶ approved ──activated──▶ active
//! both:       active ⇄ (disabled here / there flags);  any ──delete──▶ deleted;
//!             any ──remote delete──▶ revoked
//! ```

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Originator,
    Acceptor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Originator => "originator",
            Role::Acceptor => "acceptor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Originator, Role::Acceptor]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Originator: code issued, no response yet.
    Requested,
    /// Acceptor: code checked and shown, nothing sent yet.
    Imported,
    /// Response sent (acceptor) or accepted (originator); waiting for activation.
    Approved,
    Active,
    /// Originator withdrew the request.
    Invalidated,
    /// Deleted on this side.
    Deleted,
    /// Deleted by the other side: its key is no longer accepted here.
    Revoked,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Requested => "requested",
            Phase::Imported => "imported",
            Phase::Approved => "approved",
            Phase::Active => "active",
            Phase::Invalidated => "invalidated",
            Phase::Deleted => "deleted",
            Phase::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        use Phase::*;
        [
            Requested,
            Imported,
            Approved,
            Active,
            Invalidated,
            Deleted,
            Revoked,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// Both sides completed the exchange of keys: the pinned key is trusted for requests.
    pub fn is_established(self) -> bool {
        matches!(self, Phase::Approved | Phase::Active)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Phase::Invalidated | Phase::Deleted | Phase::Revoked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub phase: Phase,
    pub disabled_here: bool,
    pub disabled_there: bool,
}

impl Status {
    pub fn new(role: Role) -> Status {
        Status {
            phase: match role {
                Role::Originator => Phase::Requested,
                Role::Acceptor => Phase::Imported,
            },
            disabled_here: false,
            disabled_there: false,
        }
    }

    /// Whether sync may use the connection.
    pub fn carries_data(self) -> bool {
        self.phase == Phase::Active && !self.disabled_here && !self.disabled_there
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Acceptor's admin approves (and the response goes out).
    Approve,
    /// Originator receives a valid response.
    ResponseReceived,
    /// Originator's admin activates.
    Activate,
    /// Acceptor hears that the originator activated.
    Activated,
    /// Originator withdraws an unanswered request.
    Invalidate,
    Disable,
    Enable,
    RemoteDisabled,
    RemoteEnabled,
    Delete,
    RemoteDeleted,
}

/// An event that does not apply in the current phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAllowed {
    pub phase: Phase,
    pub event: Event,
}

/// The status after `event`, or why it cannot happen.
pub fn apply(role: Role, status: Status, event: Event) -> Result<Status, NotAllowed> {
    use Event::*;
    use Phase::*;
    let refuse = Err(NotAllowed {
        phase: status.phase,
        event,
    });
    let with = |phase| Ok(Status { phase, ..status });
    match (role, status.phase, event) {
        (_, p, _) if p.is_final() => refuse,
        (_, _, Delete) => with(Deleted),
        (_, _, RemoteDeleted) => with(Revoked),
        (Role::Acceptor, Imported, Approve) => with(Approved),
        (Role::Originator, Requested, ResponseReceived) => with(Approved),
        (Role::Originator, Requested, Invalidate) => with(Invalidated),
        (Role::Originator, Approved, Activate) => with(Active),
        (Role::Acceptor, Approved, Activated) => with(Active),
        (_, Active, Disable) => Ok(Status {
            disabled_here: true,
            ..status
        }),
        (_, Active, Enable) => Ok(Status {
            disabled_here: false,
            ..status
        }),
        (_, Active, RemoteDisabled) => Ok(Status {
            disabled_there: true,
            ..status
        }),
        (_, Active, RemoteEnabled) => Ok(Status {
            disabled_there: false,
            ..status
        }),
        _ => refuse,
    }
}

/// How long a new invite code stays valid when nobody says.
pub const DEFAULT_VALIDITY_SECS: i64 = 24 * 3600;
const MIN_VALIDITY_SECS: i64 = 5 * 60;
const MAX_VALIDITY_SECS: i64 = 30 * 24 * 3600;

/// Reads an invite's validity: `24h`, `30m`, `7d`, `1h 30m`, or ISO 8601 (`PT2H`); 5 minutes to
/// 30 days.
pub fn parse_validity(text: &str) -> crate::CoreResult<i64> {
    let bad = || {
        crate::CoreError::InvalidRequest(format!(
            "validity '{text}' is not valid: give a duration from 5m to 30d, e.g. 24h"
        ))
    };
    let text = text.trim();
    let secs = match text
        .strip_suffix('d')
        .and_then(|d| d.trim().parse::<i64>().ok())
    {
        Some(days) => days.checked_mul(24 * 3600).ok_or_else(bad)?,
        None => text
            .parse::<jiff::SignedDuration>()
            .map_err(|_| bad())?
            .as_secs(),
    };
    if (MIN_VALIDITY_SECS..=MAX_VALIDITY_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event::*;

    const EVENTS: [Event; 11] = [
        Approve,
        ResponseReceived,
        Activate,
        Activated,
        Invalidate,
        Disable,
        Enable,
        RemoteDisabled,
        RemoteEnabled,
        Delete,
        RemoteDeleted,
    ];

    fn run(role: Role, events: &[Event]) -> Result<Status, NotAllowed> {
        events
            .iter()
            .try_fold(Status::new(role), |s, e| apply(role, s, *e))
    }

    #[test]
    fn validity() {
        assert_eq!(parse_validity("24h").unwrap(), 86_400);
        assert_eq!(parse_validity("30m").unwrap(), 1_800);
        assert_eq!(parse_validity("7d").unwrap(), 7 * 86_400);
        assert_eq!(parse_validity("1h 30m").unwrap(), 5_400);
        assert_eq!(parse_validity("PT2H").unwrap(), 7_200);
        for bad in ["", "1m", "31d", "forever", "-2h"] {
            assert!(parse_validity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_happy_paths() {
        let a = run(Role::Originator, &[ResponseReceived, Activate]).unwrap();
        let b = run(Role::Acceptor, &[Approve, Activated]).unwrap();
        assert!(a.carries_data() && b.carries_data());
    }

    #[test]
    fn either_side_disabling_stops_data_and_each_side_enables_only_its_own_half() {
        let base = [Approve, Activated];
        let here = run(Role::Acceptor, &[&base[..], &[Disable]].concat()).unwrap();
        assert!(!here.carries_data());
        let both = apply(Role::Acceptor, here, RemoteDisabled).unwrap();
        let mine_back = apply(Role::Acceptor, both, Enable).unwrap();
        assert!(
            !mine_back.carries_data(),
            "the other side's disable still holds"
        );
        assert!(
            apply(Role::Acceptor, mine_back, RemoteEnabled)
                .unwrap()
                .carries_data()
        );
    }

    #[test]
    fn final_phases_accept_nothing() {
        for (role, path) in [
            (Role::Originator, vec![Invalidate]),
            (Role::Originator, vec![ResponseReceived, Delete]),
            (Role::Acceptor, vec![Approve, Activated, RemoteDeleted]),
        ] {
            let s = run(role, &path).unwrap();
            for e in EVENTS {
                assert!(
                    apply(role, s, e).is_err(),
                    "{role:?} {:?} accepted {e:?}",
                    s.phase
                );
            }
        }
    }

    /// The whole table: which events each phase accepts, per role.
    #[test]
    fn transition_table() {
        let accepted = |role, phase: Phase| -> Vec<Event> {
            let s = Status {
                phase,
                disabled_here: false,
                disabled_there: false,
            };
            EVENTS
                .into_iter()
                .filter(|e| apply(role, s, *e).is_ok())
                .collect()
        };
        let active = vec![
            Disable,
            Enable,
            RemoteDisabled,
            RemoteEnabled,
            Delete,
            RemoteDeleted,
        ];
        assert_eq!(
            accepted(Role::Originator, Phase::Requested),
            vec![ResponseReceived, Invalidate, Delete, RemoteDeleted]
        );
        assert_eq!(
            accepted(Role::Originator, Phase::Approved),
            vec![Activate, Delete, RemoteDeleted]
        );
        assert_eq!(accepted(Role::Originator, Phase::Active), active);
        assert_eq!(
            accepted(Role::Acceptor, Phase::Imported),
            vec![Approve, Delete, RemoteDeleted]
        );
        assert_eq!(
            accepted(Role::Acceptor, Phase::Approved),
            vec![Activated, Delete, RemoteDeleted]
        );
        assert_eq!(accepted(Role::Acceptor, Phase::Active), active);
        assert_eq!(
            accepted(Role::Acceptor, Phase::Requested),
            vec![Delete, RemoteDeleted],
            "not an acceptor phase"
        );
    }
}
