//! The receiving side: a run pulls every inbound channel of a link, applies each batch with its
//! cursor, copies items that need a whole copy, and records what happened.
//!
//! Everything a sender streams is checked here again ([`ferry_core::sync::accept`], schemas,
//! geometries): a sender that sends what this instance did not agree to import gets the item
//! refused, recorded with its error, and retried at the next run.

use super::links::{Inbound, Link, Trigger};
use crate::error::{NodeError, NodeResult};
use crate::federation::{self, FederationError};
use crate::node::Node;
use crate::task::blocking;
use bytes::Bytes;
use ferry_core::geometry::{RawGeometry, is_geographic};
use ferry_core::policy::Flows;
use ferry_core::schema::SchemaBuilder;
use ferry_core::sync::{accept, accept_delivery};
use ferry_core::{FastMap, FastSet};
use ferry_core::{Key, rows::RowRecord};
use ferry_proto::frames;
use ferry_proto::signing::StreamSignature;
use ferry_proto::{
    COMPACT_ROWS, ChunkHash, ChunkRequest, ErrorCode, ItemKind, ItemPullRequest, PullRequest,
    ROW_LINE_PREFIX, ROWS_HEADER, RawRowRecord, RunTag, SyncItemError, SyncRecord, SyncRun,
    WireItem, read_compact_row,
};
use ferry_store::{
    BatchOutcome, ChunkRef, CopyPart, Origin, PendingCopy, ReceivedItem, SyncBatch, SyncCursor,
    SyncOp,
};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

fn now() -> String {
    ferry_core::time::now()
}

/// Runs one sync of `link`: every inbound channel, then the copies they need. A run of the same
/// link still going makes this one `skipped`.
pub(crate) async fn run_link(node: &Node, link: &Link, trigger: Trigger) -> NodeResult<SyncRun> {
    run_as(node, link, new_run(&link.key(), trigger)).await
}

/// Records a run of `link` as `submitted` and starts it in the background; the run's record
/// (`sync history`) tells how it went.
pub(crate) async fn submit(node: &Node, link: Link, trigger: Trigger) -> NodeResult<SyncRun> {
    let mut run = new_run(&link.key(), trigger);
    run.status = "submitted".into();
    record(node, &run).await?;
    let (node, submitted) = (node.clone(), run.clone());
    tokio::spawn(async move {
        if let Err(e) = run_as(&node, &link, submitted).await {
            tracing::warn!(link = %link.key(), error = %e.0.message, "a submitted sync run failed");
        }
    });
    Ok(run)
}

/// Runs `link` under the record `run` (its id and trigger).
async fn run_as(node: &Node, link: &Link, mut run: SyncRun) -> NodeResult<SyncRun> {
    let trigger = Trigger::parse(&run.trigger).unwrap_or(Trigger::OnDemand);
    // Scheduled and on-demand runs sync both ways: the other side is asked to pull what this
    // side has. A poked run does not poke back.
    if trigger != Trigger::Realtime {
        super::pokes::poke_receivers(node, link).await;
    }
    let lock = node.sync.of(&run.link);
    let _running = match lock.running.try_lock() {
        Ok(running) => running,
        // Asked for by a person or a link change: it waits for the run going and then runs,
        // so what it reports holds when it returns.
        Err(_) if matches!(trigger, Trigger::OnDemand | Trigger::LinkChanged) => {
            lock.running.lock().await
        }
        Err(_) => {
            if trigger == Trigger::Realtime {
                lock.again.store(true, Ordering::SeqCst);
            }
            run.status = "skipped".into();
            run.ended_at = Some(now());
            run.message = Some("a run of this link was still going".into());
            record(node, &run).await?;
            return Ok(run);
        }
    };
    let mut run = one_run(node, link, run).await?;
    // Pokes that came meanwhile announced changes this run may have missed.
    while lock.again.swap(false, Ordering::SeqCst) {
        run = one_run(node, link, new_run(&run.link, Trigger::Realtime)).await?;
    }
    Ok(run)
}

fn new_run(key: &str, trigger: Trigger) -> SyncRun {
    SyncRun {
        id: crate::ids::hex_id(),
        link: key.to_string(),
        trigger: trigger.as_str().into(),
        status: "running".into(),
        started_at: now(),
        ended_at: None,
        items_received: 0,
        rows_received: 0,
        items_retracted: 0,
        bytes_received: 0,
        errors: Vec::new(),
        message: None,
        direction: "receive".into(),
        items_sent: 0,
        rows_sent: 0,
        bytes_sent: 0,
    }
}

/// One run, with the link's lock held.
async fn one_run(node: &Node, link: &Link, mut run: SyncRun) -> NodeResult<SyncRun> {
    run.status = "running".into();
    run.started_at = now();
    record(node, &run).await?;
    let mut tally = Tally {
        run,
        received: HashSet::new(),
        refused: HashSet::new(),
    };
    let mut spaces = Vec::new();
    let outcome = match super::links::inbound(node, link).await {
        Ok((_, channels)) => {
            spaces = channels.iter().map(|c| c.space.clone()).collect();
            spaces.dedup();
            pull_all(node, &channels, &mut tally).await
        }
        Err(e) => Err(e),
    };
    let mut run = tally.run;
    run.items_received = tally.received.len() as i64;
    run.ended_at = Some(now());
    run.status = match (&outcome, run.errors.is_empty()) {
        (Err(_), _) => "failed",
        (Ok(()), true) => "completed",
        (Ok(()), false) => "completed_with_failures",
    }
    .into();
    if let Err(e) = outcome {
        run.message = Some(format!("{} ({})", e.0.message, e.0.code.as_str()));
    }
    node.metrics.sync_run(&run);
    record(node, &run).await?;
    // What arrived here goes on at once to those who receive it from here (a host's other
    // guests, a peer of this instance); an instance it came from finds nothing new and stops.
    if run.items_received > 0 || run.rows_received > 0 || run.items_retracted > 0 {
        for space in spaces {
            super::pokes::changed(node, space);
        }
    }
    Ok(run)
}

async fn record(node: &Node, run: &SyncRun) -> NodeResult<()> {
    let store = node.store.clone();
    let run = run.clone();
    blocking(move || store.record_run(&run)).await
}

/// What a run did so far: its record, the items it brought, and the items it refused (each
/// reported once, and not tried again in the same run).
struct Tally {
    run: SyncRun,
    received: HashSet<String>,
    refused: HashSet<String>,
}

impl Tally {
    /// Names this run in its requests, so the sender counts them as one send run.
    fn tag(&self) -> RunTag {
        RunTag {
            id: self.run.id.clone(),
            trigger: self.run.trigger.clone(),
        }
    }

    fn add(&mut self, outcome: &BatchOutcome) {
        self.run.rows_received += outcome.rows;
        self.run.items_retracted += outcome.retracted;
    }

    fn absorb(&mut self, checker: Checker<'_>, bytes: i64) {
        self.run.bytes_received += bytes + checker.chunk_bytes;
        self.received.extend(checker.received);
        for error in checker.errors {
            if self.refused.insert(error.origin_item.clone()) {
                self.run.errors.push(error);
            }
        }
    }
}

/// Pulls every channel; one that fails does not stop the others, but fails the run.
async fn pull_all(node: &Node, channels: &[Inbound], tally: &mut Tally) -> NodeResult<()> {
    let mut first_failure = None;
    for channel in channels {
        let pulled = pull(node, channel, tally).await;
        let copied = copy_pending(node, channel, tally).await;
        if let Err(e) = pulled.and(copied) {
            tracing::warn!(channel = %channel.channel, error = %e.0.message, "a sync channel failed");
            first_failure.get_or_insert(e);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// The most a pull holds between two commits (and the longest line): well above what an honest
/// sender puts in a batch (`sender::BATCH_BYTES`, plus the line that crossed it).
const MAX_BATCH_BYTES: usize = 8 * super::sender::BATCH_BYTES;

/// The stream encodings this instance asks senders for.
fn encodings(node: &Node) -> Vec<String> {
    if node.compress_sync {
        vec![frames::LZ4_FRAMES.to_string()]
    } else {
        Vec::new()
    }
}

/// What this instance asks for when it copies an item whole: compact rows as well.
fn copy_encodings(node: &Node) -> Vec<String> {
    let mut encodings = encodings(node);
    encodings.push(COMPACT_ROWS.to_string());
    encodings
}

/// Splits a byte stream (plain, or LZ4 frames when the sender says so) into NDJSON records.
struct Records {
    body: futures_util::stream::BoxStream<'static, Result<Bytes, reqwest::Error>>,
    /// Set when the body comes in compressed frames.
    frames: Option<frames::FrameDecoder>,
    /// Whether rows come as compact lines (a whole-item copy whose sender writes them).
    compact_rows: bool,
    buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    read: usize,
    /// Bytes on the wire.
    bytes: i64,
    /// Bytes of the lines read, uncompressed.
    line_bytes: usize,
    /// Checks the sender's `sig` records against every line before them.
    verifier: StreamVerifier,
}

/// What a stream's signatures are checked with: the sender's pinned key, and everything read so
/// far for the request the stream answers.
#[derive(Clone)]
pub(super) struct StreamVerifier {
    pub(super) key: ed25519_dalek::VerifyingKey,
    pub(super) lines: StreamSignature,
}

impl StreamVerifier {
    pub(super) fn new(sender: &ferry_store::PeerIdentity, nonce: [u8; 16]) -> NodeResult<Self> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&sender.public_key)
            .map_err(|_| NodeError::internal("a pinned key is not an Ed25519 key"))?;
        Ok(StreamVerifier {
            key,
            lines: StreamSignature::new(nonce),
        })
    }

    /// Takes one line: a `sig` record is checked against every line before it.
    fn line(&mut self, line: &[u8]) -> NodeResult<Option<Incoming>> {
        let verified = if line.starts_with(SIG_LINE_PREFIX.as_bytes()) {
            let Ok(SyncRecord::Sig { sig }) = serde_json::from_slice(line) else {
                return Err(bad_signature("a sig record that cannot be read"));
            };
            self.lines
                .verify(&self.key, &sig)
                .map_err(|_| bad_signature("a batch whose signature does not verify"))?;
            Some(Incoming::Verified)
        } else {
            None
        };
        self.lines.line(line);
        Ok(verified)
    }
}

/// A file's chunks as its description gives them: each at most a chunk long, together the
/// file's size (what the size limit was judged on).
fn described_chunks(wire: &WireItem, info: &ferry_proto::FileInfo) -> NodeResult<Vec<ChunkRef>> {
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

/// How a `sig` record's line starts, as senders write it.
const SIG_LINE_PREFIX: &str = r#"{"t":"sig""#;

fn bad_signature(what: &str) -> NodeError {
    NodeError::new(
        ErrorCode::StreamSignatureInvalid,
        format!(
            "the sender's stream has {what} with the sender's pinned key: it was changed on the way, or does not come from the sender. Nothing of that batch was applied; what was applied before stays"
        ),
    )
}

impl Records {
    fn new(response: reqwest::Response, verifier: StreamVerifier) -> Records {
        let framed = response
            .headers()
            .get(frames::ENCODING_HEADER)
            .is_some_and(|v| v.as_bytes() == frames::LZ4_FRAMES.as_bytes());
        let compact_rows = response
            .headers()
            .get(ROWS_HEADER)
            .is_some_and(|v| v.as_bytes() == COMPACT_ROWS.as_bytes());
        Records {
            body: response.bytes_stream().boxed(),
            frames: framed.then(frames::FrameDecoder::default),
            compact_rows,
            buffer: Vec::new(),
            read: 0,
            bytes: 0,
            line_bytes: 0,
            verifier,
        }
    }

    /// The next record; `None` when the stream ended (cleanly or not: the caller knows by
    /// whether it saw the end record).
    async fn next(&mut self) -> NodeResult<Option<Incoming>> {
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buffer[self.read..]) {
                let line = &self.buffer[self.read..self.read + at + 1];
                self.read += at + 1;
                self.line_bytes += line.len();
                if let Some(verified) = self.verifier.line(line)? {
                    return Ok(Some(verified));
                }
                return Incoming::read(line, self.compact_rows)
                    .map(Some)
                    .map_err(|e| {
                        NodeError::new(
                            ErrorCode::SyncRefused,
                            format!("the sender streamed a record this instance cannot read: {e}"),
                        )
                    });
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.bytes += chunk.len() as i64;
                    // Drop what was read before taking more.
                    self.buffer.drain(..self.read);
                    self.read = 0;
                    self.take(&chunk)?;
                    if self.buffer.len() > MAX_BATCH_BYTES {
                        return Err(NodeError::new(
                            ErrorCode::SyncRefused,
                            format!(
                                "the sender sent a line of more than {} MiB; this instance does not hold one",
                                MAX_BATCH_BYTES >> 20
                            ),
                        ));
                    }
                }
                Some(Err(e)) => return Err(cut(&e.to_string())),
                None => return Ok(None),
            }
        }
    }

    /// Whether a whole line is buffered: the next record needs no read from the connection.
    fn has_line(&self) -> bool {
        memchr::memchr(b'\n', &self.buffer[self.read..]).is_some()
    }

    fn take(&mut self, chunk: &[u8]) -> NodeResult<()> {
        let Some(frames) = self.frames.as_mut() else {
            self.buffer.extend_from_slice(chunk);
            return Ok(());
        };
        frames.push(chunk);
        while frames.next_into(&mut self.buffer).map_err(|e| {
            NodeError::new(
                ErrorCode::SyncRefused,
                format!("the sender's compressed stream is corrupt: {e}"),
            )
        })? {}
        Ok(())
    }
}

/// Records handed from the reading task at most this many at a time...
const READ_BLOCK: usize = 256;
/// ...and lines of at most about this many bytes (a block holds at least one line).
const READ_BLOCK_BYTES: usize = 1 << 20;
/// Bytes of lines the reading task may have read ahead of the consumer, so that memory stays
/// bounded whatever a sender's lines and frames are like.
const READ_AHEAD_BYTES: u32 = 16 << 20;

/// A block of parsed records, each with the length of its line.
type Block = Vec<(Incoming, usize)>;

/// Records read and parsed on their own task, a block at a time, so that reading and parsing
/// one part of a stream overlaps checking (and applying) the part before.
struct ReadAhead {
    /// Each block with the read-ahead budget it holds.
    blocks: tokio::sync::mpsc::Receiver<NodeResult<(Block, u32)>>,
    budget: Arc<tokio::sync::Semaphore>,
    block: std::vec::IntoIter<(Incoming, usize)>,
    /// Bytes of the lines handed out, uncompressed.
    line_bytes: usize,
    /// Bytes on the wire so far, as the reading task counts them.
    wire_bytes: Arc<AtomicI64>,
}

impl ReadAhead {
    fn spawn(response: reqwest::Response, verifier: StreamVerifier) -> ReadAhead {
        let (tx, blocks) = tokio::sync::mpsc::channel(8);
        let wire_bytes = Arc::new(AtomicI64::new(0));
        let counted = wire_bytes.clone();
        let budget = Arc::new(tokio::sync::Semaphore::new(READ_AHEAD_BYTES as usize));
        let held = budget.clone();
        // Dropping the `ReadAhead` closes the channel: the task stops and the connection closes.
        tokio::spawn(async move {
            let mut records = Records::new(response, verifier);
            loop {
                let (block, end) = read_block(&mut records).await;
                counted.store(records.bytes, Ordering::Relaxed);
                if !block.is_empty() {
                    let bytes: usize = block.iter().map(|(_, len)| len).sum();
                    let permits = bytes.min(READ_AHEAD_BYTES as usize) as u32;
                    // Waits while the consumer is that far behind; given back as it takes a block.
                    let Ok(permit) = held.acquire_many(permits).await else {
                        return;
                    };
                    permit.forget();
                    if tx.send(Ok((block, permits))).await.is_err() {
                        return;
                    }
                }
                match end {
                    None => {}
                    Some(Ok(())) => return,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        ReadAhead {
            blocks,
            budget,
            block: Vec::new().into_iter(),
            line_bytes: 0,
            wire_bytes,
        }
    }

    /// The next record; `None` when the stream ended (cleanly or not: the caller knows by
    /// whether it saw the end record).
    async fn next(&mut self) -> NodeResult<Option<Incoming>> {
        loop {
            if let Some((incoming, len)) = self.block.next() {
                self.line_bytes += len;
                return Ok(Some(incoming));
            }
            match self.blocks.recv().await {
                Some(Ok((block, permits))) => {
                    self.budget.add_permits(permits as usize);
                    self.block = block.into_iter();
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(None),
            }
        }
    }

    fn wire_bytes(&self) -> i64 {
        self.wire_bytes.load(Ordering::Relaxed)
    }
}

/// Reads records until a block is full, or until the next one would wait on the connection
/// (what arrived goes on at once); with how the stream ended, if it did.
async fn read_block(records: &mut Records) -> (Block, Option<NodeResult<()>>) {
    let mut block = Vec::with_capacity(READ_BLOCK);
    let start = records.line_bytes;
    while block.len() < READ_BLOCK && records.line_bytes - start < READ_BLOCK_BYTES {
        if !block.is_empty() && !records.has_line() {
            break;
        }
        let before = records.line_bytes;
        match records.next().await {
            Ok(Some(incoming)) => block.push((incoming, records.line_bytes - before)),
            Ok(None) => return (block, Some(Ok(()))),
            Err(e) => return (block, Some(Err(e))),
        }
    }
    (block, None)
}

/// One streamed line: a row, read without decoding its values, or any other record.
enum Incoming {
    Row {
        /// `None` for a compact row: the item the stream copies.
        origin_item: Option<String>,
        key: serde_json::Value,
        values: String,
        geometry: Option<String>,
    },
    Record(SyncRecord),
    /// A `sig` record that verified: every line before it is the sender's, unchanged.
    Verified,
}

impl Incoming {
    /// Reads a line (with its newline). Records are JSON objects; in a stream of compact rows,
    /// any other line is a row.
    fn read(line: &[u8], compact_rows: bool) -> Result<Incoming, String> {
        let json_error = |e: serde_json::Error| e.to_string();
        if compact_rows && !line.starts_with(b"{") {
            let row = read_compact_row(line.strip_suffix(b"\n").unwrap_or(line))?;
            return Ok(Incoming::Row {
                origin_item: None,
                key: serde_json::from_slice(row.key).map_err(json_error)?,
                values: row.values.to_string(),
                geometry: row.geometry.map(str::to_string),
            });
        }
        if line.starts_with(ROW_LINE_PREFIX.as_bytes()) {
            let row: RawRowRecord<'_> = serde_json::from_slice(line).map_err(json_error)?;
            return Ok(Incoming::Row {
                origin_item: Some(row.origin_item.into_owned()),
                key: row.key,
                values: row.values.get().to_string(),
                geometry: row.geometry.map(|g| g.get().to_string()),
            });
        }
        serde_json::from_slice(line)
            .map(Incoming::Record)
            .map_err(json_error)
    }
}

fn cut(why: &str) -> NodeError {
    NodeError::new(
        ErrorCode::SyncStreamCut,
        format!(
            "the sender's stream ended before its end record ({why}); what arrived before is kept and the next run goes on from there"
        ),
    )
}

/// What a row of an item is checked against: the item's schema, if it has one, and whether its
/// geometries are lon/lat.
type Shape = (Option<SchemaBuilder>, bool);

/// Checks a row against its item's schema and geometry rules; the values stay as text.
fn check_row(
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
struct Checker<'a> {
    node: &'a Node,
    channel: &'a Inbound,
    /// Items this stream described, by the item id its rows name: the full origin (instance and
    /// item) the rows belong to, and their schema check (and whether geometries are lon/lat).
    shapes: FastMap<String, (Arc<Origin>, Shape)>,
    refused: FastSet<String>,
    errors: Vec<SyncItemError>,
    /// Items that came through the checks.
    received: HashSet<String>,
    /// File bytes fetched (only chunks this instance lacked).
    chunk_bytes: i64,
    /// The item a whole-item copy stream is of: its compact rows do not name it.
    copying: Option<Arc<Origin>>,
    /// The run, named in chunk requests.
    run: RunTag,
    /// Items refused, to be recorded as pending once their batch verified.
    marks: Vec<PendingCopy>,
}

impl Checker<'_> {
    async fn item(&mut self, wire: WireItem) -> NodeResult<Option<SyncOp>> {
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
        }))))
    }

    /// A retraction, if this link may bring the item at all (and, in a whole copy, if it is the
    /// copied item): a link never retracts what another brought.
    fn retract_op(
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
    fn check_identity(&self, wire: &WireItem) -> NodeResult<()> {
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
    async fn fetch_files(&mut self, ops: &mut Vec<SyncOp>) -> NodeResult<Vec<ChunkRef>> {
        let mut fetched = Vec::new();
        let mut refused = Vec::new();
        for (at, op) in ops.iter().enumerate() {
            let SyncOp::Item(item) = op else { continue };
            let Some((_, chunks)) = &item.file else {
                continue;
            };
            for chunk in chunks {
                match self.fetch_chunk(chunk).await {
                    Ok(true) => fetched.push(chunk.clone()),
                    Ok(false) => {}
                    Err(e) => {
                        refused.push((at, e));
                        break;
                    }
                }
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

    /// Fetches one chunk if this instance lacks it; whether it did. The chunk is checked
    /// against its hash, from the signed description of its file.
    async fn fetch_chunk(&mut self, chunk: &ChunkRef) -> NodeResult<bool> {
        if self.node.chunks.has(&chunk.hash) {
            return Ok(false);
        }
        let (response, _) = self
            .node
            .federation
            .open_stream(
                federation::Callee::of(&self.channel.sender, Flows::RECEIVES),
                federation::SYNC_CHUNK_PATH,
                &ChunkRequest {
                    link: self.channel.wire.clone(),
                    hash: chunk.hash,
                    run: Some(self.run.clone()),
                },
            )
            .await?;
        // No more than the chunk's declared length is read.
        let bytes = federation::read_bounded(response, chunk.len as usize).await?;
        self.chunk_bytes += bytes.len() as i64;
        if ChunkHash::of(&bytes) != chunk.hash || bytes.len() as u64 != chunk.len {
            return Err(NodeError::new(
                ErrorCode::SyncRefused,
                "a file chunk did not match its hash",
            ));
        }
        let chunks = self.node.chunks.clone();
        blocking(move || chunks.put(&bytes)).await?;
        Ok(true)
    }

    async fn row_op(
        &mut self,
        origin_item: Arc<str>,
        key: serde_json::Value,
        values: String,
        geometry: Option<String>,
    ) -> NodeResult<Option<SyncOp>> {
        if self.refused.contains(&*origin_item) {
            return Ok(None);
        }
        let (origin, shape) = self.described(&origin_item)?;
        let origin = origin.clone();
        match check_row(shape, &key, values, geometry) {
            Ok(row) => Ok(Some(SyncOp::Row { origin, row })),
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
    async fn refuse(&mut self, wire: &WireItem, code: &str, message: String) -> NodeResult<()> {
        self.quarantine(
            &wire.origin_instance,
            &wire.origin_item,
            &wire.title,
            code,
            message,
        )
        .await
    }

    async fn quarantine(
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
    async fn write_marks(&mut self) -> NodeResult<()> {
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
    fn copied_row(&self, named: Option<&str>, copying: &Origin) -> NodeResult<Arc<str>> {
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
    fn described(&mut self, origin_item: &str) -> NodeResult<&mut (Arc<Origin>, Shape)> {
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
    async fn op(&mut self, incoming: Incoming) -> NodeResult<Option<SyncOp>> {
        let record = match incoming {
            Incoming::Row {
                origin_item,
                key,
                values,
                geometry,
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
                return self.row_op(origin_item, key, values, geometry).await;
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
            } => {
                let values = serde_json::Value::Object(values).to_string();
                let geometry = geometry.map(|g| g.to_string());
                self.row_op(origin_item.into(), key, values, geometry).await
            }
            SyncRecord::RowDeleted { origin_item, key } => {
                if self.refused.contains(&origin_item) {
                    return Ok(None);
                }
                let origin = self.described(&origin_item)?.0.clone();
                let key = Key::from_value(&key).map_err(NodeError::from)?;
                Ok(Some(SyncOp::RowDeleted { origin, key }))
            }
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

fn batch<'a>(
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
const OWNER: &str = "admin";

/// Pulls one channel from its cursor to the sender's end record.
async fn pull(node: &Node, channel: &Inbound, tally: &mut Tally) -> NodeResult<()> {
    let store = node.store.clone();
    let key = channel.channel.clone();
    let known = blocking(move || store.sync_cursor(&key)).await?;
    let request = PullRequest {
        link: channel.wire.clone(),
        epoch: known.as_ref().map(|c| c.epoch.clone()),
        scope: known.as_ref().map(|c| c.scope.clone()),
        after: known.as_ref().map_or(0, |c| c.seq),
        encodings: encodings(node),
        run: Some(tally.tag()),
    };
    let (response, nonce) = node
        .federation
        .open_stream(
            federation::Callee::of(&channel.sender, Flows::RECEIVES),
            federation::SYNC_PULL_PATH,
            &request,
        )
        .await
        .map_err(refusal)?;
    let mut records = ReadAhead::spawn(response, StreamVerifier::new(&channel.sender, nonce)?);
    let Some(Incoming::Record(SyncRecord::Start { epoch, scope, full })) = records.next().await?
    else {
        return Err(cut("no start record"));
    };
    let mut cursor = SyncCursor {
        epoch,
        scope,
        seq: request.after,
        resync: known.as_ref().is_some_and(|c| c.resync),
    };
    // A full pass begins with the first batch that verifies, not on the word of an unsigned
    // start record.
    let mut begin_full_pass = full;
    if full {
        cursor.seq = 0;
        cursor.resync = true;
    }
    let mut checker = Checker {
        node,
        channel,
        shapes: FastMap::default(),
        refused: FastSet::default(),
        errors: Vec::new(),
        received: HashSet::new(),
        chunk_bytes: 0,
        copying: None,
        run: tally.tag(),
        marks: Vec::new(),
    };
    let mut applier = Applier::default();
    let mut ops = Vec::new();
    let mut batch_start = records.line_bytes;
    // A commit or end read, waiting for the signature that covers its batch.
    let mut unsigned: Option<SyncRecord> = None;
    let result = loop {
        let incoming = match records.next().await {
            Ok(Some(incoming)) => incoming,
            Ok(None) => break Err(cut("the connection closed")),
            Err(e) => break Err(e),
        };
        if unsigned.is_some() && !matches!(incoming, Incoming::Verified) {
            break Err(bad_signature("a batch that no signature follows, checked"));
        }
        match incoming {
            Incoming::Record(boundary @ (SyncRecord::Commit { .. } | SyncRecord::End { .. })) => {
                unsigned = Some(boundary);
            }
            Incoming::Verified => {
                let Some(boundary) = unsigned.take() else {
                    continue;
                };
                let fetched = match checker.fetch_files(&mut ops).await {
                    Ok(fetched) => fetched,
                    Err(e) => break Err(e),
                };
                if let Err(e) = checker.write_marks().await {
                    break Err(e);
                }
                if std::mem::take(&mut begin_full_pass) {
                    let (store, c, key, link) = (
                        node.store.clone(),
                        cursor.clone(),
                        channel.channel.clone(),
                        channel.link.clone(),
                    );
                    if let Err(e) = blocking(move || store.begin_resync(&key, &link, &c)).await {
                        break Err(e);
                    }
                }
                match boundary {
                    SyncRecord::Commit { seq } => {
                        cursor.seq = seq;
                        batch_start = records.line_bytes;
                        // Applied while the next batch is read and checked.
                        let batch = apply(node, channel, std::mem::take(&mut ops), &cursor);
                        let batch = releasing(node, fetched, batch);
                        if let Err(e) = applier.start(tally, batch).await {
                            break Err(e);
                        }
                    }
                    SyncRecord::End { seq } => {
                        cursor.seq = seq;
                        let last = releasing(node, fetched, apply(node, channel, ops, &cursor));
                        break finish_pull(node, channel, &mut applier, tally, last, cursor).await;
                    }
                    _ => unreachable!("only boundaries wait for a signature"),
                }
            }
            other => match checker.op(other).await {
                Ok(Some(op)) => {
                    ops.push(op);
                    if records.line_bytes - batch_start > MAX_BATCH_BYTES {
                        break Err(NodeError::new(
                            ErrorCode::SyncRefused,
                            format!(
                                "the sender sent more than {} MiB without a commit; this instance does not hold more in one batch",
                                MAX_BATCH_BYTES >> 20
                            ),
                        ));
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            },
        }
    };
    // Whatever was committed stays: a failure leaves the cursor at the last applied batch.
    let waited = applier.wait(tally).await;
    tally.absorb(checker, records.wire_bytes());
    result.and(waited)
}

/// The last batch of a pull, then the end of a full pass (its sweep).
async fn finish_pull(
    node: &Node,
    channel: &Inbound,
    applier: &mut Applier,
    tally: &mut Tally,
    last: impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static,
    mut cursor: SyncCursor,
) -> NodeResult<()> {
    applier.start(tally, last).await?;
    applier.wait(tally).await?;
    let (store, key) = (node.store.clone(), channel.channel.clone());
    blocking(move || store.end_stream(&key)).await?;
    if cursor.resync {
        cursor.resync = false;
        let outcome = finish(node, channel, &cursor).await?;
        tally.add(&outcome);
    }
    Ok(())
}

/// Applies batches (or parts of a whole copy) one after the other, each while the next one is
/// read.
#[derive(Default)]
struct Applier {
    running: Option<tokio::task::JoinHandle<NodeResult<BatchOutcome>>>,
}

impl Applier {
    /// Waits for the batch in flight, then starts this one.
    async fn start(
        &mut self,
        tally: &mut Tally,
        batch: impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static,
    ) -> NodeResult<()> {
        self.wait(tally).await?;
        self.running = Some(tokio::spawn(batch));
        Ok(())
    }

    async fn wait(&mut self, tally: &mut Tally) -> NodeResult<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let outcome = running
            .await
            .map_err(|e| NodeError::internal(format!("a sync batch task failed: {e}")))??;
        tally.add(&outcome);
        Ok(())
    }
}

/// A refusal by the sender, with its own code: the admin needs to know why.
fn refusal(e: FederationError) -> NodeError {
    match e {
        FederationError::Refused { error, .. } => {
            NodeError::new(error.code, format!("the sender refused: {}", error.message))
        }
        other => other.into(),
    }
}

/// Runs one store write of received data on a blocking thread, then removes the file chunks it
/// left unused.
fn store_write(
    node: &Node,
    write: impl FnOnce(&dyn ferry_store::Store) -> ferry_store::StoreResult<BatchOutcome>
    + Send
    + 'static,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let node = node.clone();
    async move {
        let store = node.store.clone();
        let outcome = blocking(move || write(store.as_ref())).await?;
        crate::chunks::remove_chunks(&node, outcome.freed_chunks.clone()).await;
        Ok(outcome)
    }
}

/// `write`, then the release of the chunks its files fetched: until a batch is applied,
/// clean-up leaves them alone.
fn releasing(
    node: &Node,
    fetched: Vec<ChunkRef>,
    write: impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let chunks = node.chunks.clone();
    async move {
        let outcome = write.await;
        chunks.release(&fetched);
        outcome
    }
}

/// Applies one batch with its cursor.
fn apply(
    node: &Node,
    channel: &Inbound,
    ops: Vec<SyncOp>,
    cursor: &SyncCursor,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let (channel, cursor) = (channel.clone(), cursor.clone());
    store_write(node, move |store| {
        store.apply_sync_batch(&batch(&channel, &ops, &cursor, OWNER))
    })
}

async fn finish(node: &Node, channel: &Inbound, cursor: &SyncCursor) -> NodeResult<BatchOutcome> {
    let (channel, cursor) = (channel.clone(), cursor.clone());
    store_write(node, move |store| {
        store.finish_resync(&batch(&channel, &[], &cursor, OWNER))
    })
    .await
}

/// Copies whole every item the channel marked: new ones whose older rows never came, and refused
/// ones, which are tried again.
async fn copy_pending(node: &Node, channel: &Inbound, tally: &mut Tally) -> NodeResult<()> {
    let store = node.store.clone();
    let key = channel.channel.clone();
    let pending = blocking(move || store.pending_copies(&key)).await?;
    for copy in pending {
        // Refused in this very run: the next run tries again. One of an origin the link may
        // not bring (queued before links were held to their origins) is never asked for.
        if !tally.refused.contains(&copy.origin_item)
            && channel.agreement.origins.allows(&copy.origin_instance)
        {
            copy_item(node, channel, &copy, tally).await?;
        }
    }
    Ok(())
}

async fn copy_item(
    node: &Node,
    channel: &Inbound,
    copy: &PendingCopy,
    tally: &mut Tally,
) -> NodeResult<()> {
    let opened = node
        .federation
        .open_stream(
            federation::Callee::of(&channel.sender, Flows::RECEIVES),
            federation::SYNC_ITEM_PATH,
            &ItemPullRequest {
                link: channel.wire.clone(),
                origin_instance: copy.origin_instance.clone(),
                origin_item: copy.origin_item.clone(),
                encodings: copy_encodings(node),
                run: Some(tally.tag()),
            },
        )
        .await;
    let (response, nonce) = match opened {
        // Still arriving at the sender (a host relaying it): it stays pending here, and a
        // later run copies it once it is all there. The run says so.
        Err(FederationError::Refused { error, .. }) if error.code == ErrorCode::ItemArriving => {
            if tally.refused.insert(copy.origin_item.clone()) {
                tally.run.errors.push(SyncItemError {
                    origin_item: copy.origin_item.clone(),
                    title: copy.title.clone(),
                    code: error.code.as_str().into(),
                    message: error.message,
                });
            }
            return Ok(());
        }
        opened => opened.map_err(refusal)?,
    };
    let mut records = ReadAhead::spawn(response, StreamVerifier::new(&channel.sender, nonce)?);
    let mut checker = Checker {
        node,
        channel,
        shapes: FastMap::default(),
        refused: FastSet::default(),
        errors: Vec::new(),
        received: HashSet::new(),
        chunk_bytes: 0,
        copying: Some(Arc::new(Origin::new(
            &copy.origin_instance,
            &copy.origin_item,
        ))),
        run: tally.tag(),
        marks: Vec::new(),
    };
    let mut ops = Vec::with_capacity(COPY_PART_OPS);
    let part = Arc::new(Mutex::new(CopyPart::default()));
    let mut applier = Applier::default();
    let mut part_bytes = records.line_bytes;
    let mut ended = false;
    let read = loop {
        let record = match records.next().await {
            Ok(Some(record)) => record,
            Ok(None) => break Err(cut("the connection closed")),
            Err(e) => break Err(e),
        };
        match record {
            Incoming::Record(SyncRecord::End { .. }) => ended = true,
            // The end's signature covers the whole copy: its last part goes below.
            Incoming::Verified if ended => break Ok(()),
            // A large item is applied in parts, each once the signature covering it verified,
            // so memory holds one part, not the whole item; each part is applied while the next
            // one is read.
            Incoming::Verified => {
                let fetched = match checker.fetch_files(&mut ops).await {
                    Ok(fetched) => fetched,
                    Err(e) => break Err(e),
                };
                let part_ops = std::mem::replace(&mut ops, Vec::with_capacity(COPY_PART_OPS));
                let next = apply_copy_part(node, channel, copy, part_ops, &part, false);
                if let Err(e) = applier.start(tally, releasing(node, fetched, next)).await {
                    break Err(e);
                }
                part_bytes = records.line_bytes;
            }
            _ if ended => break Err(bad_signature("an end that no signature follows, checked")),
            record => match checker.op(record).await {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => {}
                Err(e) => break Err(e),
            },
        }
        if !checker.errors.is_empty() {
            // Refused: it stays pending, and the next run copies it again.
            break Ok(());
        }
        if records.line_bytes - part_bytes > MAX_BATCH_BYTES {
            break Err(NodeError::new(
                ErrorCode::SyncRefused,
                format!(
                    "the sender sent more than {} MiB of a copy without signing it; this instance does not hold more unchecked",
                    MAX_BATCH_BYTES >> 20
                ),
            ));
        }
    };
    let refused = !checker.errors.is_empty();
    tally.absorb(checker, records.wire_bytes());
    // Parts already applied stay: the next copy of the item sweeps what it does not bring again.
    applier.wait(tally).await?;
    read?;
    if refused {
        return Ok(());
    }
    let last = apply_copy_part(node, channel, copy, ops, &part, true);
    applier.start(tally, last).await?;
    applier.wait(tally).await
}

/// Operations per part of a whole-item copy.
const COPY_PART_OPS: usize = 5_000;

/// Applies one part of a whole copy; parts run one after the other and share where the copy
/// stands.
fn apply_copy_part(
    node: &Node,
    channel: &Inbound,
    copy: &PendingCopy,
    ops: Vec<SyncOp>,
    part: &Arc<Mutex<CopyPart>>,
    last: bool,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let cursor = SyncCursor {
        epoch: String::new(),
        scope: String::new(),
        seq: 0,
        resync: false,
    };
    let (channel, copy, part) = (channel.clone(), copy.clone(), part.clone());
    store_write(node, move |store| {
        // Parts run one at a time (the applier waits for each), so the lock is never contended.
        let mut part = part.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        part.last = last;
        store.apply_item_copy(
            &batch(&channel, &ops, &cursor, OWNER),
            &copy.origin_instance,
            &copy.origin_item,
            &mut part,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows come as `row` records from any sender, and as compact lines only from one that said
    /// it writes them; a record is a record either way.
    #[test]
    fn lines_read_as_what_the_stream_holds() {
        let mut record = Vec::new();
        ferry_proto::write_row_line(&mut record, "o1", &serde_json::json!(7), r#"{"a":1}"#, None);
        for compact_rows in [false, true] {
            let Ok(Incoming::Row {
                origin_item, key, ..
            }) = Incoming::read(&record, compact_rows)
            else {
                panic!("a row record is a row");
            };
            assert_eq!(
                (origin_item.as_deref(), key),
                (Some("o1"), serde_json::json!(7))
            );
        }
        let mut compact = Vec::new();
        ferry_proto::write_compact_row(&mut compact, &serde_json::json!(8), r#"{"a":1}"#, None);
        let Ok(Incoming::Row {
            origin_item,
            key,
            values,
            geometry,
        }) = Incoming::read(&compact, true)
        else {
            panic!("a compact row is a row");
        };
        assert_eq!(
            (origin_item, key, values.as_str(), geometry),
            (None, serde_json::json!(8), r#"{"a":1}"#, None)
        );
        assert!(
            Incoming::read(&compact, false).is_err(),
            "not from a sender that did not say so"
        );
        let end = br#"{"t":"end","seq":3}
"#;
        assert!(matches!(
            Incoming::read(end, true),
            Ok(Incoming::Record(SyncRecord::End { .. }))
        ));
    }

    /// Several batches are in flight: while the consumer still holds the first record, the
    /// reading task takes the stream on, batch after batch, up to its byte budget.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_read_ahead_of_the_one_being_applied() {
        let mut body = Vec::new();
        let mut record = |r: &SyncRecord| {
            serde_json::to_writer(&mut body, r).unwrap();
            body.push(b'\n');
        };
        record(&SyncRecord::Start {
            epoch: "e".into(),
            scope: "s".into(),
            full: false,
        });
        let batches = 30;
        for seq in 1..=batches {
            for key in 0..20 {
                let mut line = Vec::new();
                ferry_proto::write_row_line(&mut line, "o1", &serde_json::json!(key), "{}", None);
                body.extend_from_slice(&line);
            }
            serde_json::to_writer(&mut body, &SyncRecord::Commit { seq }).unwrap();
            body.push(b'\n');
        }
        serde_json::to_writer(&mut body, &SyncRecord::End { seq: batches }).unwrap();
        body.push(b'\n');
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let body = signed(&body, &key, [9; 16]);
        let total = body.len() as i64;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/", axum::routing::get(move || async move { body }));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let verifier = StreamVerifier {
            key: key.verifying_key(),
            lines: StreamSignature::new([9; 16]),
        };
        crate::tls::install_default_provider();
        let mut records = ReadAhead::spawn(reqwest::get(&url).await.unwrap(), verifier);
        let first = records.next().await.unwrap();
        assert!(matches!(
            first,
            Some(Incoming::Record(SyncRecord::Start { .. }))
        ));
        for _ in 0..500 {
            if records.wire_bytes() == total {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            records.wire_bytes(),
            total,
            "every batch read ahead of the first"
        );
        let (mut commits, mut verified) = (0, 0);
        while let Some(incoming) = records.next().await.unwrap() {
            match incoming {
                Incoming::Record(SyncRecord::Commit { .. }) => commits += 1,
                Incoming::Verified => verified += 1,
                _ => {}
            }
        }
        assert_eq!((commits, verified), (batches, batches + 1));
    }

    /// `stream` with a `sig` record after every commit and end, as a sender writes it.
    fn signed(stream: &[u8], key: &ed25519_dalek::SigningKey, nonce: [u8; 16]) -> Vec<u8> {
        let mut signature = StreamSignature::new(nonce);
        let mut out = Vec::new();
        for line in stream.split_inclusive(|b| *b == b'\n') {
            signature.line(line);
            out.extend_from_slice(line);
            if line.starts_with(br#"{"t":"commit""#) || line.starts_with(br#"{"t":"end""#) {
                let mut sig = serde_json::to_vec(&SyncRecord::Sig {
                    sig: signature.sign(key),
                })
                .unwrap();
                sig.push(b'\n');
                signature.line(&sig);
                out.extend_from_slice(&sig);
            }
        }
        out
    }

    /// A sig record checks every line before it; a changed line, or a sig from another key,
    /// is refused with its own code.
    #[test]
    fn sig_records_check_every_line_before_them() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let stream = b"{\"t\":\"start\",\"epoch\":\"e\",\"scope\":\"s\",\"full\":false}\n{\"t\":\"commit\",\"seq\":1}\n";
        let body = signed(stream, &key, [1; 16]);
        let read = |body: &[u8], key: &ed25519_dalek::SigningKey| {
            let mut verifier = StreamVerifier {
                key: key.verifying_key(),
                lines: StreamSignature::new([1; 16]),
            };
            body.split_inclusive(|b| *b == b'\n')
                .map(|line| verifier.line(line).map(|v| v.is_some()))
                .collect::<NodeResult<Vec<bool>>>()
        };
        assert_eq!(read(&body, &key).unwrap(), vec![false, false, true]);
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("\"seq\":1", "\"seq\":2");
        let refused = read(tampered.as_bytes(), &key).unwrap_err();
        assert_eq!(refused.0.code, ErrorCode::StreamSignatureInvalid);
        let other = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        assert!(read(&body, &other).is_err());
    }
}
