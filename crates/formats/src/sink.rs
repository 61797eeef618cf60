//! The consumer side of an import: checks each parsed row, learns the schema, batches rows and
//! passes them to the store's thread.

use crate::format::ImportOptions;
use ferry_core::geometry::{Geometry, combine_types, is_geographic};
use ferry_core::schema::{GENERATED_KEY, check_schema};
use ferry_core::{CoreError, CoreResult, Key, SchemaBuilder};
use ferry_proto::{GeometryType, ItemKind};
use ferry_store::{ItemShape, RowRecord, RowSource};
use serde_json::{Map, Value};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

const BATCH_ROWS: usize = 2048;
/// Batches in flight between the parser and the store: bounds import memory.
const BATCHES_IN_FLIGHT: usize = 4;

enum Msg {
    Rows(Vec<RowRecord>),
    Failed(CoreError),
    Done(ItemShape),
}

/// How a dataset row gets its key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyRule {
    /// From this column.
    Column(String),
    /// Numbered from 1 in a generated `_id` column.
    Generate,
    /// Layers: the feature id, else the feature's position.
    FeatureId,
}

pub(crate) struct Sink {
    tx: SyncSender<Msg>,
    batch: Vec<RowRecord>,
    pub(crate) schema: SchemaBuilder,
    key_rule: Option<KeyRule>,
    geometry_type: Option<GeometryType>,
    pub(crate) geographic: bool,
    pub(crate) crs: String,
    crs_locked: bool,
    rows: u64,
    /// The largest integer key so far: a feature without an id gets the next one.
    max_int_key: i64,
}

impl Sink {
    fn new(kind: ItemKind, options: &ImportOptions, tx: SyncSender<Msg>) -> Sink {
        let schema = match &options.schema {
            Some(s) => SchemaBuilder::enforce(s),
            None => SchemaBuilder::infer(None),
        };
        let pk = options
            .primary_key
            .clone()
            .or_else(|| options.schema.as_ref().and_then(|s| s.primary_key.clone()));
        let key_rule = match kind {
            ItemKind::FeatureLayer => Some(KeyRule::FeatureId),
            _ => pk.map(KeyRule::Column),
        };
        Sink {
            tx,
            batch: Vec::with_capacity(BATCH_ROWS),
            schema,
            key_rule,
            geometry_type: None,
            geographic: is_geographic(&options.crs),
            crs: options.crs.clone(),
            crs_locked: false,
            rows: 0,
            max_int_key: 0,
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Sets the key rule from the first record's columns, unless the options fixed it.
    pub(crate) fn choose_key(&mut self, has_id_column: bool) {
        if self.key_rule.is_none() {
            self.key_rule = Some(if has_id_column {
                KeyRule::Column("id".into())
            } else {
                KeyRule::Generate
            });
        }
    }

    pub(crate) fn key_rule(&self) -> Option<&KeyRule> {
        self.key_rule.as_ref()
    }

    /// A GeoJSON `crs` member: allowed only before the first feature.
    pub(crate) fn set_crs(&mut self, crs: String) -> CoreResult<()> {
        if self.crs_locked && crs != self.crs {
            return Err(CoreError::MalformedGeojson(format!(
                "the 'crs' member ({crs}) comes after the features; put it first or pass the CRS explicitly"
            )));
        }
        self.geographic = is_geographic(&crs);
        self.crs = crs;
        Ok(())
    }

    /// Adds a dataset record.
    pub(crate) fn record(&mut self, mut values: Map<String, Value>) -> CoreResult<()> {
        let n = self.rows + 1;
        let key = match self.key_rule.clone() {
            Some(KeyRule::Column(pk)) => {
                let v = values.get(&pk).ok_or_else(|| {
                    CoreError::SchemaMismatch(format!("primary key '{pk}' has no value"))
                })?;
                Key::from_value(v)?
            }
            _ => {
                let id = n as i64;
                values.insert(GENERATED_KEY.to_string(), Value::from(id));
                Key::Int(id)
            }
        };
        self.schema.observe(&values)?;
        let text = serde_json::to_string(&values)
            .map_err(|e| CoreError::InvalidRequest(format!("cannot encode values: {e}")))?;
        self.push(key, text, None)
    }

    /// Adds a feature whose properties are a JSON object given as text.
    pub(crate) fn feature(
        &mut self,
        id: Option<&Value>,
        properties: &str,
        geometry: Option<Geometry>,
    ) -> CoreResult<()> {
        self.crs_locked = true;
        let key = match id {
            Some(v) if !v.is_null() => Key::from_value(v)?,
            _ => Key::Int(self.max_int_key.checked_add(1).ok_or_else(|| {
                CoreError::SchemaMismatch("no integer id is left for a feature without one".into())
            })?),
        };
        if let Key::Int(k) = key {
            self.max_int_key = self.max_int_key.max(k);
        }
        if let Some(g) = &geometry {
            self.geometry_type = Some(combine_types(self.geometry_type, g.geometry_type));
        }
        self.schema.observe_raw(properties)?;
        self.push(key, properties.to_string(), geometry)
    }

    fn push(&mut self, key: Key, values: String, geometry: Option<Geometry>) -> CoreResult<()> {
        self.batch.push(RowRecord {
            key,
            values,
            geometry,
        });
        self.rows += 1;
        if self.batch.len() == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> CoreResult<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_ROWS));
        self.tx
            .send(Msg::Rows(rows))
            .map_err(|_| CoreError::InvalidRequest("the import was cancelled".into()))
    }

    fn finish(&mut self, kind: ItemKind) -> CoreResult<ItemShape> {
        self.flush()?;
        let mut schema = self.schema.schema();
        if kind == ItemKind::Dataset {
            schema.primary_key = Some(match &self.key_rule {
                Some(KeyRule::Column(pk)) => pk.clone(),
                _ => GENERATED_KEY.to_string(),
            });
        }
        check_schema(&schema, kind == ItemKind::Dataset)?;
        Ok(ItemShape {
            schema: Some(schema),
            geometry_type: self.geometry_type,
            crs: None,
        })
    }
}

/// The store's end of an import.
pub struct ImportStream {
    rx: Receiver<Msg>,
    current: std::vec::IntoIter<RowRecord>,
    shape: ItemShape,
    crs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl std::fmt::Debug for ImportStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportStream")
    }
}

impl ImportStream {
    /// The CRS the input declared (or the one given in the options).
    pub fn crs(&self) -> String {
        self.crs.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl RowSource for ImportStream {
    fn next_row(&mut self) -> CoreResult<Option<RowRecord>> {
        loop {
            if let Some(row) = self.current.next() {
                return Ok(Some(row));
            }
            match self.rx.recv() {
                Ok(Msg::Rows(rows)) => self.current = rows.into_iter(),
                Ok(Msg::Failed(e)) => return Err(e),
                Ok(Msg::Done(shape)) => {
                    self.shape = shape;
                    return Ok(None);
                }
                Err(_) => {
                    return Err(CoreError::InvalidRequest(
                        "the import reader stopped unexpectedly".into(),
                    ));
                }
            }
        }
    }

    fn shape(&self) -> ItemShape {
        self.shape.clone()
    }
}

pub(crate) fn spawn(
    kind: ItemKind,
    options: ImportOptions,
    parse: impl FnOnce(&mut Sink) -> CoreResult<()> + Send + 'static,
) -> ImportStream {
    let (tx, rx) = sync_channel(BATCHES_IN_FLIGHT);
    let crs = std::sync::Arc::new(std::sync::Mutex::new(options.crs.clone()));
    let crs_out = crs.clone();
    std::thread::spawn(move || {
        let mut sink = Sink::new(kind, &options, tx.clone());
        let outcome = parse(&mut sink).and_then(|()| sink.finish(kind));
        if let Ok(mut c) = crs_out.lock() {
            c.clone_from(&sink.crs);
        }
        // The receiver may be gone (the store gave up); nothing is left to tell then.
        let _ = tx.send(match outcome {
            Ok(shape) => Msg::Done(shape),
            Err(e) => Msg::Failed(e),
        });
    });
    ImportStream {
        rx,
        current: Vec::new().into_iter(),
        shape: ItemShape::default(),
        crs,
    }
}
