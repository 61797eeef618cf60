//! The sending side: answers a receiver's pull with the changes in scope after its cursor, as a
//! stream of NDJSON records, and whole items and file chunks on request.
//!
//! Scope is decided per item from its current state ([`ferry_core::sync::judge`]), on every
//! request: data types, markings under the ceiling, and never back to where an item came from.

use super::links::Outbound;
use crate::error::{NodeError, NodeResult};
use crate::federation::{SignedByPeer, json_body};
use crate::instance::Identity;
use crate::node::Node;
use crate::task::blocking;
use bytes::Bytes;
use ferry_core::Key;
use ferry_core::sync::{ItemFacts, Verdict, judge};
use ferry_proto::frames;
use ferry_proto::signing::StreamSignature;
use ferry_proto::{
    COMPACT_ROWS, ChunkRequest, ErrorCode, Item, ItemId, ItemPullRequest, PullRequest, RunTag,
    SyncRecord, WireItem, write_compact_row, write_row_line,
};
use ferry_store::{RawChange, SentPart, Store, StoreError};
use std::cell::Cell;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Feed entries read per page; each page ends with a commit record. Small enough that the
/// receiver's applying one batch overlaps its reading the next for most of a delta
/// (ARCHITECTURE, "Batches are bounded by count and bytes").
const PAGE: usize = 2_000;

/// Items with more live rows than this do not stream inline when all their rows would follow
/// (an item created after the receiver's cursor, or any item in a full pass): the receiver copies
/// them whole by `/sync/item`, one scan in key order, where the stream would read each row through
/// the sequence index. Rows of smaller items are cheaper inline than a request per item.
pub(crate) const INLINE_ROWS: i64 = 10_000;

/// Bytes after which a batch ends early (with a commit), whatever the count: a receiver holds
/// one batch in memory while it checks it.
pub(super) const BATCH_BYTES: usize = 8 << 20;

/// Writes records to the response as NDJSON lines, in chunks of about [`CHUNK`] bytes (a commit
/// or the end goes out at once); `false` once the receiver went away.
struct Lines {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: std::cell::RefCell<Vec<u8>>,
    /// Each chunk goes out as an LZ4 frame.
    compress: bool,
    /// Bytes written since the last commit record: what the receiver holds in memory.
    since_commit: std::cell::Cell<usize>,
    /// Rows written since the last `sig` record.
    rows_since_sig: Cell<usize>,
    /// Every line so far, for the `sig` records.
    signature: std::cell::RefCell<StreamSignature>,
    identity: Arc<Identity>,
    /// What went out, for the send run.
    sent: Sent,
}

/// A whole-item copy is signed at least every this many rows (or [`BATCH_BYTES`]): a receiver
/// applies a copy in parts, each once the signature covering it verified.
const COPY_SIGNED_ROWS: usize = 5_000;

/// Who signs a stream, for which request.
pub(super) struct StreamSigner {
    pub(super) identity: Arc<Identity>,
    pub(super) nonce: [u8; 16],
}

/// What a stream sent so far.
#[derive(Default)]
struct Sent {
    /// Items described, each counted once however often it is described again.
    items: std::cell::RefCell<ferry_core::FastSet<String>>,
    rows: Cell<i64>,
    retracted: Cell<i64>,
    bytes: Cell<i64>,
    /// The receiver stopped reading before the stream ended.
    gone: Cell<bool>,
}

impl Sent {
    fn add_row(&self) {
        self.rows.set(self.rows.get() + 1);
    }

    fn count(&self, record: &SyncRecord) {
        let counter = match record {
            SyncRecord::Item { item } => {
                self.items.borrow_mut().insert(item.origin_item.clone());
                return;
            }
            SyncRecord::Row { .. } | SyncRecord::RowDeleted { .. } => &self.rows,
            SyncRecord::Retract { .. } => &self.retracted,
            _ => return,
        };
        counter.set(counter.get() + 1);
    }
}

/// Bytes gathered before they are handed to the connection.
const CHUNK: usize = 256 * 1024;

impl Lines {
    fn new(
        tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
        compress: bool,
        signer: StreamSigner,
    ) -> Lines {
        Lines {
            tx,
            buffer: std::cell::RefCell::new(Vec::with_capacity(CHUNK + 4096)),
            compress,
            since_commit: std::cell::Cell::new(0),
            rows_since_sig: Cell::new(0),
            signature: std::cell::RefCell::new(StreamSignature::new(signer.nonce)),
            identity: signer.identity,
            sent: Sent::default(),
        }
    }

    /// Appends one line with `write`, counting its bytes and feeding it to the signature;
    /// whether the buffer is full.
    fn append(&self, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut buffer = self.buffer.borrow_mut();
        let before = buffer.len();
        write(&mut buffer);
        self.signature.borrow_mut().line(&buffer[before..]);
        self.since_commit
            .set(self.since_commit.get() + buffer.len() - before);
        buffer.len() >= CHUNK
    }

    fn send(&self, record: &SyncRecord) -> bool {
        self.sent.count(record);
        self.append(|buffer| {
            serde_json::to_writer(&mut *buffer, record).expect("sync records always serialize");
            buffer.push(b'\n');
        });
        let boundary = matches!(record, SyncRecord::Commit { .. } | SyncRecord::End { .. });
        if boundary {
            // Every batch, and the end, is signed before it leaves.
            return self.sign_here();
        }
        self.buffer.borrow().len() < CHUNK || self.flush()
    }

    /// Writes a `sig` record over everything so far, and sends what is buffered.
    fn sign_here(&self) -> bool {
        let sig = self.signature.borrow().sign(self.identity.signing_key());
        self.append(|buffer| {
            serde_json::to_writer(&mut *buffer, &SyncRecord::Sig { sig })
                .expect("sync records always serialize");
            buffer.push(b'\n');
        });
        self.since_commit.set(0);
        self.rows_since_sig.set(0);
        self.flush()
    }

    /// A row line straight from stored text.
    fn send_row(
        &self,
        origin_item: &str,
        key: &Key,
        (values, geometry): (&str, Option<&str>),
        version: Option<&str>,
    ) -> bool {
        self.sent.add_row();
        let full = self.append(|buffer| {
            write_row_line(
                buffer,
                origin_item,
                &key.to_value(),
                values,
                geometry,
                version,
            );
        });
        self.rows_since_sig.set(self.rows_since_sig.get() + 1);
        !full || self.flush()
    }

    /// A compact row line (of a whole-item copy) straight from stored text.
    fn send_compact_row(
        &self,
        key: &Key,
        (values, geometry): (&str, Option<&str>),
        version: Option<&str>,
    ) -> bool {
        self.sent.add_row();
        let full = self
            .append(|buffer| write_compact_row(buffer, &key.to_value(), values, geometry, version));
        self.rows_since_sig.set(self.rows_since_sig.get() + 1);
        !full || self.flush()
    }

    /// In a whole-item copy: a `sig` record once enough rows went out since the last one.
    /// Whether the receiver stopped reading.
    fn is_gone(&self) -> bool {
        self.sent.gone.get()
    }

    fn sign_copy_part(&self) -> bool {
        let due =
            self.rows_since_sig.get() >= COPY_SIGNED_ROWS || self.since_commit.get() >= BATCH_BYTES;
        !due || self.sign_here()
    }

    fn flush(&self) -> bool {
        let chunk = std::mem::replace(
            &mut *self.buffer.borrow_mut(),
            Vec::with_capacity(CHUNK + 4096),
        );
        if chunk.is_empty() {
            return true;
        }
        let chunk = if self.compress {
            frames::encode_frame(&chunk)
        } else {
            chunk
        };
        self.sent
            .bytes
            .set(self.sent.bytes.get() + chunk.len() as i64);
        let delivered = self.tx.blocking_send(Ok(Bytes::from(chunk))).is_ok();
        if !delivered {
            self.sent.gone.set(true);
        }
        delivered
    }
}

/// A sync stream on its way to the receiver: NDJSON records, in LZ4 frames when `compressed`
/// (the door says so in its answer's headers).
#[derive(Debug)]
pub struct SyncStream {
    pub compressed: bool,
    /// Rows go in the compact form (the door names it in the answer's [`ROWS_HEADER`]).
    pub compact_rows: bool,
    pub chunks: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

fn ndjson(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>, compress: bool) -> SyncStream {
    SyncStream {
        compressed: compress,
        compact_rows: false,
        chunks: rx,
    }
}

/// Whether the receiver reads compressed frames.
fn wants_frames(encodings: &[String]) -> bool {
    encodings.iter().any(|e| e == frames::LZ4_FRAMES)
}

/// Runs `produce` on a blocking thread, streaming what it writes (compressed if `compress`),
/// then records what went out in `run`.
fn stream_from(
    compress: bool,
    run: SendRun,
    signer: StreamSigner,
    produce: impl FnOnce(&Lines) -> Result<(), StoreError> + Send + 'static,
) -> SyncStream {
    let (tx, rx) = mpsc::channel(32);
    tokio::task::spawn_blocking(move || {
        let lines = Lines::new(tx, compress, signer);
        let failure = match produce(&lines) {
            // No end record follows: the receiver sees a cut stream and keeps its cursor.
            Err(e) => {
                tracing::warn!(error = %e, "a sync stream stopped early");
                Some(format!("the stream stopped early: {e}"))
            }
            Ok(()) if lines.sent.gone.get() => {
                Some("the receiver stopped reading before the stream ended".into())
            }
            Ok(()) => None,
        };
        let sent = &lines.sent;
        let mut part = run.part;
        if run.counts_items {
            part.items = sent.items.borrow().len() as i64;
        }
        part.rows = sent.rows.get();
        part.retracted = sent.retracted.get();
        part.bytes = sent.bytes.get();
        part.failure = failure;
        record_sent(&run.node, part);
    });
    ndjson(rx, compress)
}

/// The send run a served request adds to: the receiver's run it names, on this link.
pub(super) struct SendRun {
    node: Node,
    /// Named, with nothing counted yet.
    part: SentPart,
    /// Whether the items the stream describes count as sent: a pull's do; a whole-item copy's
    /// item was counted when the pull described it.
    counts_items: bool,
}

impl SendRun {
    /// A run tag that is not a run id and a known trigger is ignored: the request then makes
    /// a send run of its own, its trigger `unknown`.
    fn new(node: &Node, outbound: &Outbound, tag: Option<&RunTag>) -> SendRun {
        let tag = tag.filter(|t| {
            t.id.len() == 32
                && t.id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && super::links::Trigger::parse(&t.trigger).is_some()
        });
        SendRun {
            node: node.clone(),
            part: SentPart {
                link: outbound.link.clone(),
                peer_run: tag.map(|t| t.id.clone()),
                trigger: tag.map_or_else(|| "unknown".into(), |t| t.trigger.clone()),
                items: 0,
                rows: 0,
                retracted: 0,
                bytes: 0,
                failure: None,
            },
            counts_items: true,
        }
    }
}

/// Adds what a served request sent to its send run and the metrics. A failure to record is
/// logged: what was sent has gone either way.
fn record_sent(node: &Node, part: SentPart) {
    node.metrics.sync_sent(&part.link, part.rows, part.bytes);
    if let Err(e) = node.store.record_sent(&part) {
        tracing::warn!(error = %e, link = %part.link, "cannot record a send run");
    }
}

/// The items a stream has judged, with their wire form when they are sent.
struct Judged {
    me: String,
    /// The receiver's cursor: items created after it have all their rows in this stream.
    after: i64,
    /// Judged items: `Some(origin item)` for those whose rows go in this stream (in scope, sent
    /// as a copy, not left to a whole copy), their description already out.
    verdicts: ferry_core::FastMap<ItemId, Option<String>>,
    /// See [`Outbound::echo_link`].
    echo_link: Option<String>,
    /// Items still arriving here (a whole copy of them is not finished): they go only as a
    /// description whose rows the receiver must copy whole, once they are all here.
    arriving: ferry_core::FastSet<ItemId>,
    /// How the rows of each item whose rows go out travel (see [`RowsGo`]).
    rows_go: ferry_core::FastMap<ItemId, RowsGo>,
    /// See [`Outbound::edits_back`].
    edits_back: ferry_proto::ticket::DataTypes,
    /// See [`Outbound::edits_only`].
    edits_only: bool,
}

/// How an item's rows travel in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowsGo {
    /// As rows.
    Rows,
    /// As rows with their version: this instance's own two-way item.
    Versioned,
    /// Only the edits made here, back to their origin: the receiver's own two-way item.
    Edits,
}

impl Judged {
    /// Whether an item new to the receiver goes whole by `/sync/item` rather than row by row: a
    /// large one, or one whose earlier rows this stream already passed by (it was out of scope,
    /// a reference or left to a copy when first judged). An item described again (it changed
    /// meanwhile) keeps streaming rows once it has, so no row falls between the two ways. Items
    /// older than the cursor need no such care: a receiver that lacks one copies it whole anyway.
    fn left_to_copy(&self, item: &Item) -> bool {
        if item.created_seq <= self.after {
            return false;
        }
        match self.verdicts.get(&item.id) {
            Some(Some(_)) => false,
            Some(None) => true,
            None => item.row_count > INLINE_ROWS,
        }
    }

    fn origin(&self, store: &dyn Store, id: ItemId) -> Result<(String, String), StoreError> {
        origin_of(store, &self.me, id)
    }

    /// The retraction of an item gone from the space (none to the instance it came from).
    fn retract(
        &mut self,
        store: &dyn Store,
        scope: &ferry_core::sync::SendScope,
        id: ItemId,
        reason: &str,
    ) -> Result<Option<SyncRecord>, StoreError> {
        self.verdicts.insert(id, None);
        let (origin_instance, origin_item) = self.origin(store, id)?;
        Ok(
            (origin_instance != scope.receiver).then(|| SyncRecord::Retract {
                origin_instance,
                origin_item,
                reason: reason.into(),
            }),
        )
    }

    fn wire(
        &self,
        store: &dyn Store,
        scope: &ferry_core::sync::SendScope,
        item: &Item,
    ) -> Result<WireItem, StoreError> {
        let (origin_instance, origin_item) = self.origin(store, item.id)?;
        let chunks = match item.kind {
            ferry_proto::ItemKind::File => store
                .file_chunks(item.id)?
                .into_iter()
                .map(|c| (c.hash, c.len))
                .collect(),
            _ => Vec::new(),
        };
        // What this instance holds only by reference goes on as one: it has no rows to copy.
        // What it relays goes as it came (a host relays a guest's layers as that guest chose
        // to send them); its own items follow the link's rules.
        let relayed = origin_instance != self.me;
        let reference =
            item.reference || (!relayed && scope.delivery.by_reference(item.kind, item.sync_as));
        Ok(WireItem {
            origin_instance,
            origin_item,
            kind: item.kind.as_str().to_string(),
            title: item.title.clone(),
            description: item.description.clone(),
            tags: item.tags.clone(),
            markings: item.markings.clone(),
            schema: item.schema.clone(),
            geometry_type: item.geometry_type,
            crs: item.crs.clone(),
            file: item.file.clone(),
            chunks,
            size: item.file.as_ref().map_or(0, |f| f.size),
            whole: item.created_seq > self.after,
            copy_whole: !reference && (self.arriving.contains(&item.id) || self.left_to_copy(item)),
            reference,
            row_count: item.row_count,
            sync_as: item.sync_as,
            two_way: item.two_way,
        })
    }

    /// Judges an item as it is now; the record to send for it, if any.
    fn item_record(
        &mut self,
        store: &dyn Store,
        scope: &ferry_core::sync::SendScope,
        item: &Item,
    ) -> Result<Option<SyncRecord>, StoreError> {
        let (origin_instance, origin_item) = self.origin(store, item.id)?;
        let versioned = origin_instance == self.me && item.two_way.is_some() && !item.reference;
        let edits_back = self.edits_go_back(scope, &origin_instance, item);
        if self.edits_only {
            // Nothing is sent or retracted: only the edits made here go back.
            let rows = edits_back.then(|| origin_item.clone());
            if edits_back {
                self.rows_go.insert(item.id, RowsGo::Edits);
            }
            self.verdicts.insert(item.id, rows);
            return Ok(None);
        }
        let verdict = verdict(
            store,
            scope,
            self.echo_link.as_deref(),
            &origin_instance,
            item,
        )?;
        let record = match verdict {
            Verdict::Send => {
                let wire = self.wire(store, scope, item)?;
                let rows_follow = !wire.reference && !wire.copy_whole;
                self.verdicts
                    .insert(item.id, rows_follow.then(|| wire.origin_item.clone()));
                Some(SyncRecord::Item {
                    item: Box::new(wire),
                })
            }
            Verdict::Retract(reason) => {
                self.verdicts.insert(item.id, None);
                Some(SyncRecord::Retract {
                    origin_instance,
                    origin_item,
                    reason: reason.as_str().into(),
                })
            }
            Verdict::Skip if edits_back => {
                self.verdicts.insert(item.id, Some(origin_item));
                self.rows_go.insert(item.id, RowsGo::Edits);
                None
            }
            Verdict::Skip => {
                self.verdicts.insert(item.id, None);
                None
            }
        };
        if versioned {
            self.rows_go.insert(item.id, RowsGo::Versioned);
        }
        Ok(record)
    }

    /// Whether the edits made here to a copy of the receiver's own two-way item go back to it
    /// over this channel.
    fn edits_go_back(
        &self,
        scope: &ferry_core::sync::SendScope,
        origin_instance: &str,
        item: &Item,
    ) -> bool {
        origin_instance == scope.receiver
            && item.two_way.is_some()
            && !item.reference
            && ferry_core::sync::carries(self.edits_back, item.kind)
    }

    /// Reads which items are still arriving here, page by page: an item whose copy began after
    /// it was judged is described again, now to be copied whole, so none of its rows that come
    /// with the copy goes out before the copy is complete. `false` when the receiver is gone.
    fn note_arriving(
        &mut self,
        store: &dyn Store,
        scope: &ferry_core::sync::SendScope,
        lines: &Lines,
    ) -> Result<bool, StoreError> {
        self.arriving = store.arriving_items()?.into_iter().collect();
        let streaming: Vec<ItemId> = self
            .arriving
            .iter()
            .filter(|id| matches!(self.verdicts.get(id), Some(Some(_))))
            .copied()
            .collect();
        for id in streaming {
            self.verdicts.remove(&id);
            self.judge_unseen(store, scope, id, lines)?;
            if lines.is_gone() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Judges an item first met through one of its rows, as it is now.
    fn judge_unseen(
        &mut self,
        store: &dyn Store,
        scope: &ferry_core::sync::SendScope,
        id: ItemId,
        lines: &Lines,
    ) -> Result<(), StoreError> {
        match store.item(id) {
            Ok(item) => {
                if let Some(record) = self.item_record(store, scope, &item)? {
                    // A retraction for an item whose rows changed: it left the scope.
                    lines.send(&record);
                }
                Ok(())
            }
            Err(StoreError::ItemNotFound(_)) => {
                self.verdicts.insert(id, None);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Before a row goes out, its item must be known to be in scope, sent as a copy whose rows
    /// follow in this stream, and described first.
    fn row_allowed(
        &mut self,
        store: &dyn Store,
        scope: &ferry_core::sync::SendScope,
        id: ItemId,
        lines: &Lines,
    ) -> Result<Option<(&str, RowsGo)>, StoreError> {
        if !self.verdicts.contains_key(&id) {
            self.judge_unseen(store, scope, id, lines)?;
        }
        let go = self.rows_go.get(&id).copied().unwrap_or(RowsGo::Rows);
        Ok(self
            .verdicts
            .get(&id)
            .and_then(|o| o.as_deref())
            .map(|o| (o, go)))
    }
}

/// `POST /federation/v1/sync/pull`: the changes in scope after the receiver's cursor.
pub async fn pull(node: &Node, signed: SignedByPeer) -> NodeResult<SyncStream> {
    let request: PullRequest = json_body(&signed.body)?;
    let outbound = super::links::outbound(node, &signed, &request.link).await?;
    let store = node.store.clone();
    let epoch = blocking(move || store.instance()).await?.epoch;
    // Edits alone never make a full pass (it would retract everything), and mark the cursor
    // so that the next pull of a channel that carries items again is one.
    let scope_print = match outbound.edits_only {
        true => "edits-only".to_string(),
        false => outbound.scope.fingerprint(),
    };
    // Another epoch (the data went back in time) or another scope (items may newly match):
    // the receiver's cursor means nothing here, so everything goes again.
    let full = !outbound.edits_only
        && (request.after == 0
            || request.epoch.as_deref() != Some(&epoch)
            || request.scope.as_deref() != Some(&scope_print));
    let after = if full { 0 } else { request.after };
    let store = node.store.clone();
    let me = node.info.instance_id.clone();
    let start = SyncRecord::Start {
        epoch,
        scope: scope_print,
        full,
    };
    let run = SendRun::new(node, &outbound, request.run.as_ref());
    Ok(stream_from(
        wants_frames(&request.encodings),
        run,
        StreamSigner {
            identity: node.identity.clone(),
            nonce: signed.nonce,
        },
        move |lines| {
            if !lines.send(&start) {
                return Ok(());
            }
            send_changes(store.as_ref(), &outbound, me, after, lines)
        },
    ))
}

fn send_changes(
    store: &dyn Store,
    outbound: &Outbound,
    me: String,
    mut after: i64,
    lines: &Lines,
) -> Result<(), StoreError> {
    let scope = &outbound.scope;
    let mut judged = Judged {
        me,
        after,
        verdicts: ferry_core::FastMap::default(),
        echo_link: outbound.echo_link.clone(),
        arriving: ferry_core::FastSet::default(),
        rows_go: ferry_core::FastMap::default(),
        edits_back: outbound.edits_back,
        edits_only: outbound.edits_only,
    };
    loop {
        // Rows of items judged not to go in this stream are skipped in the store, unread.
        let skip: Vec<ItemId> = judged
            .verdicts
            .iter()
            .filter_map(|(id, rows)| rows.is_none().then_some(*id))
            .collect();
        // Of the receiver's own two-way items, only the rows edited here go back.
        let pending_only: Vec<ItemId> = judged
            .rows_go
            .iter()
            .filter_map(|(id, go)| (*go == RowsGo::Edits).then_some(*id))
            .collect();
        let page = store.raw_changes(&outbound.space, after, PAGE, &skip, &pending_only)?;
        // Read after the page: a copy whose rows are in it was marked arriving before them.
        if !judged.note_arriving(store, scope, lines)? {
            return Ok(());
        }
        for (seq, change) in page.changes {
            let record = match change {
                RawChange::Item(item) => judged.item_record(store, scope, &item)?,
                // Edits alone retract nothing.
                RawChange::ItemDeleted(_) | RawChange::ItemLeft(_) if judged.edits_only => None,
                RawChange::ItemDeleted(item_id) => {
                    judged.retract(store, scope, item_id, "deleted")?
                }
                // Moved to another space: out of this link's scope.
                RawChange::ItemLeft(item_id) => {
                    judged.retract(store, scope, item_id, "out_of_scope")?
                }
                RawChange::Row {
                    item_id,
                    key,
                    values,
                    geometry,
                    two_way,
                } => match judged.row_allowed(store, scope, item_id, lines)? {
                    Some((origin_item, RowsGo::Edits)) => {
                        let origin_item = origin_item.to_string();
                        let row = Some((values.as_str(), geometry.as_deref()));
                        let pending = two_way.as_deref();
                        super::edits::edit_record(&judged.me, &origin_item, &key, row, pending)?
                    }
                    Some((origin_item, go)) => {
                        let version = (go == RowsGo::Versioned)
                            .then(|| super::edits::version_text(seq, two_way.as_deref()))
                            .transpose()?;
                        let row = (values.as_str(), geometry.as_deref());
                        if !lines.send_row(origin_item, &key, row, version.as_deref()) {
                            return Ok(());
                        }
                        None
                    }
                    None => None,
                },
                RawChange::RowDeleted {
                    item_id,
                    key,
                    two_way,
                } => match judged.row_allowed(store, scope, item_id, lines)? {
                    Some((origin_item, RowsGo::Edits)) => {
                        let origin_item = origin_item.to_string();
                        let pending = two_way.as_deref();
                        super::edits::edit_record(&judged.me, &origin_item, &key, None, pending)?
                    }
                    Some((origin_item, go)) => Some(SyncRecord::RowDeleted {
                        origin_item: origin_item.to_string(),
                        key: key.to_value(),
                        v: (go == RowsGo::Versioned)
                            .then(|| super::edits::version_of(seq, two_way.as_deref()))
                            .transpose()?,
                    }),
                    None => None,
                },
            };
            if let Some(record) = record
                && !lines.send(&record)
            {
                return Ok(());
            }
            if lines.since_commit.get() >= BATCH_BYTES && !lines.send(&SyncRecord::Commit { seq }) {
                return Ok(());
            }
        }
        after = page.next_after;
        if !lines.send(&SyncRecord::Commit { seq: after }) {
            return Ok(());
        }
        if !page.has_more {
            break;
        }
    }
    lines.send(&SyncRecord::End { seq: after });
    Ok(())
}

/// `POST /federation/v1/sync/item`: one item's whole current content, or its retraction when it
/// is not (or no longer) in scope.
pub async fn pull_item(node: &Node, signed: SignedByPeer) -> NodeResult<SyncStream> {
    let request: ItemPullRequest = json_body(&signed.body)?;
    let outbound = super::links::outbound(node, &signed, &request.link).await?;
    if outbound.edits_only {
        // No item goes over a channel open for edits only: an empty copy would sweep rows.
        return Err(super::links::inactive(
            "the workspace carries nothing from this instance to the caller now",
        ));
    }
    refuse_arriving(node, &outbound, &request).await?;
    let store = node.store.clone();
    let me = node.info.instance_id.clone();
    let compact = request.encodings.iter().any(|e| e == COMPACT_ROWS);
    let run = SendRun {
        counts_items: false,
        ..SendRun::new(node, &outbound, request.run.as_ref())
    };
    let signer = StreamSigner {
        identity: node.identity.clone(),
        nonce: signed.nonce,
    };
    let mut stream = stream_from(
        wants_frames(&request.encodings),
        run,
        signer,
        move |lines| send_item(store.as_ref(), &outbound, me, &request, compact, lines),
    );
    stream.compact_rows = compact;
    Ok(stream)
}

/// A whole copy of an item still arriving here would be part of it: the caller asks again once
/// it is all here.
async fn refuse_arriving(
    node: &Node,
    outbound: &Outbound,
    request: &ItemPullRequest,
) -> NodeResult<()> {
    let (store, outbound_c, me) = (
        node.store.clone(),
        outbound.clone(),
        node.info.instance_id.clone(),
    );
    let (origin_instance, origin_item) =
        (request.origin_instance.clone(), request.origin_item.clone());
    let item = blocking(move || {
        item_in_space(
            store.as_ref(),
            &outbound_c,
            &me,
            &origin_instance,
            &origin_item,
        )
    })
    .await?;
    match item {
        Some(item) => refuse_if_arriving(node, item.id, &request.origin_item).await,
        None => Ok(()),
    }
}

/// Refuses to pass on anything of an item still arriving here (see `Store::arriving_items`),
/// with `item_arriving`; a stale one says why it is stale.
pub(super) async fn refuse_if_arriving(
    node: &Node,
    item: ItemId,
    origin_item: &str,
) -> NodeResult<()> {
    let store = node.store.clone();
    let (arriving, stale) =
        blocking(move || Ok::<_, StoreError>((store.arriving_items()?, store.stale_items()?)))
            .await?;
    if !arriving.contains(&item) {
        return Ok(());
    }
    let here = &node.info.title;
    let why = match stale.into_iter().find(|(id, _)| *id == item) {
        Some((_, refusal)) => format!(
            "item {origin_item} is stale at '{here}': its latest version was refused there ({refusal}), so it does not go on; it does once '{here}' accepts a version"
        ),
        None => format!(
            "item {origin_item} is still arriving at '{here}': its copy there is not complete, so none of it goes on yet; the next run asks again"
        ),
    };
    Err(NodeError::new(ErrorCode::ItemArriving, why))
}

fn send_item(
    store: &dyn Store,
    outbound: &Outbound,
    me: String,
    request: &ItemPullRequest,
    compact: bool,
    lines: &Lines,
) -> Result<(), StoreError> {
    let epoch = store.instance()?.epoch;
    lines.send(&SyncRecord::Start {
        epoch,
        scope: outbound.scope.fingerprint(),
        full: false,
    });
    let item = item_in_space(
        store,
        outbound,
        &me,
        &request.origin_instance,
        &request.origin_item,
    )?;
    let mut judged = Judged {
        me,
        after: i64::MAX,
        verdicts: ferry_core::FastMap::default(),
        echo_link: outbound.echo_link.clone(),
        arriving: ferry_core::FastSet::default(),
        rows_go: ferry_core::FastMap::default(),
        edits_back: outbound.edits_back,
        edits_only: outbound.edits_only,
    };
    let record = match &item {
        Some(item) => judged.item_record(store, &outbound.scope, item)?,
        None => Some(SyncRecord::Retract {
            origin_instance: request.origin_instance.clone(),
            origin_item: request.origin_item.clone(),
            reason: "deleted".into(),
        }),
    };
    let Some(record) = record else {
        lines.send(&SyncRecord::End { seq: 0 });
        return Ok(());
    };
    let sending = matches!(&record, SyncRecord::Item { item } if !item.reference);
    lines.send(&record);
    if let (true, Some(item)) = (sending, item)
        && item.kind != ferry_proto::ItemKind::File
    {
        send_rows(store, &item, &request.origin_item, compact, lines)?;
    }
    lines.send(&SyncRecord::Commit { seq: 0 });
    lines.send(&SyncRecord::End { seq: 0 });
    Ok(())
}

/// The live local item an origin identity names, if it is in the channel's space.
pub(super) fn item_in_space(
    store: &dyn Store,
    outbound: &Outbound,
    me: &str,
    origin_instance: &str,
    origin_item: &str,
) -> Result<Option<Item>, StoreError> {
    let local = if origin_instance == me {
        origin_item.parse::<ItemId>().ok()
    } else {
        store.item_by_origin(origin_instance, origin_item)?
    };
    let space = store.space(&outbound.space)?;
    match local.map(|id| store.item(id)) {
        Some(Ok(item)) if item.space_id == space.id => Ok(Some(item)),
        Some(Err(e)) if !matches!(e, StoreError::ItemNotFound(_)) => Err(e),
        _ => Ok(None),
    }
}

fn send_rows(
    store: &dyn Store,
    item: &Item,
    origin_item: &str,
    compact: bool,
    lines: &Lines,
) -> Result<(), StoreError> {
    let mut gone = false;
    // This instance's own two-way item: each row carries its version.
    let versioned = item.two_way.is_some() && store.item_origin(item.id)?.is_none();
    store.scan_rows(item.id, &mut |row| {
        if !gone {
            let two_way = ferry_store::RowTwoWay {
                twoway: row.two_way.map(str::to_string),
                pending: None,
            };
            let version = versioned
                .then(|| super::edits::version_text(row.seq, Some(&two_way)))
                .transpose()?;
            let content = (row.values, row.geometry);
            gone = !match compact {
                true => lines.send_compact_row(row.key, content, version.as_deref()),
                false => lines.send_row(origin_item, row.key, content, version.as_deref()),
            } || !lines.sign_copy_part();
        }
        Ok(())
    })
}

/// `POST /federation/v1/sync/chunk`: one chunk of a file in the link's space.
pub async fn chunk(node: &Node, signed: SignedByPeer) -> NodeResult<Vec<u8>> {
    let request: ChunkRequest = json_body(&signed.body)?;
    let outbound: Outbound = super::links::outbound(node, &signed, &request.link).await?;
    let (store, chunks) = (node.store.clone(), node.chunks.clone());
    let me = node.info.instance_id.clone();
    let hash = request.hash;
    let run = SendRun::new(node, &outbound, request.run.as_ref());
    let bytes = blocking(move || {
        if !chunk_visible(store.as_ref(), &outbound, &me, &hash)? {
            return Ok::<_, StoreError>(None);
        }
        let bytes = chunks.read(&hash)?;
        let mut part = run.part;
        part.bytes = bytes.len() as i64;
        record_sent(&run.node, part);
        Ok(Some(bytes))
    })
    .await?
    .ok_or_else(|| {
        NodeError::new(
            ErrorCode::ItemNotFound,
            "no file shared with the caller over this link has that chunk",
        )
    })?;
    Ok(bytes)
}

/// Whether a chunk belongs to a file the channel sends now: in its space and scope.
fn chunk_visible(
    store: &dyn Store,
    outbound: &Outbound,
    me: &str,
    hash: &ferry_proto::ChunkHash,
) -> Result<bool, StoreError> {
    let space = store.space(&outbound.space)?;
    for id in store.items_with_chunk(hash)? {
        let item = match store.item(id) {
            Ok(item) => item,
            Err(StoreError::ItemNotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if item.space_id == space.id && in_scope(store, outbound, me, &item)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where a local item comes from: (origin instance, item id there); its own items originate here.
fn origin_of(store: &dyn Store, me: &str, id: ItemId) -> Result<(String, String), StoreError> {
    Ok(store
        .item_origin(id)?
        .unwrap_or_else(|| (me.to_string(), id.to_string())))
}

/// The sender's verdict on an item as it is now: skipped if it arrived over the very link it
/// would leave by (`echo_link`: it came from the receiver), else the planner's judgement.
fn verdict(
    store: &dyn Store,
    scope: &ferry_core::sync::SendScope,
    echo_link: Option<&str>,
    origin_instance: &str,
    item: &Item,
) -> Result<Verdict, StoreError> {
    if let Some(link) = echo_link
        && store.item_links(item.id)?.iter().any(|l| l.link == link)
    {
        return Ok(Verdict::Skip);
    }
    let facts = ItemFacts {
        kind: item.kind,
        markings: &item.markings,
        origin_instance,
        deleted: false,
    };
    Ok(judge(scope, facts))
}

/// Whether the channel sends the item now: the same verdict as a pull's.
pub(super) fn in_scope(
    store: &dyn Store,
    outbound: &Outbound,
    me: &str,
    item: &Item,
) -> Result<bool, StoreError> {
    let (origin, _) = origin_of(store, me, item.id)?;
    let verdict = verdict(
        store,
        &outbound.scope,
        outbound.echo_link.as_deref(),
        &origin,
        item,
    )?;
    Ok(verdict == Verdict::Send)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::SpaceId;

    fn layer(row_count: i64, created_seq: i64) -> Item {
        serde_json::from_value(serde_json::json!({
            "id": ItemId::generate(), "space_id": SpaceId::generate(), "kind": "feature_layer",
            "title": "Layer", "description": "", "tags": [], "markings": [], "owner": "admin",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "version": 1, "seq": created_seq + 1, "created_seq": created_seq,
            "row_count": row_count,
        }))
        .unwrap()
    }

    fn judged(after: i64) -> Judged {
        Judged {
            me: "here".into(),
            after,
            verdicts: ferry_core::FastMap::default(),
            echo_link: None,
            arriving: ferry_core::FastSet::default(),
            rows_go: ferry_core::FastMap::default(),
            edits_back: ferry_proto::ticket::DataTypes::NONE,
            edits_only: false,
        }
    }

    #[test]
    fn large_new_items_are_left_to_a_whole_copy_once_per_stream() {
        let mut judged = judged(10);
        assert!(judged.left_to_copy(&layer(INLINE_ROWS + 1, 11)));
        assert!(
            !judged.left_to_copy(&layer(INLINE_ROWS, 11)),
            "small: inline"
        );
        assert!(
            !judged.left_to_copy(&layer(INLINE_ROWS + 1, 9)),
            "older than the cursor: its changes stream, whatever its size"
        );
        // Described small, then grown during the stream: its rows keep streaming.
        let mut grown = layer(100, 11);
        judged.verdicts.insert(grown.id, Some("o1".into()));
        grown.row_count = INLINE_ROWS * 2;
        assert!(!judged.left_to_copy(&grown));
        // Left to a copy (or out of scope) when first judged, small now: its earlier rows were
        // passed by, so only a whole copy brings them.
        let mut shrunk = layer(INLINE_ROWS * 2, 11);
        judged.verdicts.insert(shrunk.id, None);
        shrunk.row_count = 5;
        assert!(judged.left_to_copy(&shrunk));
    }
}
