//! Collaborations: one host, guests with an access mode per workspace. Pure rules.
//!
//! Data between participants flows only between the host and a guest: what a guest sends lands at
//! the host and travels on to the guests that receive, so guests never open channels to each other.

use crate::{CoreError, CoreResult};

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

/// Two-way editing of feature layers needs send-and-receive on the guest's side.
pub fn may_edit_two_way(guest: AccessMode) -> bool {
    guest == AccessMode::SendReceive
}

/// Workspace names have at most 100 characters, descriptions at most 250.
pub fn check_workspace(name: &str, description: &str) -> CoreResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(CoreError::InvalidRequest(
            "a workspace name has 1-100 characters".into(),
        ));
    }
    if description.chars().count() > 250 {
        return Err(CoreError::InvalidRequest(
            "a workspace description has at most 250 characters".into(),
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
    }
}
