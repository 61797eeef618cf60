//! The sync planner's rules, pure: what a sender sends over a channel, and what a receiver
//! accepts. The sender decides per item from its current state (never from what it believes the
//! receiver has), and the receiver checks everything again against what it agreed to import.

use ferry_proto::ticket::DataTypes;
use ferry_proto::{ItemKind, SyncAs};

/// What one channel carries, as its sender sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendScope {
    /// The data types that leave over the channel.
    pub kinds: DataTypes,
    /// Markings an item may carry and still leave; `None`: no marked item leaves.
    pub ceiling: Option<Vec<String>>,
    /// The receiving instance: items that came from it never go back to it.
    pub receiver: String,
    pub delivery: DeliveryRules,
    /// Whose items the channel carries: the same rule its receiver applies.
    pub origins: Origins,
}

/// Whose items a channel may carry, as (origin instance) ids. A peer connection carries each
/// side's own items; a guest sends its host its own items; a host sends its guests the items of
/// the workspace's participants (its own and its guests'). Sender and receiver both apply it:
/// the sender to what it sends, the receiver to what it lets a link create, change or retract,
/// so no link can touch an item that another link brought from a third instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins(Vec<String>);

impl Origins {
    /// One instance's own items.
    pub fn only(instance: impl Into<String>) -> Origins {
        Origins(vec![instance.into()])
    }

    /// The items of any of these instances.
    pub fn any_of(instances: impl IntoIterator<Item = String>) -> Origins {
        let mut ids: Vec<String> = instances.into_iter().collect();
        ids.sort();
        ids.dedup();
        Origins(ids)
    }

    pub fn allows(&self, origin_instance: &str) -> bool {
        self.0.iter().any(|id| id == origin_instance)
    }
}

/// A link's rules for copies and references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRules {
    /// Feature layers that follow the link's config go by reference (a `reference` workspace).
    pub layers_by_reference: bool,
    /// Whether the link takes references at all: two-way editing needs copies.
    pub references_allowed: bool,
}

impl DeliveryRules {
    /// A peer connection: copies, and references for items that ask for them.
    pub const PEER: DeliveryRules = DeliveryRules {
        layers_by_reference: false,
        references_allowed: true,
    };

    /// Whether an item goes by reference. An item's own choice wins over the link's config;
    /// files always go as copies (a reference reads rows). An item that asks for a reference
    /// where the link takes none is still offered as one, and the receiver refuses it with a
    /// clear error: never a silent copy of what its owner wanted kept home.
    pub fn by_reference(self, kind: ItemKind, sync_as: SyncAs) -> bool {
        if !kind.has_rows() {
            return false;
        }
        match sync_as {
            SyncAs::Copy => false,
            SyncAs::Reference => true,
            SyncAs::Link => self.layers_by_reference && kind == ItemKind::FeatureLayer,
        }
    }
}

impl DeliveryRules {
    /// The rules for what a guest sends over its link, by its share mode: its own choice
    /// replaces the workspace's for feature layers that follow the link; whether the link takes
    /// references at all stays the workspace's (a two-way workspace takes none).
    pub fn with_share(self, share: ferry_proto::ShareMode) -> DeliveryRules {
        let layers_by_reference = match share {
            ferry_proto::ShareMode::Copies => false,
            ferry_proto::ShareMode::References => true,
            ferry_proto::ShareMode::Workspace => self.layers_by_reference,
        };
        DeliveryRules {
            layers_by_reference,
            ..self
        }
    }
}

/// An item as the planner needs to see it.
#[derive(Debug, Clone, Copy)]
pub struct ItemFacts<'a> {
    pub kind: ItemKind,
    pub markings: &'a [String],
    /// The instance where the item was created.
    pub origin_instance: &'a str,
    pub deleted: bool,
}

/// Why an item leaves the receiver's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetractReason {
    Deleted,
    OutOfScope,
}

impl RetractReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetractReason::Deleted => "deleted",
            RetractReason::OutOfScope => "out_of_scope",
        }
    }
}

/// The sender's decision for one changed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// The receiver must drop it if it has it: being filtered out is not the same as never
    /// having existed.
    Retract(RetractReason),
    /// Never mentioned: it came from the receiver.
    Skip,
}

pub fn carries(kinds: DataTypes, kind: ItemKind) -> bool {
    match kind {
        ItemKind::Dataset => kinds.datasets,
        ItemKind::FeatureLayer => kinds.features,
        ItemKind::File => kinds.files,
    }
}

/// Whether every marking of an item is under the ceiling.
pub fn within_ceiling(ceiling: Option<&[String]>, markings: &[String]) -> bool {
    match ceiling {
        None => markings.is_empty(),
        Some(allowed) => markings.iter().all(|m| allowed.contains(m)),
    }
}

/// What the sender does with a changed item.
pub fn judge(scope: &SendScope, item: ItemFacts<'_>) -> Verdict {
    if item.origin_instance == scope.receiver {
        return Verdict::Skip;
    }
    if item.deleted {
        return Verdict::Retract(RetractReason::Deleted);
    }
    if !scope.origins.allows(item.origin_instance)
        || !carries(scope.kinds, item.kind)
        || !within_ceiling(scope.ceiling.as_deref(), item.markings)
    {
        return Verdict::Retract(RetractReason::OutOfScope);
    }
    Verdict::Send
}

impl SendScope {
    /// A fingerprint of everything that decides the scope. A receiver's cursor belongs to one
    /// fingerprint: when the scope changes, items that newly match were never sent, so the
    /// receiver starts over.
    pub fn fingerprint(&self) -> String {
        let mut ceiling = self.ceiling.clone();
        if let Some(c) = ceiling.as_mut() {
            c.sort();
            c.dedup();
        }
        // The origins too: a participant who joins or leaves changes what a host relays, and
        // the full pass that follows retracts what no longer belongs (and cursors from before
        // links were held to their origins start over for the same reason).
        let mut text = format!(
            "{:?}|{:?}|{}|origins:{:?}",
            self.kinds.names(),
            ceiling,
            self.receiver,
            self.origins.0
        );
        // Only rules other than a peer connection's count, so cursors from before references
        // existed stay valid.
        if self.delivery != DeliveryRules::PEER {
            text.push_str(&format!("|{:?}", self.delivery));
        }
        blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

/// What a receiver agreed to import over a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub kinds: DataTypes,
    /// The largest item accepted, in bytes.
    pub max_item_bytes: u64,
    /// This instance: nothing that originates here is taken back from elsewhere.
    pub receiver: String,
    /// Whether items may come by reference.
    pub references_allowed: bool,
    /// Whose items the channel may bring (see [`Origins`]).
    pub origins: Origins,
}

/// The receiver's check of how an item comes: a reference only where the link takes them, and
/// only for items with rows.
pub fn accept_delivery(
    agreement: &Agreement,
    kind: ItemKind,
    reference: bool,
) -> Result<(), Refusal> {
    if !reference {
        return Ok(());
    }
    if !kind.has_rows() {
        return Err(Refusal {
            code: "delivery_refused",
            message: "a file is offered by reference; files travel as copies only".into(),
        });
    }
    if !agreement.references_allowed {
        return Err(Refusal {
            code: "delivery_refused",
            message: "the item is offered by reference, but this link takes copies only (two-way editing needs them); its owner can share it as a copy".into(),
        });
    }
    Ok(())
}

/// Why a receiver refuses an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A stable error code (`ErrorCode` spelling).
    pub code: &'static str,
    pub message: String,
}

/// The receiver's own check of an incoming item, whatever the sender decided.
pub fn accept(
    agreement: &Agreement,
    kind: ItemKind,
    origin: &str,
    size: u64,
) -> Result<(), Refusal> {
    if origin == agreement.receiver {
        return Err(Refusal {
            code: "sync_refused",
            message: "the item originates on this instance; it is not taken back".into(),
        });
    }
    if !agreement.origins.allows(origin) {
        return Err(Refusal {
            code: "origin_not_allowed",
            message: format!(
                "the item comes from instance {origin}, whose items this link does not bring (a peer brings its own items, a collaboration host those of the workspace's participants)"
            ),
        });
    }
    if !carries(agreement.kinds, kind) {
        return Err(Refusal {
            code: "sync_refused",
            message: format!(
                "{} items are not imported over this link (it imports: {})",
                kind.as_str(),
                agreement.kinds.names().join(", ")
            ),
        });
    }
    if size > agreement.max_item_bytes {
        return Err(Refusal {
            code: "item_too_large",
            message: format!(
                "the item has {size} bytes, more than the {} this link accepts",
                agreement.max_item_bytes
            ),
        });
    }
    Ok(())
}

/// A link's schedule: every `every_secs`, from `start_at` (Unix seconds) if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub every_secs: i64,
    pub start_at: Option<i64>,
    pub paused: bool,
}

pub const MIN_INTERVAL_SECS: i64 = 3600;
pub const MAX_INTERVAL_SECS: i64 = 24 * 3600;

impl Default for Schedule {
    /// Once a day.
    fn default() -> Self {
        Schedule {
            every_secs: MAX_INTERVAL_SECS,
            start_at: None,
            paused: false,
        }
    }
}

impl Schedule {
    /// When the next scheduled run is due, given when the last run started (Unix seconds);
    /// `None` while paused. Runs fall on `start_at + k * every` when a start is given.
    pub fn next_run(&self, last_started: Option<i64>, now: i64) -> Option<i64> {
        if self.paused {
            return None;
        }
        let every = self.every_secs.max(1);
        Some(match (self.start_at, last_started) {
            (Some(start), None) => start,
            (Some(start), Some(last)) if last < start => start,
            (Some(start), Some(last)) => start + ((last - start) / every + 1) * every,
            (None, None) => now,
            (None, Some(last)) => last + every,
        })
    }

    pub fn is_due(&self, last_started: Option<i64>, now: i64) -> bool {
        self.next_run(last_started, now).is_some_and(|t| t <= now)
    }

    /// After `failures` failed runs in a row (the last started at `last_failed`), the next try
    /// comes after a backoff that doubles from a minute up to the interval, unless the schedule
    /// is due sooner anyway. `None` while paused.
    pub fn retry_at(&self, last_failed: i64, failures: u32) -> Option<i64> {
        if self.paused {
            return None;
        }
        let doubling = 60i64.saturating_mul(1 << failures.saturating_sub(1).min(20));
        Some(last_failed + doubling.min(self.every_secs.max(60)))
    }
}

/// Parses an interval such as `6h` or `90m`: from 1 hour to 24 hours.
pub fn parse_interval(text: &str) -> crate::CoreResult<i64> {
    let bad = || {
        crate::CoreError::InvalidRequest(format!(
            "interval '{text}' is not valid: give 1h to 24h, e.g. 6h or 90m"
        ))
    };
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "h" => n * 3600,
        "m" => n * 60,
        _ => return Err(bad()),
    };
    if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&secs) {
        return Err(bad());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(datasets: bool, features: bool, files: bool) -> DataTypes {
        DataTypes {
            datasets,
            features,
            files,
        }
    }

    fn scope(ceiling: Option<&[&str]>) -> SendScope {
        SendScope {
            kinds: types(true, true, false),
            ceiling: ceiling.map(|c| c.iter().map(|s| s.to_string()).collect()),
            receiver: "b".into(),
            delivery: DeliveryRules::PEER,
            origins: Origins::any_of(["a".to_string(), "b".to_string()]),
        }
    }

    fn facts<'a>(kind: ItemKind, markings: &'a [String], origin: &'a str) -> ItemFacts<'a> {
        ItemFacts {
            kind,
            markings,
            origin_instance: origin,
            deleted: false,
        }
    }

    #[test]
    fn the_sender_sends_retracts_or_skips() {
        let none: Vec<String> = vec![];
        let official = vec!["OFFICIAL".to_string()];
        let open = scope(None);
        let ceiling = scope(Some(&["OFFICIAL"]));
        assert_eq!(
            judge(&open, facts(ItemKind::Dataset, &none, "a")),
            Verdict::Send
        );
        assert_eq!(
            judge(&open, facts(ItemKind::Dataset, &official, "a")),
            Verdict::Retract(RetractReason::OutOfScope),
            "no ceiling: no marked item leaves"
        );
        assert_eq!(
            judge(&ceiling, facts(ItemKind::FeatureLayer, &official, "a")),
            Verdict::Send
        );
        assert_eq!(
            judge(&ceiling, facts(ItemKind::File, &none, "a")),
            Verdict::Retract(RetractReason::OutOfScope),
            "files are not sent"
        );
        assert_eq!(
            judge(&ceiling, facts(ItemKind::Dataset, &none, "b")),
            Verdict::Skip,
            "never echoed back to where it came from"
        );
        let mut deleted = facts(ItemKind::Dataset, &none, "a");
        deleted.deleted = true;
        assert_eq!(
            judge(&ceiling, deleted),
            Verdict::Retract(RetractReason::Deleted)
        );
        assert_eq!(
            judge(&open, facts(ItemKind::Dataset, &none, "c")),
            Verdict::Retract(RetractReason::OutOfScope),
            "an item from a third instance is not the channel's to carry"
        );
    }

    #[test]
    fn schedules() {
        let daily = Schedule::default();
        assert!(daily.is_due(None, 100), "never ran: due at once");
        assert_eq!(daily.next_run(Some(100), 200), Some(100 + 86_400));
        assert!(!daily.is_due(Some(100), 100 + 86_399));
        let anchored = Schedule {
            every_secs: 3600,
            start_at: Some(10_000),
            paused: false,
        };
        assert_eq!(
            anchored.next_run(None, 0),
            Some(10_000),
            "waits for its start"
        );
        assert!(!anchored.is_due(None, 9_999));
        assert_eq!(
            anchored.next_run(Some(10_050), 0),
            Some(13_600),
            "back on the grid"
        );
        assert_eq!(anchored.next_run(Some(5), 0), Some(10_000));
        let paused = Schedule {
            paused: true,
            ..daily
        };
        assert_eq!(paused.next_run(None, 0), None);
        assert_eq!(paused.retry_at(0, 1), None);
        let retries: Vec<i64> = (1..=9).map(|f| anchored.retry_at(0, f).unwrap()).collect();
        assert_eq!(
            retries,
            vec![60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
        );
        assert_eq!(parse_interval("6h").unwrap(), 21_600);
        assert_eq!(parse_interval("90m").unwrap(), 5_400);
        for bad in ["30m", "25h", "1d", "h", "-2h", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    /// The precedence rule, every combination: the item's own `sync_as` (when not `link`) over
    /// the sending guest's share mode over the workspace's setting; datasets and files follow
    /// only their item's choice (a file never goes by reference).
    #[test]
    fn an_items_choice_beats_its_guests_link_which_beats_the_workspace() {
        use ferry_proto::ShareMode::{Copies, References, Workspace};
        use ferry_proto::SyncAs::{Copy, Link, Reference};
        let layer = ItemKind::FeatureLayer;
        #[rustfmt::skip]
        let table = [
            // (workspace by reference, guest's share, item's sync_as) -> by reference
            (false, Workspace, Link, false), (false, Workspace, Copy, false), (false, Workspace, Reference, true),
            (false, Copies, Link, false),    (false, Copies, Copy, false),    (false, Copies, Reference, true),
            (false, References, Link, true), (false, References, Copy, false), (false, References, Reference, true),
            (true, Workspace, Link, true),   (true, Workspace, Copy, false),  (true, Workspace, Reference, true),
            (true, Copies, Link, false),     (true, Copies, Copy, false),     (true, Copies, Reference, true),
            (true, References, Link, true),  (true, References, Copy, false), (true, References, Reference, true),
        ];
        for (workspace, share, sync_as, expected) in table {
            let rules = DeliveryRules {
                layers_by_reference: workspace,
                references_allowed: true,
            }
            .with_share(share);
            assert_eq!(
                rules.by_reference(layer, sync_as),
                expected,
                "workspace by reference {workspace}, share {share:?}, sync_as {sync_as:?}"
            );
            // A dataset goes by reference only when it asks; a file never.
            assert_eq!(
                rules.by_reference(ItemKind::Dataset, sync_as),
                sync_as == Reference
            );
            assert!(!rules.by_reference(ItemKind::File, sync_as));
            // Two-way workspaces take no references, whatever the guest chose.
            let two_way = DeliveryRules {
                layers_by_reference: workspace,
                references_allowed: false,
            };
            assert!(!two_way.with_share(share).references_allowed);
        }
    }

    #[test]
    fn fingerprints_follow_the_scope() {
        let a = scope(Some(&["OFFICIAL", "SECRET"]));
        let b = scope(Some(&["SECRET", "OFFICIAL", "SECRET"]));
        assert_eq!(
            a.fingerprint(),
            b.fingerprint(),
            "order and repeats do not matter"
        );
        assert_ne!(a.fingerprint(), scope(Some(&["OFFICIAL"])).fingerprint());
        assert_ne!(a.fingerprint(), scope(None).fingerprint());
        let mut files = a.clone();
        files.kinds.files = true;
        assert_ne!(a.fingerprint(), files.fingerprint());
        let mut joined = a.clone();
        joined.origins = Origins::any_of(["a", "b", "c"].map(String::from));
        assert_ne!(
            a.fingerprint(),
            joined.fingerprint(),
            "a participant joined"
        );
    }

    #[test]
    fn the_receiver_checks_for_itself() {
        let agreement = Agreement {
            kinds: types(true, false, true),
            max_item_bytes: 100,
            receiver: "b".into(),
            references_allowed: false,
            origins: Origins::only("a"),
        };
        assert!(accept(&agreement, ItemKind::Dataset, "a", 100).is_ok());
        assert_eq!(
            accept(&agreement, ItemKind::Dataset, "c", 1)
                .unwrap_err()
                .code,
            "origin_not_allowed"
        );
        assert_eq!(
            accept(&agreement, ItemKind::FeatureLayer, "a", 1)
                .unwrap_err()
                .code,
            "sync_refused"
        );
        assert_eq!(
            accept(&agreement, ItemKind::File, "a", 101)
                .unwrap_err()
                .code,
            "item_too_large"
        );
        assert_eq!(
            accept(&agreement, ItemKind::Dataset, "b", 1)
                .unwrap_err()
                .code,
            "sync_refused"
        );
    }

    #[test]
    fn copies_and_references_follow_the_item_then_the_link() {
        let workspace = DeliveryRules {
            layers_by_reference: true,
            references_allowed: true,
        };
        let layer = ItemKind::FeatureLayer;
        assert!(workspace.by_reference(layer, SyncAs::Link));
        assert!(!workspace.by_reference(ItemKind::Dataset, SyncAs::Link));
        assert!(!workspace.by_reference(layer, SyncAs::Copy));
        assert!(DeliveryRules::PEER.by_reference(ItemKind::Dataset, SyncAs::Reference));
        assert!(!DeliveryRules::PEER.by_reference(layer, SyncAs::Link));
        // Files always travel as copies.
        assert!(!workspace.by_reference(ItemKind::File, SyncAs::Reference));
        // The rules are part of the scope: changing them starts a full pass.
        let mut other = scope(None);
        other.delivery = workspace;
        assert_ne!(scope(None).fingerprint(), other.fingerprint());
    }

    #[test]
    fn a_reference_is_refused_where_the_link_takes_copies_only() {
        let mut agreement = Agreement {
            kinds: types(true, true, true),
            max_item_bytes: 100,
            receiver: "b".into(),
            references_allowed: false,
            origins: Origins::only("a"),
        };
        assert!(accept_delivery(&agreement, ItemKind::FeatureLayer, false).is_ok());
        let refused = accept_delivery(&agreement, ItemKind::FeatureLayer, true).unwrap_err();
        assert_eq!(refused.code, "delivery_refused");
        agreement.references_allowed = true;
        assert!(accept_delivery(&agreement, ItemKind::FeatureLayer, true).is_ok());
        assert!(accept_delivery(&agreement, ItemKind::File, true).is_err());
    }
}
