//! Two-way editing, pure: how an edit made on a copy is judged at the item's origin, how a copy
//! keeps its edits until the origin has judged them, and the clock that orders edits for
//! `latest_wins`. The store keeps the state these functions read and write; nothing here does IO.
//!
//! ## The model
//!
//! The origin is the one authority over an item's rows. Each of its rows has a **version** (the
//! origin's feed position of its last change), a **change stamp per field** (the version, the
//! instance and the clock of the field's last change since two-way editing began; a field with
//! no stamp has not changed since), and a **seen** map: for each instance that edited the row,
//! the position in that instance's own feed of the last edit the origin judged. Copies receive
//! all three with every row of a two-way item.
//!
//! A copy applies a local edit at once and keeps it as **pending** ([`Pending`]): the origin
//! version it was made from (its base), and each field it set with the copy's own feed position
//! of that setting. At the copy's next run toward the origin the pending edit travels as an
//! [`Edit`]; the origin judges it ([`judge`]), and the row it writes goes back to every copy.
//! A copy that receives the origin's row keeps whatever of its pending edit the origin has not
//! yet seen ([`Pending::after_seen`]) and takes the origin's content for the rest. When the
//! origin has seen all of it, the copy holds exactly the origin's row: every instance ends with
//! the same rows.
//!
//! ## Laws of [`judge`] (checked by the tests below)
//!
//! 1. **Idempotent.** An edit the origin has already seen (its position is not past
//!    `seen[editor]`) changes nothing.
//! 2. **Fast-forward.** When no field the edit sets was changed by another instance after its
//!    base, and the row was not deleted or created after it, the edit applies exactly.
//! 3. **Disjoint fields merge.** Fields changed at the origin since the base and not set by the
//!    edit keep the origin's values; fields set by the edit and changed by no one else take the
//!    edit's.
//! 4. **Same field: one conflict.** Fields set by the edit and changed by another instance since
//!    its base are one conflict listing them all, with both whole rows. `origin_wins` keeps the
//!    origin's values, `latest_wins` the value with the later clock (ties broken by instance
//!    id), `manual` the origin's until an admin decides (the conflict stays open).
//! 5. **Update against delete keeps the row.** An update to a row deleted since its base brings
//!    the row back with the edit's content; a delete of a row changed since its base leaves the
//!    row as it is. Either way one conflict, whatever the policy.
//! 6. **Two inserts.** An edit that inserted a key already live at the origin conflicts on the
//!    fields whose values differ; equal values are no conflict.
//! 7. **Acknowledged.** Every judged edit gives the row a new version and `seen[editor]` its
//!    position, even when nothing changed, so the editor learns the outcome.
//! 8. **Nothing lost.** Every value an edit sets either is in the row afterwards or is in the
//!    conflict it made (as "theirs"); every value it overrides at the origin either stays or is
//!    in the conflict (as "ours").
//! 9. **Refused, still kept.** An edit from an instance that may edit, whose row the origin
//!    cannot take (it breaks the item's current schema: a field removed or retyped since the
//!    copy edited), changes no field ([`refuse`]). It is acknowledged as law 7 says, so the
//!    copy stops holding it and takes the origin's row, and it is kept whole in an open
//!    conflict until an admin decides.

pub use ferry_proto::twoway::{
    ConflictPolicy as Policy, EditAction as Action, Fields, GEOMETRY, RowEdit as Edit, Stamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One instance's hybrid logical clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clock {
    ms: i64,
    count: u32,
}

impl Clock {
    /// The next reading: never behind any reading given or observed before.
    pub fn tick(&mut self, now_ms: i64, instance: &str) -> Stamp {
        if now_ms > self.ms {
            self.ms = now_ms;
            self.count = 0;
        } else if self.count == u32::MAX {
            // A full count carries into the next millisecond, never wraps back.
            self.ms += 1;
            self.count = 0;
        } else {
            self.count += 1;
        }
        Stamp {
            ms: self.ms,
            count: self.count,
            instance: instance.to_string(),
        }
    }

    /// Moves past a reading from elsewhere, so what follows here orders after it.
    pub fn observe(&mut self, seen: &Stamp) {
        if (seen.ms, seen.count) > (self.ms, self.count) {
            self.ms = seen.ms;
            self.count = seen.count;
        }
    }

    /// A reading another instance gave its edit, as the origin orders it: no later than this
    /// instance's time plus [`MAX_CLOCK_LEAD_MS`] (an editor whose clock runs ahead, or lies,
    /// cannot win every `latest_wins` conflict for ever), and observed, so the origin's own
    /// later edits order after it.
    pub fn bounded(&mut self, given: &Stamp, now_ms: i64) -> Stamp {
        let limit = now_ms.saturating_add(MAX_CLOCK_LEAD_MS);
        let stamp = if given.ms > limit {
            Stamp {
                ms: limit,
                count: 0,
                instance: given.instance.clone(),
            }
        } else {
            given.clone()
        };
        self.observe(&stamp);
        stamp
    }
}

/// How far ahead of the origin's clock an editor's clock reading is believed.
pub const MAX_CLOCK_LEAD_MS: i64 = 60_000;

/// The last change of a field, or of a row's life, at the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub version: i64,
    pub by: String,
    pub at: Stamp,
}

/// A row as its origin keeps it for two-way editing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OriginRow {
    /// `None`: deleted (a tombstone).
    pub fields: Option<Fields>,
    pub version: i64,
    /// The last change of each field since two-way editing began.
    #[serde(default)]
    pub changes: BTreeMap<String, Change>,
    /// The last deletion or re-creation of the row since two-way editing began.
    #[serde(default)]
    pub life: Option<Change>,
    /// For each instance that edited the row: the feed position of its last edit judged here.
    #[serde(default)]
    pub seen: BTreeMap<String, i64>,
}

/// What kind of concurrency a conflict records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Both changed the same fields.
    SameField,
    /// The edit updated a row deleted at the origin since its base: the row stays.
    UpdateDelete,
    /// The edit deleted a row changed at the origin since its base: the row stays.
    DeleteUpdate,
    /// Both inserted the key.
    DoubleInsert,
    /// The origin could not take the edit (law 9): it waits for an admin.
    Refused,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::SameField => "same_field",
            ConflictKind::UpdateDelete => "update_delete",
            ConflictKind::DeleteUpdate => "delete_update",
            ConflictKind::DoubleInsert => "double_insert",
            ConflictKind::Refused => "refused",
        }
    }
}

/// A conflict found while judging an edit: both whole versions, so either can be restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    /// The fields both sides changed (none for a delete against an update).
    pub fields: Vec<String>,
    /// The origin's row before the edit (`None`: deleted).
    pub ours: Option<Fields>,
    /// The row as the editor had it (`None`: deleted).
    pub theirs: Option<Fields>,
    /// Who last changed what the conflict is about at the origin, and when.
    pub our_change: Option<Change>,
    /// Whether the edit's side won (for `latest_wins`, the side of the later clock).
    pub theirs_won: bool,
    /// `manual`: it waits for an admin.
    pub open: bool,
}

/// The origin's judgement of one edit.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The row to write, with its new version.
    pub row: OriginRow,
    pub conflict: Option<Conflict>,
    /// The edit had been judged before: nothing to write.
    pub duplicate: bool,
}

/// Judges an edit against the origin's row (`None` when the key was never here), writing the
/// result as `version` (the origin's next feed position).
pub fn judge(current: Option<&OriginRow>, edit: &Edit, policy: Policy, version: i64) -> Judgement {
    let empty = OriginRow::default();
    let current = current.unwrap_or(&empty);
    let Some(mut row) = acknowledged(current, edit, version) else {
        return Judgement {
            row: current.clone(),
            conflict: None,
            duplicate: true,
        };
    };
    let by_edit = Change {
        version,
        by: edit.editor.clone(),
        at: edit.at.clone(),
    };
    let conflict = match (&edit.action, &current.fields) {
        (Action::Put { row: whole, .. }, None) => {
            // Absent, or deleted here: the edit's row comes (back) to life.
            let deleted_since = current.life.as_ref().filter(|c| changed_since(c, edit));
            let conflict = deleted_since.map(|change| Conflict {
                kind: ConflictKind::UpdateDelete,
                fields: Vec::new(),
                ours: None,
                theirs: Some(whole.clone()),
                our_change: Some(change.clone()),
                theirs_won: true,
                open: false,
            });
            row.fields = Some(whole.clone());
            for name in whole.keys() {
                row.changes.insert(name.clone(), by_edit.clone());
            }
            row.life = Some(by_edit);
            conflict
        }
        (Action::Put { set, row: whole }, Some(ours)) => {
            let (fields, conflict) = merge(current, ours, set, whole, edit, policy);
            for (name, value) in &fields {
                if ours.get(name) != Some(value) {
                    row.changes.insert(name.clone(), by_edit.clone());
                }
            }
            row.fields = Some(fields);
            conflict
        }
        (Action::Delete, None) => None,
        (Action::Delete, Some(ours)) => {
            let latest = current
                .changes
                .values()
                .chain(current.life.iter())
                .filter(|c| changed_since(c, edit))
                .max_by_key(|c| c.version);
            match latest {
                Some(change) => Some(Conflict {
                    kind: ConflictKind::DeleteUpdate,
                    fields: Vec::new(),
                    ours: Some(ours.clone()),
                    theirs: None,
                    our_change: Some(change.clone()),
                    theirs_won: false,
                    open: false,
                }),
                None => {
                    row.fields = None;
                    row.life = Some(by_edit);
                    None
                }
            }
        }
    };
    Judgement {
        row,
        conflict,
        duplicate: false,
    }
}

/// Acknowledges an edit the origin refuses (law 9), writing the unchanged row as `version`;
/// `None` when the edit was judged before (nothing to write).
pub fn refuse(current: Option<&OriginRow>, edit: &Edit, version: i64) -> Option<Judgement> {
    let empty = OriginRow::default();
    let current = current.unwrap_or(&empty);
    let row = acknowledged(current, edit, version)?;
    let (fields, theirs) = match &edit.action {
        Action::Put { set, row } => (set.keys().cloned().collect(), Some(row.clone())),
        Action::Delete => (Vec::new(), None),
    };
    let our_change = current
        .changes
        .values()
        .chain(current.life.iter())
        .max_by_key(|c| c.version)
        .cloned();
    Some(Judgement {
        conflict: Some(Conflict {
            kind: ConflictKind::Refused,
            fields,
            ours: current.fields.clone(),
            theirs,
            our_change,
            theirs_won: false,
            open: true,
        }),
        row,
        duplicate: false,
    })
}

/// The row as the origin writes it for an edit it has not judged before (law 7): a new version,
/// and `seen[editor]` at the edit's position; `None` for an edit already seen (law 1).
fn acknowledged(current: &OriginRow, edit: &Edit, version: i64) -> Option<OriginRow> {
    if current
        .seen
        .get(&edit.editor)
        .is_some_and(|&s| s >= edit.seq)
    {
        return None;
    }
    let mut row = current.clone();
    row.version = version;
    row.seen.insert(edit.editor.clone(), edit.seq);
    Some(row)
}

/// Whether another instance made this change after the edit's base.
fn changed_since(change: &Change, edit: &Edit) -> bool {
    change.version > edit.base && change.by != edit.editor
}

/// An edit's fields merged into a live row: laws 2 to 4 and 6.
fn merge(
    current: &OriginRow,
    ours: &Fields,
    set: &Fields,
    whole: &Fields,
    edit: &Edit,
    policy: Policy,
) -> (Fields, Option<Conflict>) {
    // An insert meeting a live row: every field it brings counts as set, against a row that is
    // all new to it.
    let double_insert = edit.inserted
        && edit.base == 0
        && current.life.as_ref().is_none_or(|l| l.by != edit.editor);
    let set = if double_insert { whole } else { set };
    let mut merged = ours.clone();
    let mut clashing = Vec::new();
    let mut theirs_won = false;
    for (name, value) in set {
        let clash = if double_insert {
            ours.get(name).is_some_and(|v| v != value)
        } else {
            let changed = current
                .changes
                .get(name)
                .is_some_and(|c| changed_since(c, edit));
            changed && ours.get(name) != Some(value)
        };
        if !clash {
            merged.insert(name.clone(), value.clone());
            continue;
        }
        clashing.push(name.clone());
        let edit_wins = match policy {
            Policy::OriginWins | Policy::Manual => false,
            Policy::LatestWins => current.changes.get(name).is_none_or(|c| edit.at > c.at),
        };
        if edit_wins {
            merged.insert(name.clone(), value.clone());
            theirs_won = true;
        }
    }
    let our_change = clashing
        .iter()
        .filter_map(|name| current.changes.get(name))
        .max_by_key(|c| c.version)
        .cloned();
    let conflict = (!clashing.is_empty()).then(|| Conflict {
        kind: if double_insert {
            ConflictKind::DoubleInsert
        } else {
            ConflictKind::SameField
        },
        fields: clashing,
        ours: Some(ours.clone()),
        theirs: Some(whole.clone()),
        our_change,
        theirs_won,
        open: policy == Policy::Manual,
    });
    (merged, conflict)
}

/// What a copy has changed and the origin has not yet judged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Pending {
    /// The origin version the first part was made from; 0 when the copy had none.
    pub base: i64,
    /// The copy inserted the key.
    #[serde(default)]
    pub inserted: bool,
    /// Fields set, each with the copy's feed position of its setting.
    #[serde(default)]
    pub set: BTreeMap<String, (Value, i64)>,
    /// The copy deleted the row, at this feed position.
    #[serde(default)]
    pub deleted: Option<i64>,
    pub at: Option<Stamp>,
}

impl Pending {
    /// Nothing yet, over a row the copy had at origin version `base` (0: none), or over a key it
    /// inserts.
    pub fn new(base: i64, inserted: bool) -> Pending {
        Pending {
            base,
            inserted,
            ..Pending::default()
        }
    }

    /// A new edit on top of what is pending: `new_row` is the row after it (`None`: deleted),
    /// `before` the row before it, `seq` its feed position here.
    pub fn then(
        mut self,
        before: Option<&Fields>,
        new_row: Option<&Fields>,
        seq: i64,
        at: Stamp,
    ) -> Pending {
        match new_row {
            None => {
                self.set.clear();
                self.deleted = Some(seq);
            }
            Some(row) => {
                let recreated = before.is_none();
                self.deleted = None;
                for (name, value) in row {
                    if recreated || before.and_then(|b| b.get(name)) != Some(value) {
                        self.set.insert(name.clone(), (value.clone(), seq));
                    }
                }
                // A field the edit removed (a geometry cleared) is set to null.
                for name in before.iter().flat_map(|b| b.keys()) {
                    if !row.contains_key(name) {
                        self.set.insert(name.clone(), (Value::Null, seq));
                    }
                }
            }
        }
        self.at = Some(at);
        self
    }

    /// The feed position of its latest part.
    pub fn seq(&self) -> i64 {
        let set = self.set.values().map(|(_, s)| *s).max().unwrap_or(0);
        set.max(self.deleted.unwrap_or(0))
    }

    /// The feed position of its earliest part still here.
    fn first_seq(&self) -> i64 {
        let set = self.set.values().map(|(_, s)| *s).min();
        match (set, self.deleted) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        }
    }

    /// What stays pending once the origin has seen the copy's edits up to `seen`, against its
    /// row of `version`: the parts made after, based on that version. `None`: nothing left.
    pub fn after_seen(&self, seen: i64, version: i64) -> Option<Pending> {
        if self.seq() <= seen {
            return None;
        }
        let set = self
            .set
            .iter()
            .filter(|(_, (_, s))| *s > seen)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Pending {
            base: version,
            // Once the origin has judged a part, the key is no longer new to it.
            inserted: self.inserted && self.first_seq() > seen,
            set,
            deleted: self.deleted.filter(|s| *s > seen),
            at: self.at.clone(),
        })
    }

    /// The copy's row: the origin's content with the pending parts over it.
    pub fn over(&self, origin: Option<&Fields>) -> Option<Fields> {
        if self.deleted.is_some() {
            return None;
        }
        if origin.is_none() && self.set.is_empty() {
            return None;
        }
        let mut row = origin.cloned().unwrap_or_default();
        for (name, (value, _)) in &self.set {
            row.insert(name.clone(), value.clone());
        }
        Some(row)
    }

    /// The edit that carries it to the origin; `row` is the copy's current row.
    pub fn edit(&self, editor: &str, row: Option<&Fields>) -> Edit {
        let action = match (self.deleted, row) {
            (Some(_), _) | (None, None) => Action::Delete,
            (None, Some(whole)) => Action::Put {
                set: self
                    .set
                    .iter()
                    .map(|(k, (v, _))| (k.clone(), v.clone()))
                    .collect(),
                row: whole.clone(),
            },
        };
        Edit {
            editor: editor.to_string(),
            seq: self.seq(),
            base: self.base,
            inserted: self.inserted,
            action,
            at: self.at.clone().unwrap_or(Stamp {
                ms: 0,
                count: 0,
                instance: editor.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
