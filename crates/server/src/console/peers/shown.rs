//! What a Peer Manager page shows besides the list (the selected connection, a notice, a
//! failure, what was typed), and how a connection's facts read for people.

use crate::console::layout::failure;
use ferry_node::NodeError;
use ferry_proto::PeerConnection;
use maud::Markup;
use serde::Deserialize;

/// Security settings as typed in a form: markings separated by commas.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct SecurityFields {
    #[serde(default)]
    pub(super) ceiling: String,
    #[serde(default)]
    pub(super) mark: String,
}

impl SecurityFields {
    pub(super) fn of(security: &ferry_proto::PeerSecurity) -> SecurityFields {
        SecurityFields {
            ceiling: security.ceiling.as_deref().unwrap_or_default().join(", "),
            mark: security.mark.join(", "),
        }
    }

    /// An empty ceiling lets no marked item leave, as `None` says.
    pub(super) fn security(&self) -> ferry_proto::PeerSecurity {
        let ceiling = markings(&self.ceiling);
        ferry_proto::PeerSecurity {
            ceiling: (!ceiling.is_empty()).then_some(ceiling),
            mark: markings(&self.mark),
        }
    }
}

fn markings(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// What the page shows besides the list: the selected connection, what an action did or why it
/// failed, and what was typed into a form that failed.
#[derive(Default)]
pub(crate) struct Shown {
    pub(super) selected: Option<String>,
    /// The page of the list, from 1.
    pub(super) page: usize,
    pub(super) notice: Option<Markup>,
    pub(super) problem: Option<Markup>,
    pub(super) typed: Typed,
}

/// A failed form's values, put back into it.
#[derive(Default)]
pub(super) struct Typed {
    pub(super) space: String,
    pub(super) security: Option<SecurityFields>,
}

impl Shown {
    pub(super) fn of(id: &str) -> Shown {
        Shown {
            selected: Some(id.to_string()),
            ..Shown::default()
        }
    }

    pub(super) fn notice(mut self, notice: Markup) -> Shown {
        self.notice = Some(notice);
        self
    }

    pub(super) fn failed(mut self, error: &NodeError) -> Shown {
        self.problem = Some(failure(&error.0.message, error.0.code.as_str()));
        self
    }
}

/// The state a person reads: `disabled` (and by which side) wins over the phase.
pub(super) fn state_of(connection: &PeerConnection) -> String {
    match (connection.disabled_here, connection.disabled_there) {
        (true, _) => "disabled here".into(),
        (_, true) => "disabled there".into(),
        _ => connection.state.clone(),
    }
}

pub(super) fn types(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

pub(super) fn title_of(connection: &PeerConnection) -> &str {
    connection
        .peer
        .as_ref()
        .map_or("(not answered yet)", |p| p.title.as_str())
}
