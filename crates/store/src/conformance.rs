//! The storage conformance suite: behaviour every [`Store`] backend must show.
//!
//! A backend runs it with [`store_conformance_tests!`](crate::store_conformance_tests), giving an
//! expression that opens a fresh, empty store. Each check is a plain function so a failure names
//! the rule that broke.

use crate::{
    AddKey, EditPlan, ItemDraft, ItemShape, NoRows, RawChange, RawRow, RowAdd, RowQuery, RowRecord,
    RowSource, RowUpdate, SentPart, Store, StoreError,
};
use ferry_core::geometry::{BBox, RawGeometry};
use ferry_core::tiles::Tile;
use ferry_core::{CoreError, CoreResult, Key};
use ferry_proto::{
    Change, ErrorCode, Field, FieldType, ItemKind, ItemPatch, NewSpace, Role, Schema, SpacePatch,
};
use serde_json::json;

/// Generates one `#[test]` per conformance check. `$open` must evaluate to a fresh store
/// (`impl Store`); it may use a temporary directory it keeps alive in the returned value.
#[macro_export]
macro_rules! store_conformance_tests {
    ($open:expr) => {
        $crate::store_conformance_tests!(@each $open;
            spaces_lifecycle, tokens_lifecycle, import_and_query, import_is_all_or_nothing,
            edits_are_all_or_nothing, edits_update_and_delete, change_feed_order_and_tombstones,
            change_feed_pages, change_feed_skips_rows_of_items, change_feed_is_per_space, moved_items_change_feeds, marking_changes_are_audited, markings_of_several_links_add_up,
            epoch_rotation, item_deletion, item_pages, files, the_sweep_removes_orphan_chunks_only,
            policy_rules_are_audited, nonces_refuse_replays, peer_records, collab_records,
            linked_spaces_are_not_deleted, arrivals_end_per_link, sync_batches_apply_with_their_cursor,
            full_passes_sweep_and_retract, item_copies_and_pending_items,
            inline_items_arrive_until_their_stream_ends,
            a_retracted_copy_keeps_what_another_link_brings, kept_items_keep_their_origin,
            sync_runs_are_kept,
            references_hold_no_rows, geometry_text_reads_back_as_written,
            map_tiles_find_and_thin_features);
    };
    (@each $open:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                let store = $open;
                $crate::conformance::$check(&*store);
            }
        )*
    };
}

fn space(store: &dyn Store, name: &str) {
    store
        .create_space(&NewSpace {
            name: name.into(),
            description: String::new(),
        })
        .expect("create space");
}

fn draft(space: &str, kind: ItemKind) -> ItemDraft {
    ItemDraft {
        space_ref: space.into(),
        kind,
        title: "Test".into(),
        description: String::new(),
        tags: vec![],
        markings: vec![],
        owner: "admin".into(),
        crs: None,
        file: None,
    }
}

/// Rows from a vector, optionally failing after the last one.
struct VecRows {
    rows: std::vec::IntoIter<RowRecord>,
    fail_at_end: Option<CoreError>,
    schema: Schema,
}

impl RowSource for VecRows {
    fn next_row(&mut self) -> CoreResult<Option<RowRecord>> {
        match self.rows.next() {
            Some(r) => Ok(Some(r)),
            None => self.fail_at_end.take().map_or(Ok(None), Err),
        }
    }
    fn shape(&self) -> ItemShape {
        ItemShape {
            schema: Some(self.schema.clone()),
            geometry_type: Some(ferry_proto::GeometryType::Point),
            crs: Some("EPSG:4326".into()),
        }
    }
}

fn layer_schema() -> Schema {
    Schema {
        fields: vec![
            Field {
                name: "name".into(),
                field_type: FieldType::String,
            },
            Field {
                name: "n".into(),
                field_type: FieldType::Integer,
            },
        ],
        primary_key: None,
    }
}

fn point_row(key: i64, x: f64, y: f64) -> RowRecord {
    let geometry = RawGeometry::from_value(&json!({"type": "Point", "coordinates": [x, y]}))
        .and_then(|g| g.validate(true))
        .expect("valid point");
    RowRecord {
        key: Key::Int(key),
        values: json!({"name": format!("p{key}"), "n": key % 3}).to_string(),
        geometry: Some(geometry),
    }
}

fn points(n: i64) -> VecRows {
    VecRows {
        rows: (1..=n)
            .map(|k| point_row(k, k as f64, k as f64 / 2.0))
            .collect::<Vec<_>>()
            .into_iter(),
        fail_at_end: None,
        schema: layer_schema(),
    }
}

pub(crate) fn layer(store: &dyn Store, space_name: &str, n: i64) -> ferry_proto::Item {
    store
        .create_item(&draft(space_name, ItemKind::FeatureLayer), &mut points(n))
        .expect("create layer")
}

/// Geometry texts as they may come (compact, spaced, 3D, other key orders, other types).
pub const GEOMETRY_TEXTS: [&str; 6] = [
    r#"{"type":"Point","coordinates":[1.5,-2.25]}"#,
    r#"{"type":"Point","coordinates":[1,2]}"#,
    r#"{ "type": "Point", "coordinates": [3, 4] }"#,
    r#"{"type":"Point","coordinates":[1,2,3]}"#,
    r#"{"coordinates":[5,6],"type":"Point"}"#,
    r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#,
];

/// A layer with one row per [`GEOMETRY_TEXTS`] (keys from 1) and one without a geometry.
pub fn layer_of_geometry_texts(store: &dyn Store, space_name: &str) -> ferry_proto::Item {
    let mut rows: Vec<RowRecord> = GEOMETRY_TEXTS
        .iter()
        .zip(1..)
        .map(|(text, key)| RowRecord {
            geometry: Some(RawGeometry::validate_text(text, true).expect("valid geometry")),
            ..point_row(key, 0.0, 0.0)
        })
        .collect();
    rows.push(RowRecord {
        geometry: None,
        ..point_row(GEOMETRY_TEXTS.len() as i64 + 1, 0.0, 0.0)
    });
    let mut source = VecRows {
        rows: rows.into_iter(),
        fail_at_end: None,
        schema: layer_schema(),
    };
    store
        .create_item(&draft(space_name, ItemKind::FeatureLayer), &mut source)
        .expect("create layer")
}

fn code(err: StoreError) -> String {
    format!("{err:?}")
}

pub fn spaces_lifecycle(store: &dyn Store) {
    space(store, "alpha");
    let dup = store.create_space(&NewSpace {
        name: "alpha".into(),
        description: String::new(),
    });
    assert!(matches!(dup, Err(StoreError::SpaceNameTaken(_))), "{dup:?}");
    let renamed = store
        .update_space(
            "alpha",
            &SpacePatch {
                name: Some("beta".into()),
                description: Some("About beta".into()),
            },
        )
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("beta", "About beta")
    );
    assert_eq!(store.space(&renamed.id.to_string()).unwrap().name, "beta");
    assert!(matches!(
        store.space("alpha"),
        Err(StoreError::SpaceNotFound(_))
    ));
    layer(store, "beta", 2);
    let refused = store.delete_space("beta", false);
    assert!(
        matches!(refused, Err(StoreError::SpaceNotEmpty { items: 1, .. })),
        "{refused:?}"
    );
    assert_eq!(store.list_spaces().unwrap().len(), 1);
    store.delete_space("beta", true).unwrap();
    assert!(store.list_spaces().unwrap().is_empty());
    assert!(store.list_items(None).unwrap().is_empty());
}

pub fn tokens_lifecycle(store: &dyn Store) {
    let hash = [9u8; 32];
    let t = store
        .create_token("ana", Role::Editor, hash, "admin")
        .unwrap();
    let found = store.token_by_hash(hash).unwrap().unwrap();
    assert_eq!(found, t);
    assert_eq!(store.token(t.id).unwrap(), t);
    assert!(matches!(
        store.token(ferry_proto::TokenId::generate()),
        Err(StoreError::TokenNotFound(_))
    ));
    assert!(store.token_by_hash([1u8; 32]).unwrap().is_none());
    let revoked = store.revoke_token(t.id, "root").unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(store.token(t.id).unwrap().revoked_at.is_some());
    assert!(
        store
            .token_by_hash(hash)
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(matches!(
        store.revoke_token(ferry_proto::TokenId::generate(), "root"),
        Err(StoreError::TokenNotFound(_))
    ));
    assert_eq!(store.list_tokens().unwrap().len(), 1);

    // The last live admin token stays: nobody could administer the instance without one.
    let first = store
        .create_token("admin", Role::Admin, [1u8; 32], "setup")
        .unwrap();
    assert!(matches!(
        store.revoke_token(first.id, "admin"),
        Err(StoreError::LastAdminToken(_))
    ));
    let second = store
        .create_token("ops", Role::Admin, [2u8; 32], "admin")
        .unwrap();
    store.revoke_token(first.id, "ops").unwrap();
    assert!(matches!(
        store.revoke_token(second.id, "ops"),
        Err(StoreError::LastAdminToken(_))
    ));
    assert!(
        store
            .token_by_hash([2u8; 32])
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );

    // Every creation and revocation is audited, with who did it; a refusal is not.
    let log: Vec<(String, String, Option<String>)> = store
        .list_audit(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.actor, e.subject))
        .collect();
    let id = |t: &ferry_proto::TokenInfo| Some(t.id.to_string());
    assert_eq!(
        log,
        vec![
            ("token.created".into(), "admin".into(), id(&t)),
            ("token.revoked".into(), "root".into(), id(&t)),
            ("token.created".into(), "setup".into(), id(&first)),
            ("token.created".into(), "admin".into(), id(&second)),
            ("token.revoked".into(), "ops".into(), id(&first)),
        ]
    );
}

pub fn import_and_query(store: &dyn Store) {
    space(store, "s");
    let item = layer(store, "s", 25);
    assert_eq!(item.row_count, 25);
    assert_eq!(item.schema, Some(layer_schema()));
    let page = |after: Option<Key>| {
        store
            .query_rows(
                item.id,
                &RowQuery {
                    after,
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap()
    };
    let first = page(None);
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].key, json!(1));
    let second = page(Some(Key::Int(10)));
    assert_eq!(second[0].key, json!(11), "integer keys sort numerically");
    assert_eq!(page(Some(Key::Int(20))).len(), 5);
    let in_box = |min_x, min_y, max_x, max_y| -> Vec<serde_json::Value> {
        let bbox = BBox {
            min_x,
            min_y,
            max_x,
            max_y,
        };
        let query = RowQuery {
            limit: 100,
            bbox: Some(bbox),
            ..Default::default()
        };
        let rows = store.query_rows(item.id, &query).unwrap();
        rows.into_iter().map(|r| r.key).collect()
    };
    assert_eq!(
        in_box(2.5, 0.0, 5.0, 10.0),
        vec![json!(3), json!(4), json!(5)]
    );
    // A box that is exactly one point still finds it (a point's stored maximum is its minimum).
    assert_eq!(in_box(4.0, 2.0, 4.0, 2.0), vec![json!(4)]);
    let equal = store
        .query_rows(
            item.id,
            &RowQuery {
                limit: 100,
                equals: vec![("n".into(), json!(0))],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(equal.len(), 8);
    assert!(equal.iter().all(|r| r.values["n"] == json!(0)));
    let by_name = store
        .query_rows(
            item.id,
            &RowQuery {
                limit: 100,
                equals: vec![("name".into(), json!("p7"))],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(by_name.len(), 1);
    let mut scanned = Vec::new();
    store
        .scan_rows(item.id, &mut |r: RawRow<'_>| {
            scanned.push(r.key.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(scanned.len(), 25);
    assert!(scanned.windows(2).all(|w| w[0] < w[1]));
}

pub fn import_is_all_or_nothing(store: &dyn Store) {
    space(store, "s");
    let before = store.instance().unwrap().last_seq;
    let mut failing = points(50);
    failing.fail_at_end = Some(CoreError::InvalidGeometry("feature 51: bad".into()));
    let err = store
        .create_item(&draft("s", ItemKind::FeatureLayer), &mut failing)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(CoreError::InvalidGeometry(_))),
        "{err:?}"
    );
    let mut dup = points(3);
    dup.rows = vec![point_row(1, 0.0, 0.0), point_row(1, 1.0, 1.0)].into_iter();
    let err = store
        .create_item(&draft("s", ItemKind::FeatureLayer), &mut dup)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(CoreError::DuplicateKey(_))),
        "{err:?}"
    );
    assert!(
        store.list_items(None).unwrap().is_empty(),
        "no partial item"
    );
    assert_eq!(
        store.instance().unwrap().last_seq,
        before,
        "no sequence consumed"
    );
    let missing = store.create_item(&draft("nope", ItemKind::FeatureLayer), &mut points(1));
    assert!(matches!(missing, Err(StoreError::SpaceNotFound(_))));
}

fn add(key: i64) -> RowAdd {
    RowAdd {
        key: AddKey::Given(Key::Int(key)),
        values: json!({"name": "new", "n": 1}).as_object().unwrap().clone(),
        geometry: None,
    }
}

pub fn edits_are_all_or_nothing(store: &dyn Store) {
    space(store, "s");
    let item = layer(store, "s", 3);
    let seq_before = store.instance().unwrap().last_seq;
    let plan = EditPlan {
        adds: vec![add(10), add(2)],
        updates: vec![RowUpdate {
            key: Key::Int(99),
            values: Default::default(),
            geometry: None,
        }],
        deletes: vec![Key::Int(1), Key::Int(42)],
        geometry_type: None,
        stamp: None,
    };
    let err = store.apply_edits(item.id, &plan).unwrap_err();
    let StoreError::EditsRejected {
        failed,
        total,
        results,
    } = err
    else {
        panic!("expected EditsRejected, got {}", code(err));
    };
    assert_eq!((failed, total), (3, 5));
    let codes: Vec<_> = results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(ErrorCode::DuplicateKey),
            Some(ErrorCode::RowNotFound),
            None,
            Some(ErrorCode::RowNotFound)
        ]
    );
    assert_eq!(store.instance().unwrap().last_seq, seq_before);
    let after = store.item(item.id).unwrap();
    assert_eq!((after.row_count, after.version), (3, item.version));
    assert!(store.row(item.id, &Key::Int(10)).unwrap().is_none());
    assert!(store.row(item.id, &Key::Int(1)).unwrap().is_some());
}

pub fn edits_update_and_delete(store: &dyn Store) {
    space(store, "s");
    let item = layer(store, "s", 3);
    let plan = EditPlan {
        adds: vec![
            RowAdd {
                key: AddKey::Generate,
                ..add(0)
            },
            RowAdd {
                key: AddKey::Generate,
                ..add(0)
            },
        ],
        updates: vec![RowUpdate {
            key: Key::Int(2),
            values: json!({"n": 100}).as_object().unwrap().clone(),
            geometry: None,
        }],
        deletes: vec![Key::Int(3)],
        geometry_type: None,
        stamp: None,
    };
    let out = store.apply_edits(item.id, &plan).unwrap();
    assert!(out.results.iter().all(|r| r.success));
    assert_eq!(
        out.results[0].key,
        Some(json!(4)),
        "generated keys follow the largest"
    );
    assert_eq!(out.results[1].key, Some(json!(5)));
    assert_eq!(out.item.row_count, 4);
    assert_eq!(out.item.version, item.version + 1);
    let updated = store.row(item.id, &Key::Int(2)).unwrap().unwrap();
    assert_eq!(updated.values["n"], json!(100));
    assert_eq!(
        updated.values["name"],
        json!("p2"),
        "update keeps fields it does not name"
    );
    assert!(
        updated.geometry.is_some(),
        "update without geometry keeps it"
    );
    assert!(store.row(item.id, &Key::Int(3)).unwrap().is_none());
    // Generated keys stay clear of keys the same batch gives.
    let mixed = EditPlan {
        adds: vec![
            RowAdd {
                key: AddKey::Generate,
                ..add(0)
            },
            add(50),
            RowAdd {
                key: AddKey::Generate,
                ..add(0)
            },
        ],
        ..Default::default()
    };
    let keys: Vec<_> = store
        .apply_edits(item.id, &mixed)
        .unwrap()
        .results
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, vec![Some(json!(6)), Some(json!(50)), Some(json!(51))]);
    // A deleted key can be added again.
    let again = store
        .apply_edits(
            item.id,
            &EditPlan {
                adds: vec![add(3)],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.item.row_count, 8);
}

pub fn change_feed_order_and_tombstones(store: &dyn Store) {
    space(store, "s");
    let start = store.instance().unwrap().last_seq;
    let item = layer(store, "s", 3);
    let page = store.changes("s", start, 100).unwrap();
    let seqs: Vec<i64> = page.changes.iter().map(Change::seq).collect();
    assert_eq!(seqs.len(), 4, "three rows and the item");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );
    assert!(matches!(page.changes.last(), Some(Change::Item { .. })));
    assert_eq!(page.next_after, item.seq);
    assert!(!page.has_more);
    let mark = page.next_after;
    store
        .apply_edits(
            item.id,
            &EditPlan {
                deletes: vec![Key::Int(2)],
                ..Default::default()
            },
        )
        .unwrap();
    let delta = store.changes("s", mark, 100).unwrap();
    assert_eq!(delta.changes.len(), 2, "{:?}", delta.changes);
    assert!(matches!(&delta.changes[0], Change::RowDeleted { key, .. } if *key == json!(2)));
    assert!(matches!(&delta.changes[1], Change::Item { item, .. } if item.row_count == 2));
    let mark = delta.next_after;
    store
        .update_item(
            item.id,
            &ItemPatch {
                title: Some("Renamed".into()),
                ..Default::default()
            },
            "ed",
        )
        .unwrap();
    let meta = store.changes("s", mark, 100).unwrap();
    assert!(matches!(&meta.changes[..], [Change::Item { item, .. }] if item.title == "Renamed"));
    let nothing = store.changes("s", meta.next_after, 100).unwrap();
    assert!(nothing.changes.is_empty());
    assert_eq!(nothing.next_after, meta.next_after);
    store.delete_item(item.id).unwrap();
    let gone = store.changes("s", meta.next_after, 100).unwrap();
    assert!(
        matches!(&gone.changes[..], [Change::ItemDeleted { item_id, .. }] if *item_id == item.id)
    );
    assert!(matches!(
        store.item(item.id),
        Err(StoreError::ItemNotFound(_))
    ));
}

pub fn change_feed_pages(store: &dyn Store) {
    space(store, "s");
    layer(store, "s", 10);
    layer(store, "s", 7);
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.changes("s", after, 4).unwrap();
        assert!(page.changes.len() <= 4);
        seen.extend(page.changes.iter().map(Change::seq));
        after = page.next_after;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen.len(), 19, "17 rows and 2 items, each exactly once");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(after, store.instance().unwrap().last_seq);
}

/// Rows of skipped items are left out of raw pages; pages still reach every other change.
pub fn change_feed_skips_rows_of_items(store: &dyn Store) {
    space(store, "s");
    let big = layer(store, "s", 10);
    let small = layer(store, "s", 3);
    let mut after = 0;
    let (mut items, mut rows) = (0, Vec::new());
    loop {
        let page = store.raw_changes("s", after, 2, &[big.id], &[]).unwrap();
        assert!(page.changes.len() <= 2);
        for (_, change) in &page.changes {
            match change {
                crate::RawChange::Item(_) => items += 1,
                crate::RawChange::Row { item_id, .. } => rows.push(*item_id),
                other => panic!("unexpected change {other:?}"),
            }
        }
        after = page.next_after;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(items, 2, "both items are still described");
    assert_eq!(
        rows,
        vec![small.id; 3],
        "only the rows of the item not skipped"
    );
    assert_eq!(after, store.instance().unwrap().last_seq);
}

pub fn change_feed_is_per_space(store: &dyn Store) {
    space(store, "a");
    space(store, "b");
    layer(store, "a", 5);
    let b_item = layer(store, "b", 2);
    let page = store.changes("b", 0, 100).unwrap();
    assert_eq!(page.changes.len(), 3);
    assert!(page.changes.iter().all(|c| match c {
        Change::Row { item_id, .. } => *item_id == b_item.id,
        Change::Item { item, .. } => item.id == b_item.id,
        _ => false,
    }));
    assert!(matches!(
        store.changes("nope", 0, 10),
        Err(StoreError::SpaceNotFound(_))
    ));
}

pub fn moved_items_change_feeds(store: &dyn Store) {
    space(store, "a");
    space(store, "b");
    let item = layer(store, "a", 3);
    let mark = store.instance().unwrap().last_seq;
    let move_to = |to: &str| {
        store
            .update_item(
                item.id,
                &ItemPatch {
                    space: Some(to.into()),
                    ..Default::default()
                },
                "admin",
            )
            .unwrap()
    };
    let moved = move_to("b");
    assert_eq!(moved.space_id, store.space("b").unwrap().id);
    assert_eq!(store.space("a").unwrap().item_count, 0);
    // The space it left says so after its last position; the other has the item and its rows.
    let left = store.changes("a", mark, 100).unwrap();
    assert!(
        matches!(&left.changes[..], [Change::ItemLeft { item_id, seq }] if *item_id == item.id && *seq == moved.seq),
        "{:?}",
        left.changes
    );
    assert!(store.changes("a", 0, 100).unwrap().changes.len() == 1);
    let arrived = store.changes("b", 0, 100).unwrap();
    assert_eq!(arrived.changes.len(), 4, "{:?}", arrived.changes);
    assert!(
        arrived
            .changes
            .iter()
            .all(|c| matches!(c, Change::Item { .. } | Change::Row { .. }))
    );
    assert_eq!(
        store
            .query_rows(
                item.id,
                &RowQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .unwrap()
            .len(),
        3
    );
    // Back again: the departure from "a" is gone, one from "b" is recorded.
    let back = move_to("a");
    let a = store.changes("a", 0, 100).unwrap();
    assert!(
        a.changes
            .iter()
            .all(|c| !matches!(c, Change::ItemLeft { .. })),
        "{:?}",
        a.changes
    );
    assert_eq!(a.changes.len(), 4);
    let b = store.changes("b", 0, 100).unwrap();
    assert!(matches!(&b.changes[..], [Change::ItemLeft { seq, .. }] if *seq == back.seq));
    // Moving to where it is changes its metadata position only; to no space, nothing.
    let same = move_to("a");
    assert!(
        store
            .changes("b", back.seq, 100)
            .unwrap()
            .changes
            .is_empty()
    );
    assert_eq!(same.space_id, back.space_id);
    let err = store
        .update_item(
            item.id,
            &ItemPatch {
                space: Some("nope".into()),
                title: Some("Lost".into()),
                ..Default::default()
            },
            "admin",
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::SpaceNotFound(_)), "{err:?}");
    assert_eq!(
        store.item(item.id).unwrap().title,
        "Test",
        "nothing changed"
    );
    // Each move is audited with who made it, from where, to where; a move to where the item
    // is, or one refused, is not.
    let moves: Vec<(String, String, serde_json::Value)> = store
        .audit_of(&item.id.to_string())
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.actor, e.detail))
        .collect();
    let moved = |from: &str, to: &str| {
        (
            "item.moved".to_string(),
            "admin".to_string(),
            json!({"title": "Test", "from": from, "to": to}),
        )
    };
    assert_eq!(moves, vec![moved("a", "b"), moved("b", "a")]);
    // A space deleted takes its departures along.
    store.delete_space("b", true).unwrap();
}

pub fn markings_of_several_links_add_up(store: &dyn Store) {
    space(store, "inbox");
    let arrive = |link: &str, markings: &[&str]| {
        let crate::SyncOp::Item(mut item) = received("o1", "Berths") else {
            unreachable!("received() makes an item")
        };
        item.markings = markings.iter().map(|m| m.to_string()).collect();
        store
            .apply_sync_batch(&batch(
                &[crate::SyncOp::Item(item)],
                &cursor(1, false),
                link,
            ))
            .unwrap();
        items_in(store, "inbox")[0].markings.clone()
    };
    assert_eq!(arrive("peer:p", &["PARTNER"]), vec!["PARTNER"]);
    // A second link marks it otherwise: both stand, whichever link spoke last.
    assert_eq!(arrive("collab:k:w", &["COAST"]), vec!["COAST", "PARTNER"]);
    assert_eq!(arrive("peer:p", &["PARTNER"]), vec!["COAST", "PARTNER"]);
    assert_eq!(
        arrive("collab:k:w", &[]),
        vec!["PARTNER"],
        "a link's own marks fall with it"
    );
    let id = items_in(store, "inbox")[0].id.to_string();
    let log: Vec<(String, String, serde_json::Value)> = store
        .audit_of(&id)
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.actor, e.detail))
        .collect();
    let changed = |link: &str, from: &[&str], to: &[&str]| {
        (
            "item.markings_changed".to_string(),
            format!("sync:{link}"),
            json!({"from": from, "to": to}),
        )
    };
    assert_eq!(
        log,
        vec![
            changed("collab:k:w", &["PARTNER"], &["COAST", "PARTNER"]),
            changed("collab:k:w", &["COAST", "PARTNER"], &["PARTNER"]),
        ]
    );
}

pub fn marking_changes_are_audited(store: &dyn Store) {
    space(store, "s");
    let item = layer(store, "s", 1);
    let mark = |markings: &[&str], actor: &str| {
        let patch = ItemPatch {
            markings: Some(markings.iter().map(|m| m.to_string()).collect()),
            ..Default::default()
        };
        store.update_item(item.id, &patch, actor).unwrap()
    };
    mark(&["OFFICIAL"], "ana");
    mark(&["OFFICIAL"], "ana");
    mark(&[], "bob");
    let retitled = ItemPatch {
        title: Some("Other".into()),
        ..Default::default()
    };
    store.update_item(item.id, &retitled, "carl").unwrap();
    let log: Vec<(String, String, serde_json::Value)> = store
        .audit_of(&item.id.to_string())
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.actor, e.detail))
        .collect();
    let changed = |actor: &str, from: &[&str], to: &[&str]| {
        (
            "item.markings_changed".to_string(),
            actor.to_string(),
            json!({"title": "Test", "from": from, "to": to}),
        )
    };
    assert_eq!(
        log,
        vec![
            changed("ana", &[], &["OFFICIAL"]),
            changed("bob", &["OFFICIAL"], &[])
        ],
        "only changes of markings, each once"
    );
}

pub fn epoch_rotation(store: &dyn Store) {
    let before = store.instance().unwrap();
    let epoch = store.rotate_epoch().unwrap();
    let after = store.instance().unwrap();
    assert_ne!(before.epoch, after.epoch);
    assert_eq!(after.epoch, epoch);
    assert_eq!(before.id, after.id, "the instance keeps its id");
    space(store, "s");
    assert_eq!(store.changes("s", 0, 1).unwrap().epoch, epoch);
}

pub fn item_deletion(store: &dyn Store) {
    space(store, "s");
    let item = layer(store, "s", 4);
    store.delete_item(item.id).unwrap();
    assert!(matches!(
        store.delete_item(item.id),
        Err(StoreError::ItemNotFound(_))
    ));
    assert!(matches!(
        store.query_rows(
            item.id,
            &RowQuery {
                limit: 1,
                ..Default::default()
            }
        ),
        Err(StoreError::ItemNotFound(_))
    ));
    assert_eq!(store.space("s").unwrap().item_count, 0);
    store
        .delete_space("s", false)
        .expect("a space holding only tombstones is empty");
}

pub fn files(store: &dyn Store) {
    space(store, "s");
    let chunks = vec![
        crate::ChunkRef {
            hash: ferry_proto::ChunkHash::from_bytes([0xaa; 32]),
            len: 10,
        },
        crate::ChunkRef {
            hash: ferry_proto::ChunkHash::from_bytes([0xbb; 32]),
            len: 5,
        },
    ];
    let info = ferry_proto::FileInfo {
        size: 15,
        content_hash: "cc".repeat(32),
        media_type: "application/octet-stream".into(),
        file_name: Some("x.bin".into()),
        chunk_count: 2,
    };
    let mut d = draft("s", ItemKind::File);
    d.file = Some((info.clone(), chunks.clone()));
    let one = store.create_item(&d, &mut NoRows::default()).unwrap();
    let two = store.create_item(&d, &mut NoRows::default()).unwrap();
    assert_eq!(one.file, Some(info));
    assert_eq!(store.file_chunks(one.id).unwrap(), chunks);
    assert!(store.chunk_in_use(&chunks[0].hash).unwrap());
    assert!(
        store.delete_item(one.id).unwrap().is_empty(),
        "chunks still used by the other item"
    );
    let freed = store.delete_item(two.id).unwrap();
    assert_eq!(freed.len(), 2);
    assert!(!store.chunk_in_use(&chunks[0].hash).unwrap());
    let layer_item = layer(store, "s", 1);
    assert!(matches!(
        store.file_chunks(layer_item.id),
        Err(StoreError::WrongItemKind { .. })
    ));
}

/// The chunk sweep removes chunks no committed item uses, and never one a committed item uses
/// or an upload in progress holds.
pub fn the_sweep_removes_orphan_chunks_only(store: &dyn Store) {
    space(store, "s");
    let dir = tempfile::tempdir().unwrap();
    let chunks = crate::ChunkStore::open(dir.path()).unwrap();
    let (used, _) = chunks.put(b"used by an item").unwrap();
    let (orphan, _) = chunks.put(b"left by a crash before the commit").unwrap();
    let (uploading, _) = chunks.put(b"an upload still going").unwrap();
    let info = ferry_proto::FileInfo {
        size: used.len,
        content_hash: "cc".repeat(32),
        media_type: "application/octet-stream".into(),
        file_name: None,
        chunk_count: 1,
    };
    let mut d = draft("s", ItemKind::File);
    d.file = Some((info, vec![used.clone()]));
    let item = store.create_item(&d, &mut NoRows::default()).unwrap();
    chunks.release(&[used.clone(), orphan.clone()]);
    let age = std::time::Duration::ZERO;
    assert_eq!(crate::sweep_orphans(store, &chunks, age).unwrap(), 1);
    assert!(chunks.has(&used.hash), "a committed item's chunk stays");
    assert!(!chunks.has(&orphan.hash), "the orphan goes");
    assert!(chunks.has(&uploading.hash), "a held chunk stays");
    // Young orphans wait: a transfer may resume with them.
    chunks.release(std::slice::from_ref(&uploading));
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(crate::sweep_orphans(store, &chunks, hour).unwrap(), 0);
    assert!(chunks.has(&uploading.hash));
    store.delete_item(item.id).unwrap();
    assert_eq!(crate::sweep_orphans(store, &chunks, age).unwrap(), 2);
    assert_eq!(chunks.count().unwrap(), 0);
}

pub fn policy_rules_are_audited(store: &dyn Store) {
    let rule = ferry_proto::NewPolicyRule {
        direction: "ingress".into(),
        effect: "allow".into(),
        pattern: "cidr:127.0.0.0/8".into(),
    };
    let added = store.add_policy_rule(&rule, "admin").unwrap();
    assert_eq!(
        store.add_policy_rule(&rule, "admin").unwrap(),
        added,
        "adding twice is harmless"
    );
    assert_eq!(store.list_policy_rules().unwrap(), vec![added.clone()]);
    let removed = store.remove_policy_rule(&added.id, "ana").unwrap();
    assert_eq!(removed, added);
    assert!(store.list_policy_rules().unwrap().is_empty());
    assert!(matches!(
        store.remove_policy_rule(&added.id, "ana"),
        Err(StoreError::PolicyRuleNotFound(_))
    ));
    let log = store.list_audit(0, 100).unwrap();
    let events: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![("policy.added", "admin"), ("policy.removed", "ana")]
    );
    assert_eq!(log[0].detail["pattern"], "cidr:127.0.0.0/8");
    assert_eq!(store.list_audit(log[0].seq, 100).unwrap().len(), 1);
    let newest: Vec<i64> = store
        .list_audit_newest(i64::MAX, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let mut oldest: Vec<i64> = log.iter().map(|e| e.seq).collect();
    oldest.reverse();
    assert_eq!(newest, oldest, "the same entries, newest first");
    assert_eq!(
        store.list_audit_newest(log[1].seq, 100).unwrap().len(),
        1,
        "before a sequence"
    );
}

pub fn nonces_refuse_replays(store: &dyn Store) {
    let nonce = [1u8; 16];
    assert!(store.remember_nonce("peer-a", &nonce, 1_000, 500).unwrap());
    assert!(
        !store.remember_nonce("peer-a", &nonce, 1_000, 600).unwrap(),
        "a replay"
    );
    assert!(
        store.remember_nonce("peer-b", &nonce, 1_000, 600).unwrap(),
        "nonces are per sender"
    );
    // Once expired (the clock window has passed) the nonce is forgotten; the signature's own
    // timestamp check refuses such an old request anyway.
    assert!(
        store
            .remember_nonce("peer-a", &nonce, 2_000, 1_001)
            .unwrap()
    );
}

pub fn peer_records(store: &dyn Store) {
    use ferry_core::peering::{Event, Role as PeerRole, Status, apply};
    use ferry_proto::ticket::DataTypes;
    space(store, "roads");
    let record = crate::PeerRecord {
        id: "c1".into(),
        role: PeerRole::Originator,
        request_id: "0707".into(),
        status: Status::new(PeerRole::Originator),
        space: Some("roads".into()),
        offered_space: "roads".into(),
        sends: DataTypes {
            datasets: false,
            features: true,
            files: false,
        },
        receives: DataTypes::NONE,
        peer: None,
        secret: Some(vec![1, 2, 3]),
        expires_at: Some(1_900_000_000),
        security: ferry_proto::PeerSecurity {
            ceiling: Some(vec!["OFFICIAL".into()]),
            mark: vec!["PARTNER".into()],
        },
        pending_security: None,
        version: 0,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: String::new(),
    };
    let audit = |event: &str| crate::NewAuditEntry {
        actor: "admin".into(),
        event: event.into(),
        subject: Some("c1".into()),
        detail: json!({}),
    };
    let stored = store
        .insert_peer(&record, &audit("peer.requested"))
        .unwrap();
    assert_eq!(stored.space.as_deref(), Some("roads"));
    assert_eq!(
        (stored.sends, stored.secret.clone()),
        (record.sends, record.secret.clone())
    );
    assert!(
        matches!(store.insert_peer(&record, &audit("again")), Err(StoreError::PeerExists(id)) if id == "c1")
    );
    assert_eq!(
        store
            .peer_by_request(PeerRole::Originator, "0707")
            .unwrap()
            .unwrap()
            .id,
        "c1"
    );
    assert!(
        store
            .peer_by_request(PeerRole::Acceptor, "0707")
            .unwrap()
            .is_none()
    );

    let mut answered = stored.clone();
    answered.status = apply(PeerRole::Originator, stored.status, Event::ResponseReceived).unwrap();
    answered.peer = Some(crate::PeerIdentity {
        instance_id: "peer-b".into(),
        title: "Harbor".into(),
        url: "http://127.0.0.1:1".into(),
        public_key: [4; 32],
    });
    let updated = store
        .update_peer(&answered, &audit("peer.approved"))
        .unwrap();
    assert_eq!(updated.status.phase, ferry_core::peering::Phase::Approved);
    assert_eq!(updated.peer, answered.peer);
    assert_eq!(updated.version, stored.version + 1);
    // A change based on the record as it was before is refused, and leaves no audit entry.
    let stale = store.update_peer(&answered, &audit("stale"));
    assert!(
        matches!(stale, Err(StoreError::PeerChanged(_))),
        "{stale:?}"
    );
    assert_eq!(store.list_peers().unwrap(), vec![updated]);
    assert!(matches!(
        store.peer("nope"),
        Err(StoreError::PeerNotFound(_))
    ));
    let events: Vec<String> = store
        .list_audit(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        vec!["peer.requested", "peer.approved"],
        "the refused insert left no entry"
    );
}

fn collab_record(id: &str, space: &ferry_proto::Space) -> crate::CollabRecord {
    use ferry_core::collab::{CollabRole, CollabState, DeletePolicy};
    crate::CollabRecord {
        id: id.into(),
        role: CollabRole::Host,
        name: "Coast".into(),
        description: String::new(),
        state: CollabState::Active,
        host: crate::PeerIdentity {
            instance_id: "self".into(),
            title: "Port".into(),
            url: "http://127.0.0.1:1".into(),
            public_key: [3; 32],
        },
        self_participant: "p-host".into(),
        revision: 1,
        delete_policy: DeletePolicy::Keep,
        security: ferry_proto::PeerSecurity {
            ceiling: Some(vec!["OFFICIAL".into()]),
            mark: vec![],
        },
        workspaces: vec![crate::WorkspaceRecord {
            id: "w1".into(),
            name: "Roads".into(),
            description: String::new(),
            config: Default::default(),
            modes: [("p-guest".to_string(), "send".to_string())].into(),
        }],
        participants: vec![crate::ParticipantRecord {
            id: "p-host".into(),
            role: "host".into(),
            title: "Port".into(),
            status: "active".into(),
            identity: None,
            contact: None,
            instance_id: None,
        }],
        invitations: vec![],
        links: [("w1".to_string(), space.into())].into(),
        version: 0,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: String::new(),
    }
}

fn collab_audit(event: &str) -> crate::NewAuditEntry {
    crate::NewAuditEntry {
        actor: "admin".into(),
        event: event.into(),
        subject: Some("k1".into()),
        detail: json!({}),
    }
}

fn space_of(store: &dyn Store, name: &str) -> ferry_proto::Space {
    space(store, name);
    store.space(name).unwrap()
}

pub fn collab_records(store: &dyn Store) {
    let roads = space_of(store, "roads");
    let quays = space_of(store, "quays");
    let record = collab_record("k1", &roads);
    let stored = store
        .insert_collab(&record, &collab_audit("collab.created"))
        .unwrap();
    assert_eq!(
        (&stored.workspaces, &stored.links, stored.version),
        (&record.workspaces, &record.links, 0)
    );
    assert!(matches!(
        store.insert_collab(&record, &collab_audit("again")),
        Err(StoreError::CollabExists(_))
    ));
    // Links follow a space's renaming: they hold the space, not its name.
    store
        .update_space(
            "roads",
            &SpacePatch {
                name: Some("streets".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let renamed = store.collab("k1").unwrap();
    assert_eq!(renamed.links["w1"].name, "streets");
    assert_eq!(renamed.links["w1"].space_id, roads.id);

    // A record read before the rename saves without trouble: links hold the space's id.
    let mut changed = renamed;
    changed.links.insert("w2".into(), (&quays).into());
    changed.revision = 2;
    let updated = store
        .update_collab(&changed, &collab_audit("collab.linked"))
        .unwrap();
    assert_eq!(updated.links.len(), 2);
    assert_eq!((updated.revision, updated.version), (2, 1));
    assert!(matches!(
        store.update_collab(&changed, &collab_audit("stale")),
        Err(StoreError::CollabChanged(_))
    ));
    let mut bad_link = updated.clone();
    bad_link.links.insert(
        "w3".into(),
        crate::LinkedSpace {
            space_id: ferry_proto::SpaceId::generate(),
            name: "nowhere".into(),
            share: ferry_proto::ShareMode::Workspace,
        },
    );
    assert!(matches!(
        store.update_collab(&bad_link, &collab_audit("bad")),
        Err(StoreError::SpaceNotFound(_))
    ));
    assert_eq!(store.list_collabs().unwrap(), vec![updated]);
    assert!(matches!(
        store.collab("nope"),
        Err(StoreError::CollabNotFound(_))
    ));
    let events: Vec<String> = store
        .list_audit(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, vec!["collab.created", "collab.linked"]);
}

pub fn linked_spaces_are_not_deleted(store: &dyn Store) {
    let roads = space_of(store, "roads");
    store
        .insert_collab(&collab_record("k1", &roads), &collab_audit("created"))
        .unwrap();
    let refused = store.delete_space("roads", true);
    assert!(
        matches!(&refused, Err(StoreError::SpaceLinked { links, .. }) if links.len() == 1),
        "{refused:?}"
    );
    let mut unlinked = store.collab("k1").unwrap();
    unlinked.links.clear();
    store
        .update_collab(&unlinked, &collab_audit("unlinked"))
        .unwrap();
    store.delete_space("roads", true).unwrap();
}

pub fn item_pages(store: &dyn Store) {
    space(store, "many");
    space(store, "other");
    let made: Vec<_> = (0..5).map(|_| layer(store, "many", 1).id).collect();
    layer(store, "other", 1);
    store.delete_item(made[1]).unwrap();
    let page = |offset, limit| -> Vec<ferry_proto::ItemId> {
        store
            .list_items_page("many", offset, limit)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect()
    };
    let live: Vec<_> = store
        .list_items(Some("many"))
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(live, [made[0], made[2], made[3], made[4]]);
    assert_eq!(
        page(0, 2),
        live[..2],
        "pages follow list_items, without deleted items"
    );
    assert_eq!(page(2, 2), live[2..]);
    assert!(page(4, 2).is_empty());
    assert!(matches!(
        store.list_items_page("nosuch", 0, 2),
        Err(StoreError::SpaceNotFound(_))
    ));
}

pub fn arrivals_end_per_link(store: &dyn Store) {
    space(store, "inbox");
    let by_one = layer(store, "inbox", 1);
    let by_two = layer(store, "inbox", 1);
    let own = layer(store, "inbox", 1);
    store
        .record_arrival(by_one.id, "collab:k1:w1", "far", "o1")
        .unwrap();
    store
        .record_arrival(by_two.id, "collab:k1:w1", "far", "o2")
        .unwrap();
    store
        .record_arrival(by_two.id, "peer:c9", "far", "o2")
        .unwrap();
    assert!(matches!(
        store.record_arrival(ferry_proto::ItemId::generate(), "peer:c9", "far", "o3"),
        Err(StoreError::ItemNotFound(_))
    ));
    // Which link brought which item, from where; the instance's own item has no arrival.
    let brought: Vec<_> = store
        .arrivals_in(Some("inbox"))
        .unwrap()
        .into_iter()
        .map(|(id, l)| (id, l.link, l.origin_item))
        .collect();
    assert_eq!(
        brought,
        vec![
            (by_one.id, "collab:k1:w1".to_string(), "o1".to_string()),
            (by_two.id, "collab:k1:w1".to_string(), "o2".to_string()),
            (by_two.id, "peer:c9".to_string(), "o2".to_string()),
        ]
    );
    assert_eq!(store.arrivals_in(None).unwrap().len(), 3);
    space(store, "empty");
    assert!(store.arrivals_in(Some("empty")).unwrap().is_empty());
    assert!(matches!(
        store.arrivals_in(Some("nosuch")),
        Err(StoreError::SpaceNotFound(_))
    ));
    use crate::Arrivals;
    let ended = |which, delete| {
        store
            .end_arrivals(which, delete, &collab_audit("ended"))
            .unwrap()
    };
    // `_` in a prefix is a character, not a wildcard; a link is matched whole.
    assert!(
        ended(Arrivals::Under("collab:k_"), true)
            .orphaned
            .is_empty()
    );
    assert!(ended(Arrivals::Link("collab:k1"), true).orphaned.is_empty());
    let first = ended(Arrivals::Under("collab:k1:"), false);
    assert_eq!(
        (first.orphaned, first.deleted),
        (vec![by_one.id], false),
        "the item another link brought stays, and the instance's own item is never named"
    );
    assert!(store.item(by_one.id).is_ok(), "kept: not asked to delete");
    assert!(
        ended(Arrivals::Under("collab:k1:"), true)
            .orphaned
            .is_empty()
    );
    let second = ended(Arrivals::Link("peer:c9"), true);
    assert_eq!((second.orphaned, second.deleted), (vec![by_two.id], true));
    assert!(matches!(
        store.item(by_two.id),
        Err(StoreError::ItemNotFound(_))
    ));
    let log = store.list_audit(0, 10).unwrap();
    assert_eq!(log.len(), 1, "only the deletion is audited");
    assert_eq!(log[0].detail["items"], json!([by_two.id]));
    assert!(store.item(own.id).is_ok());
}

fn received(origin_item: &str, title: &str) -> crate::SyncOp {
    crate::SyncOp::Item(Box::new(crate::ReceivedItem {
        origin_instance: "far".into(),
        origin_item: origin_item.into(),
        kind: ItemKind::FeatureLayer,
        title: title.into(),
        description: String::new(),
        tags: vec![],
        markings: vec!["PARTNER".into()],
        schema: Some(layer_schema()),
        geometry_type: Some(ferry_proto::GeometryType::Point),
        crs: None,
        file: None,
        whole: false,
        copy_whole: false,
        reference: false,
        row_count: 0,
        sync_as: ferry_proto::SyncAs::Link,
        two_way: None,
    }))
}

/// An item whose rows all follow in the same stream (small, and new or in a full pass).
fn received_whole(origin_item: &str, title: &str) -> crate::SyncOp {
    let crate::SyncOp::Item(mut item) = received(origin_item, title) else {
        unreachable!("received() makes an item")
    };
    item.whole = true;
    crate::SyncOp::Item(item)
}

/// A large item whose rows the sender leaves to a whole copy.
fn received_large(origin_item: &str, title: &str) -> crate::SyncOp {
    let crate::SyncOp::Item(mut item) = received_whole(origin_item, title) else {
        unreachable!("received() makes an item")
    };
    item.copy_whole = true;
    crate::SyncOp::Item(item)
}

fn received_reference(origin_item: &str, row_count: i64) -> crate::SyncOp {
    let crate::SyncOp::Item(mut item) = received(origin_item, "Parcels") else {
        unreachable!("received() makes an item")
    };
    item.reference = true;
    item.row_count = row_count;
    crate::SyncOp::Item(item)
}

/// An item of the far instance, as rows name it.
fn far(origin_item: &str) -> std::sync::Arc<crate::Origin> {
    crate::Origin::new("far", origin_item).into()
}

fn received_row(origin_item: &str, key: i64) -> crate::SyncOp {
    crate::SyncOp::Row {
        origin: far(origin_item),
        row: point_row(key, 1.0, 2.0),
    }
}

fn cursor(seq: i64, resync: bool) -> crate::SyncCursor {
    crate::SyncCursor {
        epoch: "e1".into(),
        scope: "s1".into(),
        seq,
        resync,
    }
}

fn batch<'a>(
    ops: &'a [crate::SyncOp],
    cursor: &'a crate::SyncCursor,
    link: &'a str,
) -> crate::SyncBatch<'a> {
    crate::SyncBatch {
        channel: link,
        link,
        space: "inbox",
        owner: "admin",
        ops,
        cursor,
        delete_retracted: true,
    }
}

fn items_in(store: &dyn Store, space: &str) -> Vec<ferry_proto::Item> {
    store.list_items(Some(space)).unwrap()
}

pub fn sync_batches_apply_with_their_cursor(store: &dyn Store) {
    space(store, "inbox");
    let first = [
        received("o1", "Berths"),
        received_row("o1", 1),
        received_row("o1", 2),
    ];
    let c1 = cursor(10, true);
    let out = store
        .apply_sync_batch(&batch(&first, &c1, "peer:c1"))
        .unwrap();
    assert_eq!((out.items, out.rows, out.retracted), (1, 2, 0));
    assert_eq!(store.sync_cursor("peer:c1").unwrap(), Some(c1));
    let item = &items_in(store, "inbox")[0];
    assert_eq!((item.title.as_str(), item.row_count), ("Berths", 2));
    assert_eq!(item.markings, vec!["PARTNER"]);
    assert_eq!(
        store.item_origin(item.id).unwrap(),
        Some(("far".to_string(), "o1".to_string()))
    );
    assert_eq!(store.item_by_origin("far", "o1").unwrap(), Some(item.id));
    assert_eq!(store.item_by_origin("near", "o1").unwrap(), None);
    let before = store.instance().unwrap().last_seq;

    // Updates, a delete, an add; rows of an unknown item wait for its copy.
    let second = [
        crate::SyncOp::Row {
            origin: far("o1"),
            row: point_row(1, 5.0, 6.0),
        },
        crate::SyncOp::RowDeleted {
            origin: far("o1"),
            key: Key::Int(2),
        },
        received_row("o1", 3),
        received_row("unknown", 1),
    ];
    let c2 = cursor(20, false);
    store
        .apply_sync_batch(&batch(&second, &c2, "peer:c1"))
        .unwrap();
    let item = store.item(item.id).unwrap();
    assert_eq!(item.row_count, 2);
    let row = store.row(item.id, &Key::Int(1)).unwrap().unwrap();
    assert_eq!(row.geometry.unwrap()["coordinates"], json!([5.0, 6.0]));
    assert!(store.row(item.id, &Key::Int(2)).unwrap().is_none());
    // Received changes enter this instance's own feed, so they can travel on.
    let page = store.changes("inbox", before, 100).unwrap();
    assert!(page.changes.len() >= 3, "{page:?}");

    // The same origin item by a second link is the same item.
    let again = [received("o1", "Berths (renamed)")];
    store
        .apply_sync_batch(&batch(&again, &cursor(5, false), "collab:k:w"))
        .unwrap();
    assert_eq!(items_in(store, "inbox").len(), 1);
    assert_eq!(store.item(item.id).unwrap().title, "Berths (renamed)");

    // Another instance's item with the same id is another item: its description, rows,
    // deletions and retraction never touch this one.
    let crate::SyncOp::Item(mut impostor) = received_whole("o1", "Impostor") else {
        unreachable!("received() makes an item")
    };
    impostor.origin_instance = "near".into();
    let near = std::sync::Arc::new(crate::Origin::new("near", "o1"));
    let other = [
        crate::SyncOp::Item(impostor),
        crate::SyncOp::Row {
            origin: near.clone(),
            row: point_row(1, 9.0, 9.0),
        },
        crate::SyncOp::RowDeleted {
            origin: near,
            key: Key::Int(3),
        },
    ];
    store
        .apply_sync_batch(&batch(&other, &cursor(1, false), "peer:c9"))
        .unwrap();
    let unchanged = store.item(item.id).unwrap();
    assert_eq!(
        (unchanged.title.as_str(), unchanged.row_count),
        ("Berths (renamed)", 2)
    );
    let row = store.row(item.id, &Key::Int(1)).unwrap().unwrap();
    assert_eq!(row.geometry.unwrap()["coordinates"], json!([5.0, 6.0]));
    assert!(store.row(item.id, &Key::Int(3)).unwrap().is_some());
    let impostor = store.item_by_origin("near", "o1").unwrap().unwrap();
    assert_ne!(impostor, item.id);
    let retract_near = [crate::SyncOp::Retract {
        origin_instance: "near".into(),
        origin_item: "o1".into(),
    }];
    store
        .apply_sync_batch(&batch(&retract_near, &cursor(2, false), "peer:c9"))
        .unwrap();
    assert!(store.item(item.id).is_ok());
    assert_eq!(items_in(store, "inbox").len(), 1);

    // Retracted by one link, it stays for the other; by both, it goes.
    let retract = [crate::SyncOp::Retract {
        origin_instance: "far".into(),
        origin_item: "o1".into(),
    }];
    let out = store
        .apply_sync_batch(&batch(&retract, &cursor(21, false), "peer:c1"))
        .unwrap();
    assert_eq!(out.retracted, 1);
    assert!(store.item(item.id).is_ok());
    store
        .apply_sync_batch(&batch(&retract, &cursor(6, false), "collab:k:w"))
        .unwrap();
    assert!(matches!(
        store.item(item.id),
        Err(StoreError::ItemNotFound(_))
    ));

    // A failing batch leaves neither its changes nor its cursor.
    let bad = crate::SyncBatch {
        space: "nowhere",
        ..batch(&first, &c2, "peer:c2")
    };
    assert!(store.apply_sync_batch(&bad).is_err());
    assert_eq!(store.sync_cursor("peer:c2").unwrap(), None);
}

pub fn full_passes_sweep_and_retract(store: &dyn Store) {
    space(store, "inbox");
    let link = "peer:c1";
    let pass = cursor(0, true);
    store.begin_resync(link, link, &pass).unwrap();
    let ops = [
        received_whole("a", "A"),
        received_row("a", 1),
        received_row("a", 2),
        received_whole("b", "B"),
        received_row("b", 1),
        // A large item: the sender leaves its rows to a whole copy.
        received_large("big", "Big"),
    ];
    store
        .apply_sync_batch(&batch(&ops, &cursor(9, true), link))
        .unwrap();
    store
        .finish_resync(&batch(&[], &cursor(9, false), link))
        .unwrap();
    assert_eq!(items_in(store, "inbox").len(), 3);
    let pending = store.pending_copies(link).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].origin_item, "big");
    let copy = [received("big", "Big"), received_row("big", 1)];
    store
        .apply_item_copy(
            &batch(&copy, &cursor(0, false), link),
            "far",
            "big",
            &mut crate::CopyPart {
                last: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(store.pending_copies(link).unwrap().is_empty());

    // A restored sender: a new epoch, and only A with one row. B and A's row 2 must go.
    let restored = crate::SyncCursor {
        epoch: "e2".into(),
        ..cursor(0, true)
    };
    store.begin_resync(link, link, &restored).unwrap();
    assert_eq!(store.sync_cursor(link).unwrap().unwrap().seq, 0);
    let ops = [
        received_whole("a", "A"),
        received_row("a", 1),
        received_large("big", "Big"),
        // Older than the cursor of a resumed pass: its rows come in the stream, no copy needed.
        received("c", "C"),
        received_row("c", 1),
    ];
    let during = crate::SyncCursor {
        seq: 4,
        ..restored.clone()
    };
    store.apply_sync_batch(&batch(&ops, &during, link)).unwrap();
    let done = crate::SyncCursor {
        seq: 4,
        resync: false,
        ..restored
    };
    let out = store.finish_resync(&batch(&[], &done, link)).unwrap();
    assert_eq!(out.retracted, 1);
    let mut left = items_in(store, "inbox");
    left.sort_by(|x, y| x.title.cmp(&y.title));
    assert_eq!(left.len(), 3);
    assert_eq!((left[0].title.as_str(), left[0].row_count), ("A", 1));
    assert!(store.row(left[0].id, &Key::Int(2)).unwrap().is_none());
    // The large item keeps its rows until its whole copy replaces them: a full pass never
    // sweeps what it leaves to a copy.
    assert_eq!((left[1].title.as_str(), left[1].row_count), ("Big", 1));
    assert_eq!((left[2].title.as_str(), left[2].row_count), ("C", 1));
    let pending = store.pending_copies(link).unwrap();
    assert_eq!(
        pending.len(),
        1,
        "only the large item waits for a copy: {pending:?}"
    );
    assert_eq!(store.sync_cursor(link).unwrap(), Some(done));
}

/// A whole copy answered with a retraction (the item left this link's scope) unties the item
/// from that link only: the rows another link brings stay.
pub fn a_retracted_copy_keeps_what_another_link_brings(store: &dyn Store) {
    space(store, "inbox");
    for link in ["peer:c1", "peer:c2"] {
        let ops = [received_whole("s", "Shared"), received_row("s", 1)];
        store
            .apply_sync_batch(&batch(&ops, &cursor(5, false), link))
            .unwrap();
    }
    let retract = [crate::SyncOp::Retract {
        origin_instance: "far".into(),
        origin_item: "s".into(),
    }];
    store
        .apply_item_copy(
            &batch(&retract, &cursor(0, false), "peer:c1"),
            "far",
            "s",
            &mut crate::CopyPart {
                last: true,
                ..Default::default()
            },
        )
        .unwrap();
    let left = items_in(store, "inbox");
    assert_eq!(left.len(), 1, "peer:c2 still brings it");
    assert_eq!(left[0].row_count, 1);
    assert!(store.row(left[0].id, &Key::Int(1)).unwrap().is_some());
}

pub fn kept_items_keep_their_origin(store: &dyn Store) {
    space(store, "inbox");
    let ops = [received_whole("k", "Kept"), received_row("k", 1)];
    store
        .apply_sync_batch(&batch(&ops, &cursor(5, false), "peer:c1"))
        .unwrap();
    let retract = [crate::SyncOp::Retract {
        origin_instance: "far".into(),
        origin_item: "k".into(),
    }];
    let at6 = cursor(6, false);
    let keep = crate::SyncBatch {
        delete_retracted: false,
        ..batch(&retract, &at6, "peer:c1")
    };
    let out = store.apply_sync_batch(&keep).unwrap();
    assert_eq!(out.retracted, 1);
    let kept = items_in(store, "inbox");
    assert_eq!(kept.len(), 1, "kept by the policy");
    let id = kept[0].id;
    assert_eq!(
        store.item_origin(id).unwrap(),
        Some(("far".to_string(), "k".to_string())),
        "still a copy of its origin"
    );
    assert_eq!(store.item_by_origin("far", "k").unwrap(), Some(id));
    // Another link that never brought it cannot retract (and so delete) it.
    let out = store
        .apply_sync_batch(&batch(&retract, &cursor(7, false), "peer:c2"))
        .unwrap();
    assert_eq!(out.retracted, 0);
    assert_eq!(items_in(store, "inbox").len(), 1);
    // Back in scope with rows older than the cursor: one item, copied whole again.
    let back = [received("k", "Kept")];
    store
        .apply_sync_batch(&batch(&back, &cursor(9, false), "peer:c1"))
        .unwrap();
    assert_eq!(items_in(store, "inbox").len(), 1);
    let pending = store.pending_copies("peer:c1").unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].origin_item, "k");
}

pub fn item_copies_and_pending_items(store: &dyn Store) {
    space(store, "inbox");
    let link = "peer:c1";
    // An item new to this instance in an incremental batch: rows older than the cursor never
    // come, so it waits for a whole copy.
    let ops = [received("a", "A"), received_row("a", 7)];
    store
        .apply_sync_batch(&batch(&ops, &cursor(50, false), link))
        .unwrap();
    let pending = store.pending_copies(link).unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.origin_item.as_str(), p.title.as_str()))
            .collect::<Vec<_>>(),
        vec![("a", "A")]
    );
    let arriving = vec![items_in(store, "inbox")[0].id];
    assert_eq!(
        store.arriving_items().unwrap(),
        arriving,
        "not complete here"
    );
    // The copy comes in two parts; the item stays pending until the last.
    let first = [received("a", "A"), received_row("a", 1)];
    let mut part = crate::CopyPart::default();
    let out = store
        .apply_item_copy(
            &batch(&first, &cursor(50, false), link),
            "far",
            "a",
            &mut part,
        )
        .unwrap();
    assert_eq!(out.rows, 1);
    assert!(part.start.is_some());
    assert_eq!(store.pending_copies(link).unwrap().len(), 1);
    assert_eq!(
        store.arriving_items().unwrap(),
        arriving,
        "one part is not all"
    );
    assert!(
        store
            .row(items_in(store, "inbox")[0].id, &Key::Int(7))
            .unwrap()
            .is_some(),
        "nothing is swept before the last part"
    );
    let second = [received_row("a", 2)];
    part.last = true;
    let out = store
        .apply_item_copy(
            &batch(&second, &cursor(50, false), link),
            "far",
            "a",
            &mut part,
        )
        .unwrap();
    assert_eq!(out.rows, 1);
    assert!(store.pending_copies(link).unwrap().is_empty());
    assert!(store.arriving_items().unwrap().is_empty(), "complete");
    let item = &items_in(store, "inbox")[0];
    assert_eq!(
        item.row_count, 2,
        "row 7 was not in the copy: gone at the origin"
    );
    assert!(store.row(item.id, &Key::Int(7)).unwrap().is_none());

    let refused = crate::PendingCopy {
        origin_instance: "far".into(),
        origin_item: "z".into(),
        title: "Too big".into(),
        error_code: Some("item_too_large".into()),
        error: Some("over the limit".into()),
    };
    store.mark_pending(link, &refused).unwrap();
    assert_eq!(store.pending_copies(link).unwrap(), vec![refused]);
    assert!(
        store.arriving_items().unwrap().is_empty(),
        "an item never received is not here to withhold"
    );
    assert!(store.stale_items().unwrap().is_empty());
    // A later version of an item held here, refused: the item is stale, with why.
    let newer = crate::PendingCopy {
        origin_instance: "far".into(),
        origin_item: "a".into(),
        title: "A".into(),
        error_code: Some("delivery_refused".into()),
        error: Some("offered by reference".into()),
    };
    store.mark_pending(link, &newer).unwrap();
    assert_eq!(
        store.stale_items().unwrap(),
        vec![(
            items_in(store, "inbox")[0].id,
            "offered by reference (delivery_refused)".to_string()
        )]
    );
    assert!(store.pending_copies("peer:other").unwrap().is_empty());
}

pub fn inline_items_arrive_until_their_stream_ends(store: &dyn Store) {
    space(store, "inbox");
    let link = "peer:c1";
    let first = [received_whole("n", "New"), received_row("n", 1)];
    store
        .apply_sync_batch(&batch(&first, &cursor(10, false), link))
        .unwrap();
    let item = items_in(store, "inbox")[0].id;
    assert_eq!(
        store.arriving_items().unwrap(),
        vec![item],
        "more rows may follow"
    );
    let second = [received_row("n", 2)];
    store
        .apply_sync_batch(&batch(&second, &cursor(20, false), link))
        .unwrap();
    assert_eq!(store.arriving_items().unwrap(), vec![item]);
    store.end_stream("peer:other").unwrap();
    assert_eq!(
        store.arriving_items().unwrap(),
        vec![item],
        "another stream's end"
    );
    store.end_stream(link).unwrap();
    assert!(store.arriving_items().unwrap().is_empty(), "all here");
    assert_eq!(items_in(store, "inbox")[0].row_count, 2);
}

pub fn sync_runs_are_kept(store: &dyn Store) {
    let run = |id: &str, link: &str, at: &str| ferry_proto::SyncRun {
        id: id.into(),
        link: link.into(),
        trigger: "on_demand".into(),
        status: "running".into(),
        started_at: at.into(),
        ended_at: None,
        items_received: 0,
        rows_received: 0,
        items_retracted: 0,
        bytes_received: 0,
        errors: vec![],
        message: None,
        direction: "receive".into(),
        items_sent: 0,
        rows_sent: 0,
        bytes_sent: 0,
    };
    store
        .record_run(&run("r1", "peer:a", "2026-01-01T00:00:00Z"))
        .unwrap();
    store
        .record_run(&run("r2", "peer:b", "2026-01-01T00:00:01Z"))
        .unwrap();
    let mut done = run("r1", "peer:a", "2026-01-01T00:00:00Z");
    done.status = "completed_with_failures".into();
    done.rows_received = 5;
    done.errors = vec![ferry_proto::SyncItemError {
        origin_item: "o".into(),
        title: "T".into(),
        code: "item_too_large".into(),
        message: "m".into(),
    }];
    store.record_run(&done).unwrap();
    assert_eq!(
        store.list_runs(Some("peer:a"), None, 10).unwrap(),
        vec![done]
    );
    let all: Vec<String> = store
        .list_runs(None, None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, vec!["r2", "r1"], "newest first");

    // What the requests of one run of the other side sent adds up in one send run; a failed
    // request makes it failed for good; requests of no named run each make their own.
    let part = |peer_run: Option<&str>, rows: i64, failure: Option<&str>| SentPart {
        link: "peer:s".into(),
        peer_run: peer_run.map(String::from),
        trigger: "scheduled".into(),
        items: 1,
        rows,
        retracted: 2,
        bytes: 100,
        failure: failure.map(String::from),
    };
    store.record_sent(&part(Some("x"), 10, None)).unwrap();
    store
        .record_sent(&part(Some("x"), 5, Some("the receiver went away")))
        .unwrap();
    store.record_sent(&part(Some("x"), 1, None)).unwrap();
    store.record_sent(&part(None, 7, None)).unwrap();
    store.record_sent(&part(None, 8, None)).unwrap();
    let sent = store.list_runs(Some("peer:s"), None, 10).unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let x = sent
        .iter()
        .find(|r| r.rows_sent == 16)
        .expect("the summed run");
    assert_eq!(
        (x.direction.as_str(), x.status.as_str(), x.trigger.as_str()),
        ("send", "failed", "scheduled")
    );
    assert_eq!((x.items_sent, x.items_retracted, x.bytes_sent), (3, 6, 300));
    assert_eq!(x.message.as_deref(), Some("the receiver went away"));
    assert_eq!((x.rows_received, x.bytes_received), (0, 0));
    let mut alone: Vec<i64> = sent.iter().map(|r| r.rows_sent).collect();
    alone.sort();
    assert_eq!(alone, vec![7, 8, 16]);
    assert!(
        store.list_runs(Some("peer:a"), None, 10).unwrap()[0].direction == "receive",
        "receive runs stay receive runs"
    );
    assert!(
        store
            .list_runs(Some("peer:s"), Some("receive"), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_runs(Some("peer:s"), Some("send"), 10)
            .unwrap()
            .len(),
        3
    );
    // A link keeps its newest thousand finished runs of each direction.
    for i in 0..1_005 {
        let mut r = run(
            &format!("p{i}"),
            "peer:busy",
            &format!("2026-02-01T00:{:02}:{:02}Z", i / 60, i % 60),
        );
        r.ended_at = Some(r.started_at.clone());
        store.record_run(&r).unwrap();
    }
    let kept = store.list_runs(Some("peer:busy"), None, 2_000).unwrap();
    assert_eq!(kept.len(), 1_000);
    assert_eq!(kept.last().unwrap().id, "p5", "the oldest went first");

    let every_6h = ferry_core::sync::Schedule {
        every_secs: 21_600,
        start_at: Some(1_900_000_000),
        paused: false,
    };
    store.set_schedule("peer:a", &every_6h).unwrap();
    let paused = ferry_core::sync::Schedule {
        paused: true,
        ..every_6h
    };
    store.set_schedule("peer:a", &paused).unwrap();
    assert_eq!(
        store.schedules().unwrap(),
        vec![("peer:a".to_string(), paused)]
    );
}

pub fn references_hold_no_rows(store: &dyn Store) {
    space(store, "inbox");
    let c = cursor(10, false);
    // A reference arrives with the origin's row count; rows sent for it anyway are not kept.
    let ops = [received_reference("r1", 40), received_row("r1", 1)];
    store.apply_sync_batch(&batch(&ops, &c, "peer:c1")).unwrap();
    let item = &items_in(store, "inbox")[0];
    assert!(item.reference);
    assert_eq!(item.row_count, 40);
    assert!(store.row(item.id, &Key::Int(1)).unwrap().is_none());
    assert!(
        store.pending_copies("peer:c1").unwrap().is_empty(),
        "a reference needs no whole copy"
    );
    let links = store.item_links(item.id).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].link.as_str(), links[0].origin_item.as_str()),
        ("peer:c1", "r1")
    );

    // It becomes a copy: a whole copy is queued, and rows are kept again.
    let mut copy = received("r1", "Parcels");
    if let crate::SyncOp::Item(item) = &mut copy {
        item.row_count = 40;
    }
    let ops = [copy, received_row("r1", 1), received_row("r1", 2)];
    store
        .apply_sync_batch(&batch(&ops, &cursor(11, false), "peer:c1"))
        .unwrap();
    let item = store.item(item.id).unwrap();
    assert!(!item.reference);
    assert_eq!(item.row_count, 2, "a copy counts the rows it holds");
    let pending = store.pending_copies("peer:c1").unwrap();
    assert_eq!(pending.len(), 1, "its older rows come in a whole copy");

    // And back to a reference: the rows held here go.
    let ops = [received_reference("r1", 41)];
    store
        .apply_sync_batch(&batch(&ops, &cursor(12, false), "peer:c1"))
        .unwrap();
    let item = store.item(item.id).unwrap();
    assert!(item.reference);
    assert_eq!(item.row_count, 41);
    assert!(store.row(item.id, &Key::Int(2)).unwrap().is_none());
}

/// Geometry texts read back byte for byte, however the store keeps them: in scans (exports and
/// whole copies), in the change feed, and parsed in queries, also after an edit of the values.
pub fn geometry_text_reads_back_as_written(store: &dyn Store) {
    space(store, "s");
    let item = layer_of_geometry_texts(store, "s");
    let mut expected: Vec<Option<String>> =
        GEOMETRY_TEXTS.iter().map(|t| Some(t.to_string())).collect();
    expected.push(None);
    let parsed = |text: &Option<String>| {
        text.as_deref()
            .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap())
    };
    let check = |when: &str| {
        let mut scanned = Vec::new();
        store
            .scan_rows(item.id, &mut |r: RawRow<'_>| {
                scanned.push(r.geometry.map(str::to_string));
                Ok(())
            })
            .unwrap();
        assert_eq!(scanned, expected, "scan {when}");
        let fed: Vec<Option<String>> = store
            .raw_changes("s", 0, 100, &[], &[])
            .unwrap()
            .changes
            .into_iter()
            .filter_map(|(_, change)| match change {
                RawChange::Row { key, geometry, .. } => Some((key, geometry)),
                _ => None,
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        assert_eq!(fed, expected, "change feed {when}");
        let queried: Vec<_> = store
            .query_rows(
                item.id,
                &RowQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .unwrap()
            .into_iter()
            .map(|r| r.geometry)
            .collect();
        assert_eq!(
            queried,
            expected.iter().map(parsed).collect::<Vec<_>>(),
            "query {when}"
        );
        let one = store.row(item.id, &Key::Int(1)).unwrap().unwrap();
        assert_eq!(one.geometry, parsed(&expected[0]), "row {when}");
    };
    check("after the import");
    let plan = EditPlan {
        updates: (1..=expected.len() as i64)
            .map(|key| RowUpdate {
                key: Key::Int(key),
                values: json!({"n": 7}).as_object().unwrap().clone(),
                geometry: None,
            })
            .collect(),
        ..Default::default()
    };
    store.apply_edits(item.id, &plan).unwrap();
    check("after an edit of the values");
}

/// The keys of a map tile's features (all of them, or the first `limit`).
fn tile_keys(
    store: &dyn Store,
    item: ferry_proto::ItemId,
    tile: Tile,
    limit: usize,
) -> (Vec<Key>, bool) {
    let found = store.tile_rows(item, tile, limit).unwrap();
    let keys = found
        .rows
        .iter()
        .map(|r| Key::from_value(&r.key).unwrap())
        .collect();
    (keys, found.complete)
}

/// The tile of zoom `z` that holds a position.
fn tile_at(z: u32, lon: f64, lat: f64) -> Tile {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n) as u32;
    let lat = lat.to_radians();
    let y = ((1.0 - lat.tan().asinh() / std::f64::consts::PI) / 2.0 * n) as u32;
    Tile::new(z, x, y).unwrap()
}

/// The map's index finds exactly the features that touch a tile (as a box query over every row
/// finds them), large features in every tile they cross, thins a crowded tile to an even sample
/// whose prefixes are samples too, and follows every write: edits, deletes, received rows.
pub fn map_tiles_find_and_thin_features(store: &dyn Store) {
    space(store, "s");
    // A 40 × 40 grid off every tile line, and a polygon across many tiles.
    let grid = |i: i64| (-99.3 + 5.0 * (i % 40) as f64, -59.1 + 3.0 * (i / 40) as f64);
    let mut rows: Vec<RowRecord> = (0..1600)
        .map(|i| {
            let (lon, lat) = grid(i);
            point_row(i + 1, lon, lat)
        })
        .collect();
    let polygon = json!({"type": "Polygon",
        "coordinates": [[[10.5, 10.5], [30.5, 10.5], [30.5, 20.5], [10.5, 20.5], [10.5, 10.5]]]});
    rows.push(RowRecord {
        geometry: Some(
            RawGeometry::from_value(&polygon)
                .unwrap()
                .validate(true)
                .unwrap(),
        ),
        ..point_row(5000, 0.0, 0.0)
    });
    let mut source = VecRows {
        rows: rows.into_iter(),
        fail_at_end: None,
        schema: layer_schema(),
    };
    let item = store
        .create_item(&draft("s", ItemKind::FeatureLayer), &mut source)
        .unwrap();
    let by_box = |tile: Tile| -> Vec<Key> {
        let query = RowQuery {
            limit: 10_000,
            bbox: Some(tile.bounds()),
            ..Default::default()
        };
        let rows = store.query_rows(item.id, &query).unwrap();
        let mut keys: Vec<Key> = rows
            .iter()
            .map(|r| Key::from_value(&r.key).unwrap())
            .collect();
        keys.sort();
        keys
    };
    for z in 0..=7 {
        for (lon, lat) in [(0.7, 0.9), (20.7, 15.9), (-50.3, -30.1), (170.0, 80.0)] {
            let tile = tile_at(z, lon, lat);
            let (mut keys, complete) = tile_keys(store, item.id, tile, 100_000);
            keys.sort();
            assert!(complete);
            assert_eq!(keys, by_box(tile), "tile {tile:?}");
        }
    }
    let polygon_tile = tile_at(9, 20.0, 15.0);
    let (keys, _) = tile_keys(store, item.id, polygon_tile, 100);
    assert!(
        keys.contains(&Key::Int(5000)),
        "the polygon crosses the tile"
    );
    let (keys, _) = tile_keys(store, item.id, tile_at(9, 40.0, 15.0), 100);
    assert!(!keys.contains(&Key::Int(5000)));

    // Thinned: an even sample of the grid, each limit's answer a prefix of a larger one.
    let world = Tile::new(0, 0, 0).unwrap();
    let (sample, complete) = tile_keys(store, item.id, world, 400);
    assert_eq!((sample.len(), complete), (400, false));
    let (smaller, _) = tile_keys(store, item.id, world, 150);
    assert_eq!(smaller[..], sample[..150]);
    let mut quadrants = [0; 4];
    for key in &sample {
        let Key::Int(k) = key else {
            panic!("integer keys")
        };
        if *k <= 1600 {
            let (lon, lat) = grid(k - 1);
            quadrants[usize::from(lon > 0.0) + 2 * usize::from(lat > 0.0)] += 1;
        }
    }
    assert!(
        quadrants.iter().all(|q| (60..=140).contains(q)),
        "{quadrants:?}"
    );

    // Edits move and remove features on the map.
    let (old_lon, old_lat) = grid(0);
    let moved = RawGeometry::from_value(&json!({"type": "Point", "coordinates": [150.5, 70.5]}))
        .and_then(|g| g.validate(true))
        .unwrap();
    let plan = EditPlan {
        updates: vec![RowUpdate {
            key: Key::Int(1),
            values: serde_json::Map::new(),
            geometry: Some(Some(moved)),
        }],
        deletes: vec![Key::Int(2)],
        ..Default::default()
    };
    store.apply_edits(item.id, &plan).unwrap();
    let keys_at = |lon, lat| tile_keys(store, item.id, tile_at(12, lon, lat), 100).0;
    assert_eq!(keys_at(150.5, 70.5), vec![Key::Int(1)]);
    assert!(keys_at(old_lon, old_lat).is_empty());
    let (lon2, lat2) = grid(1);
    assert!(
        keys_at(lon2, lat2).is_empty(),
        "a deleted feature leaves the map"
    );

    // Received rows, and their deletion.
    space(store, "inbox");
    let ops = [
        received("o1", "Berths"),
        received_row("o1", 1),
        received_row("o1", 2),
    ];
    store
        .apply_sync_batch(&batch(&ops, &cursor(10, true), "peer:c1"))
        .unwrap();
    let copy = items_in(store, "inbox")[0].id;
    let received_at = |store: &dyn Store| tile_keys(store, copy, tile_at(12, 1.0, 2.0), 100).0;
    assert_eq!(received_at(store).len(), 2);
    let gone = [crate::SyncOp::RowDeleted {
        origin: far("o1"),
        key: Key::Int(2),
    }];
    store
        .apply_sync_batch(&batch(&gone, &cursor(20, false), "peer:c1"))
        .unwrap();
    assert_eq!(received_at(store), vec![Key::Int(1)]);
    let unknown = store.tile_rows(ferry_proto::ItemId::generate(), world, 10);
    assert!(matches!(unknown, Err(StoreError::ItemNotFound(_))));
}
