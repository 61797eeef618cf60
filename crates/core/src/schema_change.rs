//! A change of an item's schema at its origin, pure: what it removes, retypes and adds, whether
//! the origin may make it, and what a copy must not take without its admin.
//!
//! Added fields reach copies on their own (rows without them stay valid). Removing or retyping
//! a field changes what rows mean, so a copy takes such a change only once its admin accepts it
//! (`ferry item accept-schema`); until then the item fails in every run with `schema_changed`
//! and the copy keeps its rows as they were.

use crate::error::{CoreError, CoreResult};
use ferry_proto::{FieldType, ItemKind, Schema};
use serde_json::Value;

/// What a new schema does to an old one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Fields kept under their name with another type.
    pub retyped: Vec<(String, FieldType)>,
}

impl SchemaChange {
    pub fn between(old: &Schema, new: &Schema) -> SchemaChange {
        let mut change = SchemaChange::default();
        for field in &old.fields {
            match new.field(&field.name) {
                None => change.removed.push(field.name.clone()),
                Some(now) if now.field_type != field.field_type => {
                    change.retyped.push((field.name.clone(), now.field_type));
                }
                Some(_) => {}
            }
        }
        change.added = new
            .fields
            .iter()
            .filter(|f| old.field(&f.name).is_none())
            .map(|f| f.name.clone())
            .collect();
        change
    }

    /// Whether rows valid before may mean something else after: a copy's admin must accept it.
    pub fn narrows(&self) -> bool {
        !self.removed.is_empty() || !self.retyped.is_empty()
    }

    /// What it does, for people: "removes a, b; retypes c to number".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.removed.is_empty() {
            parts.push(format!("removes {}", self.removed.join(", ")));
        }
        if !self.retyped.is_empty() {
            let retyped: Vec<String> = self
                .retyped
                .iter()
                .map(|(name, t)| format!("{name} to {}", t.as_str()))
                .collect();
            parts.push(format!("retypes {}", retyped.join(", ")));
        }
        if !self.added.is_empty() {
            parts.push(format!("adds {}", self.added.join(", ")));
        }
        parts.join("; ")
    }

    /// A stored row's values under the new schema: removed fields dropped; a retyped field's
    /// value must fit its new type (values are never converted). Whether the row changed.
    pub fn reshape(&self, values: &mut serde_json::Map<String, Value>) -> CoreResult<bool> {
        for (name, t) in &self.retyped {
            if let Some(value) = values.get(name)
                && !crate::schema::value_fits(*t, value)
            {
                return Err(CoreError::SchemaMismatch(format!(
                    "field '{name}' cannot become {}: a row holds {value}, which is not one (values are never converted; change them first)",
                    t.as_str()
                )));
            }
        }
        let mut changed = false;
        for name in &self.removed {
            changed |= values.remove(name).is_some();
        }
        Ok(changed)
    }
}

/// Checks a schema an origin gives one of its own datasets or layers in place of `old`: a valid
/// schema of its kind, with the same primary key of the same type.
pub fn check_change(kind: ItemKind, old: &Schema, new: &Schema) -> CoreResult<SchemaChange> {
    crate::edits::check_new_schema(kind, new)?;
    if old.primary_key != new.primary_key {
        return Err(CoreError::InvalidRequest(
            "a schema change keeps the primary key: rows are known by it on every copy".into(),
        ));
    }
    let change = SchemaChange::between(old, new);
    if let Some(pk) = &old.primary_key
        && change.retyped.iter().any(|(name, _)| name == pk)
    {
        return Err(CoreError::InvalidRequest(format!(
            "a schema change keeps the primary key '{pk}' and its type"
        )));
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::Field;
    use serde_json::json;

    fn schema(fields: &[(&str, FieldType)]) -> Schema {
        Schema {
            fields: fields
                .iter()
                .map(|(name, t)| Field {
                    name: name.to_string(),
                    field_type: *t,
                })
                .collect(),
            primary_key: Some("id".into()),
        }
    }

    #[test]
    fn a_change_names_what_it_adds_removes_and_retypes() {
        let old = schema(&[
            ("id", FieldType::Integer),
            ("a", FieldType::String),
            ("b", FieldType::Integer),
        ]);
        let new = schema(&[
            ("id", FieldType::Integer),
            ("b", FieldType::Number),
            ("c", FieldType::Boolean),
        ]);
        let change = check_change(ItemKind::Dataset, &old, &new).unwrap();
        assert_eq!(change.added, vec!["c"]);
        assert_eq!(change.removed, vec!["a"]);
        assert_eq!(change.retyped, vec![("b".to_string(), FieldType::Number)]);
        assert!(change.narrows());
        assert_eq!(change.describe(), "removes a; retypes b to number; adds c");
        let only_added = SchemaChange::between(
            &old,
            &schema(&[
                ("id", FieldType::Integer),
                ("a", FieldType::String),
                ("b", FieldType::Integer),
                ("d", FieldType::Json),
            ]),
        );
        assert!(!only_added.narrows());
    }

    #[test]
    fn the_primary_key_stays_with_its_type() {
        let old = schema(&[("id", FieldType::Integer), ("a", FieldType::String)]);
        let retyped = schema(&[("id", FieldType::String), ("a", FieldType::String)]);
        assert!(check_change(ItemKind::Dataset, &old, &retyped).is_err());
        let other_key = Schema {
            primary_key: Some("a".into()),
            ..old.clone()
        };
        assert!(check_change(ItemKind::Dataset, &old, &other_key).is_err());
    }

    #[test]
    fn rows_lose_removed_fields_and_keep_values_that_fit_a_new_type() {
        let change = SchemaChange {
            removed: vec!["a".into()],
            retyped: vec![("b".into(), FieldType::Number)],
            added: vec![],
        };
        let mut row = json!({"id": 1, "a": "x", "b": 7})
            .as_object()
            .unwrap()
            .clone();
        assert!(change.reshape(&mut row).unwrap());
        assert_eq!(Value::Object(row), json!({"id": 1, "b": 7}));
        let mut untouched = json!({"id": 2, "b": null}).as_object().unwrap().clone();
        assert!(!change.reshape(&mut untouched).unwrap());
        let to_int = SchemaChange {
            retyped: vec![("b".into(), FieldType::Integer)],
            ..SchemaChange::default()
        };
        let mut row = json!({"id": 3, "b": 2.5}).as_object().unwrap().clone();
        let refused = to_int.reshape(&mut row).unwrap_err();
        assert!(refused.to_string().contains("never converted"), "{refused}");
    }
}
