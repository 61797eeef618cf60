//! Checks an edit batch against an item's schema and turns it into an [`EditPlan`] for the store.
//!
//! Pure: it needs only the item's kind, schema and CRS. Row existence (duplicate keys, missing
//! rows) is the store's to check, inside the transaction that applies the plan.

use crate::Key;
use crate::error::{CoreError, CoreResult};
use crate::geometry::{RawGeometry, combine_types, is_geographic};
use crate::rows::{AddKey, EditPlan, RowAdd, RowUpdate};
use crate::schema::{SchemaBuilder, check_schema};
use ferry_proto::{ApiErrorBrief, EditBatch, EditOp, EditResult, ItemKind, RowInput, Schema};
use serde_json::Value;

/// What the planner needs to know about the item being edited.
#[derive(Debug, Clone)]
pub struct EditTarget<'a> {
    pub kind: ItemKind,
    pub schema: &'a Schema,
    pub crs: Option<&'a str>,
}

/// The plan, or the result of every edit when any of them is refused.
pub fn plan_edits(target: &EditTarget<'_>, batch: &EditBatch) -> Result<EditPlan, Vec<EditResult>> {
    // The geometry type of what this batch writes; the store combines it with the layer's.
    let mut plan = EditPlan::default();
    let mut results = Vec::with_capacity(batch.len());
    let mut failed = false;
    let mut note = |op, index, key: Option<Value>, outcome: CoreResult<()>| {
        failed |= outcome.is_err();
        results.push(EditResult {
            op,
            index,
            key,
            success: outcome.is_ok(),
            error: outcome.err().map(|e| ApiErrorBrief {
                code: e.code(),
                message: e.to_string(),
            }),
        });
    };
    for (i, input) in batch.adds.iter().enumerate() {
        match plan_add(target, input) {
            Ok(add) => {
                let key = match &add.key {
                    AddKey::Given(k) => Some(k.to_value()),
                    AddKey::Generate => None,
                };
                if let Some(g) = &add.geometry {
                    plan.geometry_type = Some(combine_types(plan.geometry_type, g.geometry_type));
                }
                plan.adds.push(add);
                note(EditOp::Add, i, key, Ok(()));
            }
            Err(e) => note(EditOp::Add, i, input.key.clone(), Err(e)),
        }
    }
    for (i, input) in batch.updates.iter().enumerate() {
        match plan_update(target, input) {
            Ok(update) => {
                if let Some(Some(g)) = &update.geometry {
                    plan.geometry_type = Some(combine_types(plan.geometry_type, g.geometry_type));
                }
                let key = update.key.to_value();
                plan.updates.push(update);
                note(EditOp::Update, i, Some(key), Ok(()));
            }
            Err(e) => note(EditOp::Update, i, input.key.clone(), Err(e)),
        }
    }
    for (i, raw) in batch.deletes.iter().enumerate() {
        match Key::from_value(raw) {
            Ok(key) => {
                plan.deletes.push(key);
                note(EditOp::Delete, i, Some(raw.clone()), Ok(()));
            }
            Err(e) => note(EditOp::Delete, i, Some(raw.clone()), Err(e)),
        }
    }
    if failed { Err(results) } else { Ok(plan) }
}

fn check_values(target: &EditTarget<'_>, input: &RowInput) -> CoreResult<()> {
    SchemaBuilder::enforce(target.schema).observe(&input.values)
}

fn geometry_of(
    target: &EditTarget<'_>,
    raw: &Value,
) -> CoreResult<Option<crate::geometry::Geometry>> {
    if raw.is_null() {
        return Ok(None);
    }
    if target.kind != ItemKind::FeatureLayer {
        return Err(CoreError::InvalidRequest(
            "only feature layers have geometries; leave 'geometry' out".into(),
        ));
    }
    let geographic = is_geographic(target.crs.unwrap_or("EPSG:4326"));
    RawGeometry::from_value(raw)?.validate(geographic).map(Some)
}

/// The key a dataset row carries in its primary-key column.
fn dataset_key(target: &EditTarget<'_>, input: &RowInput) -> CoreResult<Option<Key>> {
    let pk = target.schema.primary_key.as_deref().unwrap_or_default();
    let from_values = input.values.get(pk).map(Key::from_value).transpose()?;
    let given = input.key.as_ref().map(Key::from_value).transpose()?;
    match (given, from_values) {
        (Some(g), Some(v)) if g != v => Err(CoreError::InvalidRequest(format!(
            "key {g} differs from primary key '{pk}' = {v}; a row's key cannot change"
        ))),
        (g, v) => Ok(v.or(g)),
    }
}

fn plan_add(target: &EditTarget<'_>, input: &RowInput) -> CoreResult<RowAdd> {
    check_values(target, input)?;
    let geometry = match &input.geometry {
        Some(raw) => geometry_of(target, raw)?,
        None => None,
    };
    let key = match target.kind {
        ItemKind::Dataset => {
            let pk = target.schema.primary_key.clone().unwrap_or_default();
            let key = dataset_key(target, input)?.ok_or_else(|| {
                CoreError::SchemaMismatch(format!(
                    "the primary key '{pk}' must have a value among the row's values: an add to this dataset is {{\"values\": {{\"{pk}\": ..., ...}}}}"
                ))
            })?;
            AddKey::Given(key)
        }
        _ => match &input.key {
            Some(k) => AddKey::Given(Key::from_value(k)?),
            None => AddKey::Generate,
        },
    };
    let mut values = input.values.clone();
    if let (ItemKind::Dataset, AddKey::Given(k)) = (target.kind, &key) {
        let pk = target.schema.primary_key.clone().unwrap_or_default();
        values.insert(pk, k.to_value());
    }
    Ok(RowAdd {
        key,
        values,
        geometry,
    })
}

fn plan_update(target: &EditTarget<'_>, input: &RowInput) -> CoreResult<RowUpdate> {
    check_values(target, input)?;
    let key = match target.kind {
        ItemKind::Dataset => dataset_key(target, input)?,
        _ => input.key.as_ref().map(Key::from_value).transpose()?,
    }
    .ok_or_else(|| CoreError::InvalidRequest("an update must name the row's key".into()))?;
    let geometry = input
        .geometry
        .as_ref()
        .map(|raw| geometry_of(target, raw))
        .transpose()?;
    Ok(RowUpdate {
        key,
        values: input.values.clone(),
        geometry,
    })
}

/// Checks the schema of a new, empty dataset or layer.
pub fn check_new_schema(kind: ItemKind, schema: &Schema) -> CoreResult<()> {
    match kind {
        ItemKind::File => Err(CoreError::InvalidRequest(
            "file items are created by importing a file".into(),
        )),
        _ => check_schema(schema, kind == ItemKind::Dataset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::{Field, FieldType, GeometryType};
    use serde_json::json;

    fn dataset_schema() -> Schema {
        Schema {
            fields: vec![
                Field {
                    name: "id".into(),
                    field_type: FieldType::Integer,
                },
                Field {
                    name: "v".into(),
                    field_type: FieldType::Number,
                },
            ],
            primary_key: Some("id".into()),
        }
    }

    fn input(v: Value) -> RowInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn dataset_edits_take_keys_from_the_primary_key() {
        let schema = dataset_schema();
        let target = EditTarget {
            kind: ItemKind::Dataset,
            schema: &schema,
            crs: None,
        };
        let batch = EditBatch {
            adds: vec![input(json!({"values": {"id": 5, "v": 1.5}}))],
            updates: vec![input(json!({"values": {"id": 6, "v": 2}}))],
            deletes: vec![json!(7)],
        };
        let plan = plan_edits(&target, &batch).unwrap();
        assert_eq!(plan.adds[0].key, AddKey::Given(Key::Int(5)));
        assert_eq!(plan.updates[0].key, Key::Int(6));
        assert_eq!(plan.deletes, vec![Key::Int(7)]);
    }

    #[test]
    fn every_bad_edit_is_reported() {
        let schema = dataset_schema();
        let target = EditTarget {
            kind: ItemKind::Dataset,
            schema: &schema,
            crs: None,
        };
        let batch = EditBatch {
            adds: vec![
                input(json!({"values": {"id": 1, "v": "x"}})),
                input(json!({"values": {"v": 1}})),
                input(json!({"values": {"id": 2, "extra": 1}})),
                input(
                    json!({"values": {"id": 3}, "geometry": {"type": "Point", "coordinates": [0, 0]}}),
                ),
                input(json!({"values": {"id": 4}})),
            ],
            updates: vec![input(json!({"key": 1, "values": {"id": 2}}))],
            deletes: vec![json!(1.5)],
        };
        let results = plan_edits(&target, &batch).unwrap_err();
        let ok: Vec<bool> = results.iter().map(|r| r.success).collect();
        assert_eq!(ok, vec![false, false, false, false, true, false, false]);
    }

    #[test]
    fn layer_geometry_rules() {
        let schema = Schema::default();
        let target = EditTarget {
            kind: ItemKind::FeatureLayer,
            schema: &schema,
            crs: Some("EPSG:4326"),
        };
        let batch = EditBatch {
            adds: vec![input(
                json!({"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}),
            )],
            updates: vec![
                input(json!({"key": 1, "geometry": null})),
                input(json!({"key": 2})),
            ],
            deletes: vec![],
        };
        let plan = plan_edits(&target, &batch).unwrap();
        assert_eq!(plan.adds[0].key, AddKey::Generate);
        assert_eq!(
            plan.geometry_type,
            Some(GeometryType::LineString),
            "only what the batch writes"
        );
        assert_eq!(
            plan.updates[0].geometry,
            Some(None),
            "null clears the geometry"
        );
        assert_eq!(plan.updates[1].geometry, None, "absent keeps it");
        let bad = EditBatch {
            adds: vec![input(
                json!({"geometry": {"type": "Point", "coordinates": [500, 0]}}),
            )],
            ..Default::default()
        };
        let results = plan_edits(&target, &bad).unwrap_err();
        assert_eq!(
            results[0].error.as_ref().unwrap().code,
            ferry_proto::ErrorCode::InvalidGeometry
        );
    }
}
