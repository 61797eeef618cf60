//! Checking what a sender streams before anything is applied: each item against what this
//! instance agreed to take, each row against its item's schema and geometry rules. What passes
//! becomes store operations; what does not is refused and retried at the next run.

use super::links::Inbound;
use super::stream::Incoming;
use crate::error::{NodeError, NodeResult};
use crate::federation::{self};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::geometry::{RawGeometry, is_geographic};
use ferry_core::policy::Flows;
use ferry_core::schema::SchemaBuilder;
use ferry_core::sync::{accept, accept_delivery};
use ferry_core::{FastMap, FastSet};
use ferry_core::{Key, rows::RowRecord};
use ferry_proto::{
    ChunkHash, ChunkRequest, ErrorCode, ItemKind, RunTag, SyncItemError, SyncRecord, WireItem,
};
use ferry_store::{ChunkRef, Origin, PendingCopy, ReceivedItem, SyncBatch, SyncCursor, SyncOp};
use std::collections::HashSet;
use std::sync::Arc;

/// A file's chunks as its description gives them: each at most a chunk long, together the
/// file's size (what the size limit was judged on).
pub(super) fn described_chunks(
    wire: &WireItem,
    info: &ferry_proto::FileInfo,
) -> NodeResult<Vec<ChunkRef>> {
    let refused = |message: String| NodeError::new(ErrorCode::SyncRefused, message);
    let mut total: u64 = 0;
    let mut refs = Vec::with_capacity(wire.chunks.len());
    for (hash, len) in &wire.chunks {
        if *len > ferry_store::CHUNK_SIZE as u64 {
            return Err(refused(format!(
                "the sender described a file chunk of {len} bytes; chunks hold at most {}",
                ferry_store::CHUNK_SIZE
            )));
        }
        total = total.saturating_add(*len);
        refs.push(ChunkRef {
            hash: *hash,
            len: *len,
        });
    }
    if total != info.size || total != wire.size {
        return Err(refused(format!(
            "the sender described a file of {} bytes whose chunks hold {total}",
            info.size
        )));
    }
    Ok(refs)
}

/// What a row of an item is checked against: the item's schema, if it has one, and whether its
/// geometries are lon/lat.
pub(super) type Shape = (Option<SchemaBuilder>, bool);

/// Checks a row against its item's schema and geometry rules; the values stay as text.
pub(super) fn check_row(
    (schema, geographic): &mut Shape,
    key: &serde_json::Value,
    values: String,
    geometry: Option<String>,
) -> Result<RowRecord, String> {
    let key = Key::from_value(key).map_err(|e| e.to_string())?;
    match schema {
        Some(schema) => schema.observe_raw(&values),
        None => SchemaBuilder::infer(None).observe_raw(&values),
    }
    .map_err(|e| e.to_string())?;
    let geometry = geometry
        .filter(|g| g.trim() != "null")
        .map(|g| RawGeometry::validate_text(&g, *geographic))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(RowRecord {
        key,
        values,
        geometry,
    })
}

/// Turns wire records into checked store operations, refusing items this instance did not agree
/// to take.
pub(super) struct Checker<'a> {
    node: &'a Node,
    channel: &'a Inbound,
    /// Items this stream described, by the item id its rows name: the full origin (instance and
    /// item) the rows belong to, and their schema check (and whether geometries are lon/lat).
    shapes: FastMap<String, (Arc<Origin>, Shape)>,
    refused: FastSet<String>,
    pub(super) errors: Vec<SyncItemError>,
    /// Items that came through the checks.
    pub(super) received: HashSet<String>,
    /// File bytes fetched (only chunks this instance lacked).
    pub(super) chunk_bytes: i64,
    /// The item a whole-item copy stream is of: its compact rows do not name it.
    copying: Option<Arc<Origin>>,
    /// The run, named in chunk requests.
    run: RunTag,
    /// Items refused, to be recorded as pending once their batch verified.
    marks: Vec<PendingCopy>,
    /// This instance's items the sender edits, checked once per stream.
    editable: FastMap<String, Result<super::edits::Editable, super::edits::Refusal>>,
    /// A second operation the last line gave (a row's version after the row).
    extra: Option<SyncOp>,
}

impl<'a> Checker<'a> {
    /// A checker for one stream of `channel` in run `run`; `copying` names the item a
    /// whole-item copy stream is of.
    pub(super) fn new(
        node: &'a Node,
        channel: &'a Inbound,
        run: RunTag,
        copying: Option<Arc<Origin>>,
    ) -> Checker<'a> {
        Checker {
            node,
            channel,
            shapes: FastMap::default(),
            refused: FastSet::default(),
            errors: Vec::new(),
            received: HashSet::new(),
            chunk_bytes: 0,
            copying,
            run,
            marks: Vec::new(),
            editable: FastMap::default(),
            extra: None,
        }
    }

    pub(super) async fn item(&mut self, wire: WireItem) -> NodeResult<Option<SyncOp>> {
        self.check_identity(&wire)?;
        let kind = match wire.kind.as_str() {
            "dataset" => ItemKind::Dataset,
            "feature_layer" => ItemKind::FeatureLayer,
            "file" => ItemKind::File,
            other => {
                self.refuse(
                    &wire,
                    "sync_refused",
                    format!("unknown item kind '{other}'"),
                )
                .await?;
                return Ok(None);
            }
        };
        if let Err(refusal) = accept(
            &self.channel.agreement,
            kind,
            &wire.origin_instance,
            wire.size,
        ) {
            self.refuse(&wire, refusal.code, refusal.message).await?;
            return Ok(None);
        }
        if let Err(refusal) = accept_delivery(&self.channel.agreement, kind, wire.reference) {
            self.refuse(&wire, refusal.code, refusal.message).await?;
            return Ok(None);
        }
        if let Some(schema) = &wire.schema
            && let Err(e) = ferry_core::edits::check_new_schema(kind, schema)
        {
            self.refuse(&wire, "invalid_schema", e.to_string()).await?;
            return Ok(None);
        }
        if let Some(why) = self.narrowed_schema(&wire).await? {
            self.refuse(&wire, ErrorCode::SchemaChanged.as_str(), why)
                .await?;
            return Ok(None);
        }
        // A file's chunks are fetched once the batch describing it verified (`fetch_files`).
        let file = match (&wire.file, kind) {
            (Some(info), ItemKind::File) => match described_chunks(&wire, info) {
                Ok(chunks) => Some((info.clone(), chunks)),
                Err(e) => {
                    self.refuse(&wire, e.0.code.as_str(), e.0.message).await?;
                    return Ok(None);
                }
            },
            _ => None,
        };
        self.refused.remove(&wire.origin_item);
        self.received.insert(wire.origin_item.clone());
        let geographic = wire.crs.as_deref().is_none_or(is_geographic);
        let origin = Arc::new(Origin::new(&wire.origin_instance, &wire.origin_item));
        self.shapes.insert(
            wire.origin_item.clone(),
            (
                origin,
                (wire.schema.as_ref().map(SchemaBuilder::enforce), geographic),
            ),
        );
        let mut markings = wire.markings.clone();
        for m in &self.channel.mark {
            if !markings.contains(m) {
                markings.push(m.clone());
            }
        }
        Ok(Some(SyncOp::Item(Box::new(ReceivedItem {
            origin_instance: wire.origin_instance,
            origin_item: wire.origin_item,
            kind,
            title: wire.title,
            description: wire.description,
            tags: wire.tags,
            markings,
            schema: wire.schema,
            geometry_type: wire.geometry_type,
            crs: wire.crs,
            file,
            whole: wire.whole,
            copy_whole: wire.copy_whole,
            reference: wire.reference,
            row_count: wire.row_count,
            sync_as: wire.sync_as,
            two_way: wire.two_way,
        }))))
    }

    /// A retraction, if this link may bring the item at all (and, in a whole copy, if it is the
    /// copied item): a link never retracts what another brought.
    pub(super) fn retract_op(
        &mut self,
        origin_instance: String,
        origin_item: String,
    ) -> NodeResult<Option<SyncOp>> {
        if self.copying.as_ref().is_some_and(|copying| {
            copying.instance != origin_instance || copying.item != origin_item
        }) {
            return Err(NodeError::new(
                ErrorCode::SyncRefused,
                "the sender retracted another item in a whole copy",
            ));
        }
        // An honest sender retracts items of other origins that pass through its space (it
        // never sent them here); nothing here is that link's to touch.
        if !self.channel.agreement.origins.allows(&origin_instance) {
            return Ok(None);
        }
        Ok(Some(SyncOp::Retract {
            origin_instance,
            origin_item,
        }))
    }

    /// One item id names one item in a stream: rows name an item by its id alone, so a stream
    /// that gave the same id to items of two instances could write one's rows into the other.
    /// A whole copy describes the copied item and no other.
    pub(super) fn check_identity(&self, wire: &WireItem) -> NodeResult<()> {
        let same = |origin: &Origin| {
            origin.instance == wire.origin_instance && origin.item == wire.origin_item
        };
        if let Some(copying) = &self.copying
            && !same(copying)
        {
            return Err(NodeError::new(
                ErrorCode::SyncRefused,
                "the sender described another item in a whole copy",
            ));
        }
        match self.shapes.get(&wire.origin_item) {
            Some((origin, _)) if !same(origin) => Err(NodeError::new(
                ErrorCode::SyncRefused,
                format!(
                    "the sender described item {} as coming from two instances in one stream",
                    wire.origin_item
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Fetches the chunks that the files of a verified batch use and this instance lacks (only
    /// those travel). A file whose chunks cannot be had is refused and left out of the batch.
    /// Returns the chunks fetched: held until the batch is applied, then to be released.
    pub(super) async fn fetch_files(&mut self, ops: &mut Vec<SyncOp>) -> NodeResult<Vec<ChunkRef>> {
        let mut fetched = Vec::new();
        let mut refused = Vec::new();
        for (at, op) in ops.iter().enumerate() {
            let SyncOp::Item(item) = op else { continue };
            let Some((_, chunks)) = &item.file else {
                continue;
            };
            if let Err(e) = self.fetch_chunks(chunks, &mut fetched).await {
                refused.push((at, e));
            }
        }
        for (at, e) in refused.into_iter().rev() {
            let SyncOp::Item(item) = ops.remove(at) else {
                continue;
            };
            let (instance, item_id, title) = (item.origin_instance, item.origin_item, item.title);
            self.quarantine(&instance, &item_id, &title, e.0.code.as_str(), e.0.message)
                .await?;
        }
        Ok(fetched)
    }

    /// Fetches the chunks of a file this instance lacks, [`CHUNKS_IN_FLIGHT`] at a time; each
    /// one stored goes to `fetched` (even when another fails: a later run resumes with only the
    /// chunks still missing).
    async fn fetch_chunks(
        &mut self,
        chunks: &[ChunkRef],
        fetched: &mut Vec<ChunkRef>,
    ) -> NodeResult<()> {
        use futures_util::StreamExt;
        let (node, channel, run) = (
            self.node.clone(),
            Arc::new(self.channel.clone()),
            self.run.clone(),
        );
        // Owned, so the stream's futures are Send for any lifetime the runtime asks about.
        let mut in_flight = futures_util::stream::iter(chunks.to_vec())
            .map(move |chunk| {
                let (node, channel, run) = (node.clone(), channel.clone(), run.clone());
                async move {
                    let result = fetch_chunk(&node, &channel, &run, &chunk).await;
                    (chunk, result)
                }
            })
            .buffer_unordered(CHUNKS_IN_FLIGHT);
        let mut failure = None;
        while let Some((chunk, result)) = in_flight.next().await {
            match result {
                Ok(Some(len)) => {
                    self.chunk_bytes += len as i64;
                    fetched.push(chunk);
                }
                Ok(None) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// The operation after the one the last line gave, if it gave two.
    pub(super) fn take_extra(&mut self) -> Option<SyncOp> {
        self.extra.take()
    }

    /// Over a channel open for edits only, edits are all that is taken: anything else a sender
    /// streams (items, rows, retractions) is dropped unread.
    async fn edit_only_op(&mut self, incoming: Incoming) -> NodeResult<Option<SyncOp>> {
        match incoming {
            Incoming::Record(SyncRecord::Edit {
                origin_item,
                key,
                edit,
            }) => self.edit(origin_item, key, *edit).await,
            _ => Ok(None),
        }
    }

    /// A row's version from its origin follows the row, for a copy to settle its own edits.
    fn versioned(
        &mut self,
        origin: Arc<Origin>,
        key: Key,
        version: Option<ferry_proto::twoway::RowVersion>,
    ) {
        // Only the item's origin speaks for its versions: a relaying instance could otherwise
        // claim the origin had seen edits it never judged.
        let from_origin = origin.instance == self.channel.sender.instance_id;
        self.extra = version
            .filter(|_| from_origin)
            .map(|version| SyncOp::RowVersion {
                origin,
                key,
                version,
            });
    }

    /// Checks an edit a copy sent back of one of this instance's two-way items.
    async fn edit(
        &mut self,
        origin_item: String,
        key: serde_json::Value,
        edit: ferry_proto::twoway::RowEdit,
    ) -> NodeResult<Option<SyncOp>> {
        if !self.editable.contains_key(&origin_item) {
            let checked = super::edits::editable(self.node, self.channel, &origin_item).await?;
            self.editable.insert(origin_item.clone(), checked);
        }
        let sender = self.channel.sender.instance_id.clone();
        let mut edit = edit;
        edit.at = self.node.bounded(&edit.at);
        let (op, refusal) = match self.editable.get_mut(&origin_item) {
            Some(Ok(item)) if item.until_ms.is_some_and(|until| edit.at.ms > until) => (
                None,
                Some((
                    ErrorCode::EditRefused,
                    "an edit made after the sender's right to edit this item ended (its mode dropped below send and receive, or the workspace stopped being two-way)".to_string(),
                )),
            ),
            Some(Ok(item)) => match super::edits::edit_op(&sender, &key, edit) {
                Ok(checked) => {
                    let mut shape = (item.schema.take(), item.geographic);
                    let (op, refusal) = checked.into_op(item.id, |key, values, geometry| {
                        check_row(&mut shape, &key.to_value(), values, geometry).map(|_| ())
                    });
                    item.schema = shape.0;
                    (Some(op), refusal)
                }
                Err(refusal) => (None, Some(refusal)),
            },
            Some(Err(refusal)) => (None, Some(refusal.clone())),
            None => return Ok(None),
        };
        let Some((code, message)) = refusal else {
            return Ok(op);
        };
        if !self
            .errors
            .iter()
            .any(|e| e.origin_item == origin_item && e.code == code.as_str())
        {
            self.errors.push(SyncItemError {
                origin_item,
                title: String::new(),
                code: code.as_str().to_string(),
                message,
            });
        }
        Ok(op)
    }

    pub(super) async fn row_op(
        &mut self,
        origin_item: Arc<str>,
        key: serde_json::Value,
        values: String,
        geometry: Option<String>,
        version: Option<ferry_proto::twoway::RowVersion>,
    ) -> NodeResult<Option<SyncOp>> {
        if self.refused.contains(&*origin_item) {
            return Ok(None);
        }
        let (origin, shape) = self.described(&origin_item)?;
        let origin = origin.clone();
        match check_row(shape, &key, values, geometry) {
            Ok(row) => {
                self.versioned(origin.clone(), row.key.clone(), version);
                Ok(Some(SyncOp::Row { origin, row }))
            }
            Err(message) => {
                // The item's own origin: a relayed item is copied again from there.
                self.quarantine(
                    &origin.instance,
                    &origin.item,
                    "",
                    "schema_mismatch",
                    message,
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Records an item as refused: its error goes in the run, and it is retried next run.
    /// Why a copy held here may not take the schema a description brings yet: it removes or
    /// retypes fields, and no admin here accepted that (`ferry item accept-schema`).
    async fn narrowed_schema(&self, wire: &WireItem) -> NodeResult<Option<String>> {
        let Some(new) = wire.schema.clone() else {
            return Ok(None);
        };
        let store = self.node.store.clone();
        let (origin_instance, origin_item) =
            (wire.origin_instance.clone(), wire.origin_item.clone());
        blocking(move || {
            let Some(id) = store.item_by_origin(&origin_instance, &origin_item)? else {
                return Ok::<_, ferry_store::StoreError>(None);
            };
            let Some(old) = store.item(id)?.schema else {
                return Ok(None);
            };
            let change = ferry_core::schema_change::SchemaChange::between(&old, &new);
            if !change.narrows() || store.schema_accepted(id)? {
                return Ok(None);
            }
            Ok(Some(format!(
                "its origin changed its schema: it {}. The copy keeps its rows as they were until an admin here runs `ferry item accept-schema {id}`; it is then copied whole",
                change.describe()
            )))
        })
        .await
    }

    pub(super) async fn refuse(
        &mut self,
        wire: &WireItem,
        code: &str,
        message: String,
    ) -> NodeResult<()> {
        self.quarantine(
            &wire.origin_instance,
            &wire.origin_item,
            &wire.title,
            code,
            message,
        )
        .await
    }

    pub(super) async fn quarantine(
        &mut self,
        origin_instance: &str,
        origin_item: &str,
        title: &str,
        code: &str,
        message: String,
    ) -> NodeResult<()> {
        if !self.refused.insert(origin_item.to_string()) {
            return Ok(());
        }
        self.received.remove(origin_item);
        self.errors.push(SyncItemError {
            origin_item: origin_item.to_string(),
            title: title.to_string(),
            code: code.to_string(),
            message: message.clone(),
        });
        // An item of an origin the link may not bring is never asked for again over it.
        if code == ErrorCode::OriginNotAllowed.as_str() {
            return Ok(());
        }
        // Written once the batch that refused it verified: nothing unverified is stored.
        self.marks.push(PendingCopy {
            origin_instance: origin_instance.to_string(),
            origin_item: origin_item.to_string(),
            title: title.to_string(),
            error_code: Some(code.to_string()),
            error: Some(message),
        });
        Ok(())
    }

    /// Records the items refused so far as pending (their copy is tried again next run), once
    /// the batch that refused them is verified.
    pub(super) async fn write_marks(&mut self) -> NodeResult<()> {
        if self.marks.is_empty() {
            return Ok(());
        }
        let marks = std::mem::take(&mut self.marks);
        let store = self.node.store.clone();
        let channel = self.channel.channel.clone();
        blocking(move || {
            marks
                .iter()
                .try_for_each(|copy| store.mark_pending(&channel, copy))
        })
        .await
    }

    /// The item a row of a whole copy belongs to: the copied one, whatever a sender streams.
    pub(super) fn copied_row(&self, named: Option<&str>, copying: &Origin) -> NodeResult<Arc<str>> {
        if named.is_some_and(|named| named != copying.item) {
            return Err(NodeError::new(
                ErrorCode::SyncRefused,
                "the sender streamed a row of another item in a whole copy",
            ));
        }
        Ok(copying.item.as_str().into())
    }

    /// An honest sender describes an item before its first row in a stream, so every row is
    /// checked against the schema of its item as this stream describes it.
    pub(super) fn described(&mut self, origin_item: &str) -> NodeResult<&mut (Arc<Origin>, Shape)> {
        self.shapes.get_mut(origin_item).ok_or_else(|| {
            NodeError::new(
                ErrorCode::SyncRefused,
                format!(
                    "the sender streamed a row of item {origin_item} before describing the item"
                ),
            )
        })
    }

    /// One line to an operation, or `None` (refused, or nothing to apply).
    pub(super) async fn op(&mut self, incoming: Incoming) -> NodeResult<Option<SyncOp>> {
        if self.channel.edits_only {
            return self.edit_only_op(incoming).await;
        }
        let record = match incoming {
            Incoming::Row {
                origin_item,
                key,
                values,
                geometry,
                version,
            } => {
                let origin_item = match (origin_item, &self.copying) {
                    (Some(named), None) => Arc::from(named),
                    (named, Some(copying)) => self.copied_row(named.as_deref(), copying)?,
                    (None, None) => {
                        return Err(NodeError::new(
                            ErrorCode::SyncRefused,
                            "the sender streamed a row that names no item",
                        ));
                    }
                };
                return self
                    .row_op(origin_item, key, values, geometry, version)
                    .await;
            }
            Incoming::Record(record) => record,
            Incoming::Verified => return Ok(None),
        };
        match record {
            SyncRecord::Item { item } => self.item(*item).await,
            SyncRecord::Row {
                origin_item,
                key,
                values,
                geometry,
                v,
            } => {
                let values = serde_json::Value::Object(values).to_string();
                let geometry = geometry.map(|g| g.to_string());
                self.row_op(origin_item.into(), key, values, geometry, v)
                    .await
            }
            SyncRecord::RowDeleted {
                origin_item,
                key,
                v,
            } => {
                if self.refused.contains(&origin_item) {
                    return Ok(None);
                }
                let origin = self.described(&origin_item)?.0.clone();
                let key = Key::from_value(&key).map_err(NodeError::from)?;
                self.versioned(origin.clone(), key.clone(), v);
                Ok(Some(SyncOp::RowDeleted { origin, key }))
            }
            SyncRecord::Edit {
                origin_item,
                key,
                edit,
            } => self.edit(origin_item, key, *edit).await,
            SyncRecord::Retract {
                origin_instance,
                origin_item,
                ..
            } => self.retract_op(origin_instance, origin_item),
            SyncRecord::Start { .. }
            | SyncRecord::Commit { .. }
            | SyncRecord::End { .. }
            | SyncRecord::Sig { .. } => Ok(None),
        }
    }
}

pub(super) fn batch<'a>(
    channel: &'a Inbound,
    ops: &'a [SyncOp],
    cursor: &'a SyncCursor,
    owner: &'a str,
) -> SyncBatch<'a> {
    SyncBatch {
        channel: &channel.channel,
        link: &channel.link,
        space: &channel.space,
        owner,
        ops,
        cursor,
        delete_retracted: channel.delete_retracted,
    }
}

/// Who owns received items here: the receiving instance's admin.
pub(super) const OWNER: &str = "admin";

/// How many chunks of a file are fetched at once: enough to keep the link and both disks busy
/// while one chunk is hashed or written, few enough that memory stays flat (1 MiB each).
const CHUNKS_IN_FLIGHT: usize = 4;

/// Fetches one chunk if this instance lacks it, checks it against its hash (from the signed
/// description of its file) and stores it, hashed once; its length when it was fetched.
async fn fetch_chunk(
    node: &Node,
    channel: &Inbound,
    run: &RunTag,
    chunk: &ChunkRef,
) -> NodeResult<Option<usize>> {
    if node.chunks.has(&chunk.hash) {
        return Ok(None);
    }
    let (response, _) = node
        .federation
        .open_stream(
            federation::Callee::of(&channel.sender, Flows::RECEIVES),
            federation::SYNC_CHUNK_PATH,
            &ChunkRequest {
                link: channel.wire.clone(),
                hash: chunk.hash,
                run: Some(run.clone()),
            },
        )
        .await?;
    // No more than the chunk's declared length is read.
    let bytes = federation::read_bounded(response, chunk.len as usize).await?;
    let len = bytes.len();
    let (chunks, hash, expected) = (node.chunks.clone(), chunk.hash, chunk.len);
    blocking(move || {
        if ChunkHash::of(&bytes) != hash || bytes.len() as u64 != expected {
            return Err(NodeError::new(
                ErrorCode::SyncRefused,
                "a file chunk did not match its hash",
            ));
        }
        chunks.put_hashed(hash, &bytes)?;
        Ok(())
    })
    .await?;
    Ok(Some(len))
}
