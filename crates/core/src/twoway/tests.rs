use super::*;
use proptest::prelude::*;
use serde_json::json;

fn fields(pairs: &[(&str, i64)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

fn stamp(ms: i64, instance: &str) -> Stamp {
    Stamp {
        ms,
        count: 0,
        instance: instance.into(),
    }
}

fn change(version: i64, by: &str, ms: i64) -> Change {
    Change {
        version,
        by: by.into(),
        at: stamp(ms, by),
    }
}

/// A row at version 10 with a=1, b=2, c=3; `b` changed by the origin at version 10.
fn origin_row() -> OriginRow {
    OriginRow {
        fields: Some(fields(&[("a", 1), ("b", 2), ("c", 3)])),
        version: 10,
        changes: [("b".to_string(), change(10, "origin", 100))].into(),
        life: None,
        seen: BTreeMap::new(),
    }
}

fn put(editor: &str, seq: i64, base: i64, set: &[(&str, i64)], ms: i64) -> Edit {
    let set = fields(set);
    let mut row = fields(&[("a", 1), ("b", 2), ("c", 3)]);
    row.extend(set.clone());
    Edit {
        editor: editor.into(),
        seq,
        base,
        inserted: false,
        action: Action::Put { set, row },
        at: stamp(ms, editor),
    }
}

#[test]
fn an_edit_from_the_current_version_applies_exactly_and_is_acknowledged() {
    let row = origin_row();
    let judged = judge(
        Some(&row),
        &put("g1", 5, 10, &[("a", 9)], 200),
        Policy::OriginWins,
        11,
    );
    assert_eq!(judged.conflict, None);
    assert_eq!(
        judged.row.fields,
        Some(fields(&[("a", 9), ("b", 2), ("c", 3)]))
    );
    assert_eq!((judged.row.version, judged.row.seen["g1"]), (11, 5));
    assert_eq!(judged.row.changes["a"].by, "g1");
    // Law 1: the same edit again changes nothing.
    let again = judge(
        Some(&judged.row),
        &put("g1", 5, 10, &[("a", 9)], 200),
        Policy::OriginWins,
        12,
    );
    assert!(again.duplicate);
    assert_eq!(again.row, judged.row);
}

#[test]
fn disjoint_fields_merge_and_the_same_field_is_one_conflict() {
    let row = origin_row();
    // Made from version 9: `b` changed since, by the origin.
    let disjoint = judge(
        Some(&row),
        &put("g1", 5, 9, &[("a", 9), ("c", 7)], 200),
        Policy::OriginWins,
        11,
    );
    assert_eq!(disjoint.conflict, None);
    assert_eq!(
        disjoint.row.fields,
        Some(fields(&[("a", 9), ("b", 2), ("c", 7)]))
    );
    for policy in [Policy::OriginWins, Policy::LatestWins, Policy::Manual] {
        let judged = judge(
            Some(&row),
            &put("g1", 5, 9, &[("a", 9), ("b", 8)], 200),
            policy,
            11,
        );
        let conflict = judged.conflict.expect("a conflict");
        assert_eq!(conflict.kind, ConflictKind::SameField);
        assert_eq!(conflict.fields, vec!["b".to_string()]);
        assert_eq!(conflict.ours.as_ref().unwrap()["b"], json!(2));
        assert_eq!(conflict.theirs.as_ref().unwrap()["b"], json!(8));
        assert_eq!(conflict.open, policy == Policy::Manual);
        let b = &judged.row.fields.as_ref().unwrap()["b"];
        // The edit's clock (200) is later than the origin's change (100).
        let expected = if policy == Policy::LatestWins { 8 } else { 2 };
        assert_eq!(b, &json!(expected), "{policy:?}");
        assert_eq!(
            judged.row.fields.as_ref().unwrap()["a"],
            json!(9),
            "the rest merges"
        );
    }
    // The same value on both sides is no conflict.
    let same = judge(
        Some(&row),
        &put("g1", 5, 9, &[("b", 2)], 200),
        Policy::OriginWins,
        11,
    );
    assert_eq!(same.conflict, None);
}

#[test]
fn latest_wins_breaks_clock_ties_by_instance() {
    let mut row = origin_row();
    row.changes
        .insert("b".into(), change(10, "m-instance", 200));
    let older_name = judge(
        Some(&row),
        &put("a-instance", 5, 9, &[("b", 8)], 200),
        Policy::LatestWins,
        11,
    );
    assert_eq!(older_name.row.fields.unwrap()["b"], json!(2));
    let newer_name = judge(
        Some(&row),
        &put("z-instance", 5, 9, &[("b", 8)], 200),
        Policy::LatestWins,
        11,
    );
    assert_eq!(newer_name.row.fields.unwrap()["b"], json!(8));
}

#[test]
fn an_editors_clock_far_ahead_is_held_to_the_origins_time_plus_the_lead() {
    let mut clock = Clock::default();
    let honest = stamp(1_000_500, "g1");
    assert_eq!(
        clock.bounded(&honest, 1_000_000),
        honest,
        "a little ahead is believed"
    );
    let liar = stamp(9_000_000_000, "g2");
    let held = clock.bounded(&liar, 1_000_000);
    assert_eq!(
        (held.ms, held.instance.as_str()),
        (1_000_000 + MAX_CLOCK_LEAD_MS, "g2")
    );
    // What the origin edits next orders after what it took in.
    let next = clock.tick(1_000_000, "origin");
    assert!((next.ms, next.count) > (held.ms, held.count));
    // A reading with a full count carries into the next millisecond, never wraps.
    let full = Stamp {
        count: u32::MAX,
        ..stamp(1_000_100, "g3")
    };
    let mut fresh = Clock::default();
    fresh.bounded(&full, 1_000_000);
    let after = fresh.tick(1_000_000, "origin");
    assert_eq!((after.ms, after.count), (1_000_101, 0));
}

#[test]
fn an_editors_own_earlier_change_is_no_conflict() {
    let mut row = origin_row();
    row.changes.insert("a".into(), change(10, "g1", 150));
    let judged = judge(
        Some(&row),
        &put("g1", 6, 9, &[("a", 5)], 300),
        Policy::OriginWins,
        11,
    );
    assert_eq!(judged.conflict, None);
    assert_eq!(judged.row.fields.unwrap()["a"], json!(5));
}

#[test]
fn update_against_delete_keeps_the_row_either_way() {
    let mut deleted = origin_row();
    deleted.fields = None;
    deleted.life = Some(change(10, "origin", 100));
    let judged = judge(
        Some(&deleted),
        &put("g1", 5, 9, &[("a", 9)], 200),
        Policy::OriginWins,
        11,
    );
    let conflict = judged.conflict.expect("a conflict");
    assert_eq!(conflict.kind, ConflictKind::UpdateDelete);
    assert_eq!(
        judged.row.fields,
        Some(fields(&[("a", 9), ("b", 2), ("c", 3)]))
    );

    let row = origin_row();
    let delete = Edit {
        action: Action::Delete,
        ..put("g1", 5, 9, &[], 200)
    };
    let judged = judge(Some(&row), &delete, Policy::OriginWins, 11);
    assert_eq!(judged.conflict.unwrap().kind, ConflictKind::DeleteUpdate);
    assert_eq!(judged.row.fields, row.fields, "the changed row stays");
    // A delete from the current version deletes.
    let judged = judge(
        Some(&row),
        &Edit { base: 10, ..delete },
        Policy::OriginWins,
        11,
    );
    assert_eq!((judged.row.fields, judged.conflict), (None, None));
}

#[test]
fn a_refused_edit_changes_nothing_is_acknowledged_and_kept_open() {
    let row = origin_row();
    let edit = put("g1", 5, 10, &[("a", 9)], 200);
    let refused = refuse(Some(&row), &edit, 11).expect("a first refusal writes");
    assert_eq!(refused.row.fields, row.fields, "no field changes");
    assert_eq!(refused.row.changes, row.changes);
    assert_eq!((refused.row.version, refused.row.seen["g1"]), (11, 5));
    let conflict = refused.conflict.expect("kept as a conflict");
    assert_eq!(conflict.kind, ConflictKind::Refused);
    assert!(conflict.open && !conflict.theirs_won);
    assert_eq!(conflict.fields, vec!["a".to_string()]);
    assert_eq!(conflict.theirs.unwrap()["a"], json!(9));
    assert_eq!(conflict.ours, row.fields);
    // Refused again (a replay): nothing to write; a later edit of the same copy is judged.
    assert!(refuse(Some(&refused.row), &edit, 12).is_none());
    let later = judge(
        Some(&refused.row),
        &put("g1", 6, 11, &[("c", 7)], 300),
        Policy::OriginWins,
        12,
    );
    assert_eq!(later.row.fields.unwrap()["c"], json!(7));
    // The copy, told the origin saw position 5, drops its refused part.
    let pending = Pending::new(10, false).then(
        row.fields.as_ref(),
        Some(&fields(&[("a", 9), ("b", 2), ("c", 3)])),
        5,
        stamp(200, "g1"),
    );
    assert_eq!(pending.after_seen(5, 11), None);
}

#[test]
fn two_inserts_of_a_key_conflict_on_what_differs() {
    let row = origin_row();
    let insert = Edit {
        inserted: true,
        base: 0,
        action: Action::Put {
            set: fields(&[("a", 1), ("b", 5), ("c", 3)]),
            row: fields(&[("a", 1), ("b", 5), ("c", 3)]),
        },
        ..put("g1", 5, 0, &[], 200)
    };
    let judged = judge(Some(&row), &insert, Policy::OriginWins, 11);
    let conflict = judged.conflict.unwrap();
    assert_eq!(
        (conflict.kind, conflict.fields),
        (ConflictKind::DoubleInsert, vec!["b".to_string()])
    );
    // Into nothing, an insert is an insert.
    let judged = judge(None, &insert, Policy::OriginWins, 1);
    assert_eq!(
        (judged.row.fields.unwrap()["b"].clone(), judged.conflict),
        (json!(5), None)
    );
}

#[test]
fn a_copy_keeps_what_the_origin_has_not_seen() {
    let origin = fields(&[("a", 1), ("b", 2)]);
    let mut clock = Clock::default();
    let pending = Pending::new(10, false)
        .then(
            Some(&origin),
            Some(&fields(&[("a", 5), ("b", 2)])),
            3,
            clock.tick(100, "g1"),
        )
        .then(
            Some(&fields(&[("a", 5), ("b", 2)])),
            Some(&fields(&[("a", 5), ("b", 6)])),
            4,
            clock.tick(100, "g1"),
        );
    assert_eq!(pending.seq(), 4);
    let edit = pending.edit("g1", Some(&fields(&[("a", 5), ("b", 6)])));
    assert_eq!((edit.base, edit.seq), (10, 4));
    // The origin saw the first part only: the second stays, on the new version.
    let left = pending.after_seen(3, 11).unwrap();
    assert_eq!(left.base, 11);
    assert_eq!(left.set.keys().collect::<Vec<_>>(), vec!["b"]);
    let row = left.over(Some(&fields(&[("a", 7), ("b", 2)]))).unwrap();
    assert_eq!(
        row,
        fields(&[("a", 7), ("b", 6)]),
        "the origin's a, the copy's b"
    );
    assert_eq!(pending.after_seen(4, 12), None);
    // Clocks never go back, even behind a clock seen from elsewhere.
    clock.observe(&stamp(500, "h"));
    assert!(clock.tick(100, "g1") > stamp(500, "h"));
}

#[test]
fn a_copys_own_insert_edited_again_is_no_conflict() {
    let whole = fields(&[("a", 1), ("b", 2)]);
    let insert = Edit {
        inserted: true,
        base: 0,
        action: Action::Put {
            set: whole.clone(),
            row: whole,
        },
        ..put("g1", 5, 0, &[], 100)
    };
    let first = judge(None, &insert, Policy::OriginWins, 1);
    // Edited again before the copy heard back: from the copy, still its insert.
    let again = Edit {
        seq: 6,
        action: Action::Put {
            set: fields(&[("a", 1), ("b", 3)]),
            row: fields(&[("a", 1), ("b", 3)]),
        },
        ..insert
    };
    let judged = judge(Some(&first.row), &again, Policy::OriginWins, 2);
    assert_eq!(judged.conflict, None);
    assert_eq!(judged.row.fields.unwrap()["b"], json!(3));
}

#[test]
fn a_field_an_edit_removes_is_set_to_null() {
    let before: Fields = [
        ("a".to_string(), json!(1)),
        (
            GEOMETRY.to_string(),
            json!({"type": "Point", "coordinates": [1, 2]}),
        ),
    ]
    .into();
    let after = fields(&[("a", 1)]);
    let pending = Pending::new(10, false).then(Some(&before), Some(&after), 3, stamp(1, "g1"));
    assert_eq!(pending.set[GEOMETRY], (serde_json::Value::Null, 3));
    // An edit that changes nothing leaves nothing to send.
    let none = Pending::new(10, false).then(Some(&after), Some(&after), 4, stamp(2, "g1"));
    assert_eq!(none.seq(), 0);
}

// ---- random interleavings --------------------------------------------------------------------

/// One copy of the layer in the simulation.
#[derive(Debug, Default, Clone)]
struct Copy {
    name: String,
    /// The origin's rows as this copy last received them.
    received: BTreeMap<i64, OriginRow>,
    pending: BTreeMap<i64, Pending>,
    seq: i64,
    /// The origin's version this copy has received up to.
    cursor: i64,
    /// How far into this copy's edits the origin has pulled.
    pulled: i64,
    clock: Clock,
}

impl Copy {
    fn row(&self, key: i64) -> Option<Fields> {
        let origin = self.received.get(&key).and_then(|r| r.fields.as_ref());
        match self.pending.get(&key) {
            Some(p) => p.over(origin),
            None => origin.cloned(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Instance (0: the origin), key, field, or a delete when `field` is `None`.
    Edit(usize, i64, Option<usize>),
    Pull(usize),
    Push(usize),
    /// A pull delivered again from the start (a crash before the cursor was kept).
    Replay(usize),
}

struct Sim {
    policy: Policy,
    rows: BTreeMap<i64, OriginRow>,
    version: i64,
    clock: Clock,
    copies: Vec<Copy>,
    value: i64,
    now: i64,
    conflicts: usize,
}

const FIELDS: [&str; 3] = ["a", "b", "c"];

impl Sim {
    fn new(copies: usize, policy: Policy) -> Sim {
        Sim {
            policy,
            rows: BTreeMap::new(),
            version: 0,
            clock: Clock::default(),
            copies: (1..=copies)
                .map(|i| Copy {
                    name: format!("g{i}"),
                    ..Copy::default()
                })
                .collect(),
            value: 0,
            now: 0,
            conflicts: 0,
        }
    }

    fn fresh(&mut self) -> Value {
        self.value += 1;
        self.now += 1;
        json!(self.value)
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Edit(0, key, field) => self.origin_edit(key, field),
            Op::Edit(i, key, field) => self.copy_edit(i - 1, key, field),
            Op::Pull(i) => self.pull(i - 1, false),
            Op::Replay(i) => self.pull(i - 1, true),
            Op::Push(i) => self.push(i - 1),
        }
    }

    fn origin_edit(&mut self, key: i64, field: Option<usize>) {
        let value = self.fresh();
        self.version += 1;
        let at = self.clock.tick(self.now, "origin");
        let by = Change {
            version: self.version,
            by: "origin".into(),
            at,
        };
        let row = self.rows.entry(key).or_default();
        row.version = by.version;
        match (field, row.fields.as_mut()) {
            (None, _) => {
                row.fields = None;
                row.life = Some(by);
            }
            (Some(f), Some(fields)) => {
                fields.insert(FIELDS[f].into(), value);
                row.changes.insert(FIELDS[f].into(), by);
            }
            (Some(f), None) => {
                row.fields = Some([(FIELDS[f].to_string(), value)].into());
                row.changes.insert(FIELDS[f].into(), by.clone());
                row.life = Some(by);
            }
        }
    }

    fn copy_edit(&mut self, i: usize, key: i64, field: Option<usize>) {
        let value = self.fresh();
        let now = self.now;
        let copy = &mut self.copies[i];
        let before = copy.row(key);
        let after = match field {
            None => None,
            Some(f) => {
                let mut row = before.clone().unwrap_or_default();
                row.insert(FIELDS[f].into(), value);
                Some(row)
            }
        };
        if before.is_none() && after.is_none() {
            return;
        }
        copy.seq += 1;
        let at = copy.clock.tick(now, &copy.name);
        let received = copy.received.get(&key);
        let pending = copy.pending.remove(&key).unwrap_or_else(|| {
            let base = received.map_or(0, |r| r.version);
            Pending::new(base, received.and_then(|r| r.fields.as_ref()).is_none())
        });
        let next = pending.then(before.as_ref(), after.as_ref(), copy.seq, at);
        copy.pending.insert(key, next);
    }

    /// The origin judges the copy's pending edits it has not pulled yet (all of them, on a
    /// replay), checking law 8 on every judgement.
    fn pull(&mut self, i: usize, replay: bool) {
        let copy = &self.copies[i];
        let from = if replay { 0 } else { copy.pulled };
        let edits: Vec<(i64, Edit)> = copy
            .pending
            .iter()
            .filter(|(_, p)| p.seq() > from)
            .map(|(key, p)| (*key, p.edit(&copy.name, copy.row(*key).as_ref())))
            .collect();
        for (key, edit) in edits {
            let judged = judge(self.rows.get(&key), &edit, self.policy, self.version + 1);
            if judged.duplicate {
                continue;
            }
            self.version += 1;
            self.clock.observe(&edit.at);
            check_nothing_lost(self.rows.get(&key), &edit, &judged);
            self.conflicts += usize::from(judged.conflict.is_some());
            self.rows.insert(key, judged.row);
        }
        let copy = &mut self.copies[i];
        copy.pulled = copy.seq;
    }

    /// The copy receives the origin's rows changed since its cursor.
    fn push(&mut self, i: usize) {
        let copy = &mut self.copies[i];
        for (key, row) in self.rows.iter().filter(|(_, r)| r.version > copy.cursor) {
            let seen = row.seen.get(&copy.name).copied().unwrap_or(0);
            if let Some(p) = copy.pending.remove(key)
                && let Some(left) = p.after_seen(seen, row.version)
            {
                copy.pending.insert(*key, left);
            }
            copy.received.insert(*key, row.clone());
        }
        copy.cursor = self.version;
    }

    /// Runs every link until nothing is pending, then checks that every copy holds the
    /// origin's rows.
    fn settle(&mut self) {
        for _ in 0..4 {
            for i in 0..self.copies.len() {
                self.pull(i, false);
                self.push(i);
            }
        }
        let origin: BTreeMap<i64, Fields> = self
            .rows
            .iter()
            .filter_map(|(k, r)| r.fields.clone().map(|f| (*k, f)))
            .collect();
        for copy in &self.copies {
            assert!(
                copy.pending.is_empty(),
                "{} still has {:?}",
                copy.name,
                copy.pending
            );
            let rows: BTreeMap<i64, Fields> = self
                .rows
                .keys()
                .filter_map(|k| copy.row(*k).map(|r| (*k, r)))
                .collect();
            assert_eq!(rows, origin, "{} differs from the origin", copy.name);
        }
    }
}

/// Law 8: every value the edit sets is in the row or in its conflict as "theirs"; every origin
/// value the judgement replaces was not changed concurrently, or is in the conflict as "ours".
fn check_nothing_lost(before: Option<&OriginRow>, edit: &Edit, judged: &Judgement) {
    let after = judged.row.fields.as_ref();
    let conflict = judged.conflict.as_ref();
    match &edit.action {
        Action::Put { set, row } => {
            // As `judge` reads an edit: its whole row into an absent or deleted row, or for an
            // insert of a key it never had; the fields it set otherwise (the rest of its row is
            // the origin's content as it last received it).
            let absent = before.and_then(|b| b.fields.as_ref()).is_none();
            let given = if absent || (edit.inserted && edit.base == 0) {
                row
            } else {
                set
            };
            for (name, value) in given {
                let kept = after.and_then(|a| a.get(name)) == Some(value);
                let recorded = conflict
                    .and_then(|c| c.theirs.as_ref())
                    .and_then(|t| t.get(name))
                    == Some(value);
                assert!(
                    kept || recorded,
                    "{name}={value} of {edit:?} vanished: {judged:?}"
                );
            }
        }
        Action::Delete => {
            assert!(
                after.is_none() || conflict.is_some(),
                "a delete vanished: {judged:?}"
            );
        }
    }
    let Some(ours) = before.and_then(|b| b.fields.as_ref()) else {
        return;
    };
    for (name, value) in ours {
        let concurrent = before
            .and_then(|b| b.changes.get(name))
            .is_some_and(|c| c.version > edit.base && c.by != edit.editor);
        let replaced = after.and_then(|a| a.get(name)) != Some(value);
        if concurrent && replaced {
            let recorded = conflict
                .and_then(|c| c.ours.as_ref())
                .and_then(|o| o.get(name));
            assert_eq!(
                recorded,
                Some(value),
                "the origin's {name} vanished: {judged:?}"
            );
        }
    }
}

fn ops(instances: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = (
        0..instances,
        0..3i64,
        prop::option::weighted(0.85, 0..3usize),
        0..6u8,
    )
        .prop_map(move |(i, key, field, kind)| {
            let copy = 1 + i % (instances - 1);
            match kind {
                0..=2 => Op::Edit(i, key, field),
                3 => Op::Pull(copy),
                4 => Op::Push(copy),
                _ => Op::Replay(copy),
            }
        });
    prop::collection::vec(op, 0..60)
}

fn policies() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::OriginWins),
        Just(Policy::LatestWins),
        Just(Policy::Manual)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Two instances, any interleaving of edits and runs: they converge, and nothing is lost.
    #[test]
    fn two_instances_converge(ops in ops(2), policy in policies()) {
        let mut sim = Sim::new(1, policy);
        for op in &ops {
            sim.run(op);
        }
        sim.settle();
    }

    /// Three instances (an origin and two copies), any interleaving, replays included.
    #[test]
    fn three_instances_converge(ops in ops(3), policy in policies()) {
        let mut sim = Sim::new(2, policy);
        for op in &ops {
            sim.run(op);
        }
        sim.settle();
    }
}

#[test]
fn concurrent_edits_to_one_field_are_one_conflict() {
    let mut sim = Sim::new(2, Policy::OriginWins);
    sim.run(&Op::Edit(0, 1, Some(0)));
    sim.settle();
    // Both copies change `a` of row 1 from the same version; the origin changes `b`.
    sim.run(&Op::Edit(1, 1, Some(0)));
    sim.run(&Op::Edit(2, 1, Some(0)));
    sim.run(&Op::Edit(0, 1, Some(1)));
    sim.settle();
    assert_eq!(
        sim.conflicts, 1,
        "the second copy's `a` against the first's"
    );
    let row = sim.rows[&1].fields.clone().unwrap();
    assert!(row.contains_key("b"), "the origin's disjoint change merged");
}
