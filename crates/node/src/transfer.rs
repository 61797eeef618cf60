//! Streaming import and export. Bodies never sit whole in memory: imports read the body
//! through a blocking bridge into the parser thread; exports write into a bounded channel that
//! feeds the answer's body. A door hands over the body as a [`ByteStream`] and shapes its
//! answer from an [`Export`].

use crate::caller::Caller;
use crate::chunks::remove_unused_chunks;
use crate::error::{NodeError, NodeResult};
use crate::items::{check_metadata, parse_item_id};
use crate::metrics;
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use bytes::Bytes;
use ferry_core::{CoreError, names};
use ferry_formats::{
    ExportFormat, ImportFormat, ImportOptions, start_import, write_export, write_rows,
};
use ferry_proto::{ErrorCode, FileInfo, Item, ItemKind, Schema};
use ferry_store::{ChunkWriter, ItemDraft, NoRows, RowSource, StoreError};
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// A body as a door receives or sends it.
pub type ByteStream = Pin<Box<dyn futures_util::Stream<Item = io::Result<Bytes>> + Send>>;

const EXPORT_BUFFER: usize = 64 * 1024;
/// An import holds the single database writer while it reads its body, so a body that stops
/// arriving for this long is abandoned rather than blocking every other write.
const UPLOAD_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
const READ_BUFFER: usize = 256 * 1024;

/// Counts the bytes read and fails once they pass the limit.
struct LimitedRead<R> {
    inner: R,
    limit: u64,
    read: Arc<AtomicU64>,
    exceeded: Arc<AtomicBool>,
}

impl<R: Read> Read for LimitedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(io::Error::other("the body is larger than the import limit"));
        }
        Ok(n)
    }
}

/// The body as a byte stream that fails when no data arrives for [`UPLOAD_IDLE_TIMEOUT`].
/// One timer serves the whole upload: data arriving only notes the time (a timer per chunk costs
/// more than the rest of the import's network handling).
struct StallGuard<S> {
    inner: S,
    timer: Pin<Box<tokio::time::Sleep>>,
    last_data: tokio::time::Instant,
    stalled: bool,
}

impl<S> StallGuard<S> {
    fn new(body: S) -> StallGuard<S> {
        let now = tokio::time::Instant::now();
        StallGuard {
            inner: body,
            timer: Box::pin(tokio::time::sleep_until(now + UPLOAD_IDLE_TIMEOUT)),
            last_data: now,
            stalled: false,
        }
    }
}

impl<S: futures_util::Stream<Item = io::Result<Bytes>> + Unpin> futures_util::Stream
    for StallGuard<S>
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.stalled {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            this.last_data = tokio::time::Instant::now();
            return Poll::Ready(item);
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let deadline = this.last_data + UPLOAD_IDLE_TIMEOUT;
            if tokio::time::Instant::now() >= deadline {
                this.stalled = true;
                let msg = format!(
                    "the upload stalled: no data for {} s",
                    UPLOAD_IDLE_TIMEOUT.as_secs()
                );
                return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::TimedOut, msg))));
            }
            this.timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

fn too_large(limit: u64) -> NodeError {
    NodeError::new(
        ErrorCode::BodyTooLarge,
        format!(
            "the import is larger than this instance accepts ({limit} bytes); raise max_import_bytes in ferry.toml"
        ),
    )
}

/// What an import will create, decided from the query and the Content-Type.
enum Target {
    Rows(ImportFormat),
    File,
}

fn media_type(content_type: Option<&str>) -> NodeResult<String> {
    content_type
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::UnsupportedContentType,
                "an import needs a Content-Type: application/geo+json, text/csv, application/x-ndjson, or any other type for a file",
            )
        })
}

fn choose_target(kind: Option<ItemKind>, format: Option<&str>, media: &str) -> NodeResult<Target> {
    let explicit = format
        .map(|f| {
            ImportFormat::parse(f).ok_or_else(|| {
                NodeError::new(
                    ErrorCode::InvalidRequest,
                    format!("unknown format '{f}': use geojson, geojsonseq, csv or ndjson"),
                )
            })
        })
        .transpose()?;
    let from_media = match media {
        "application/geo+json" => Some(ImportFormat::GeoJson),
        "application/geo+json-seq" => Some(ImportFormat::GeoJsonSeq),
        "text/csv" => Some(ImportFormat::Csv),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            Some(ImportFormat::Ndjson)
        }
        // A layer asked for by kind, in a type that says nothing more: GeoJSON, whose reader
        // tells a text sequence by its first byte.
        _ if kind == Some(ItemKind::FeatureLayer) => Some(ImportFormat::GeoJson),
        _ => None,
    };
    match (kind, explicit.or(from_media)) {
        (Some(ItemKind::File), _) | (None, None) => Ok(Target::File),
        (None, Some(f)) => Ok(Target::Rows(f)),
        (Some(k), Some(f)) if f.item_kind() == k => Ok(Target::Rows(f)),
        (Some(k), _) => Err(NodeError::new(
            ErrorCode::UnsupportedContentType,
            format!(
                "a {} cannot be imported from '{media}': layers take application/geo+json or application/geo+json-seq, datasets text/csv or application/x-ndjson",
                k.as_str()
            ),
        )),
    }
}

/// What came with an import besides its body.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `space=...&kind=...&format=...&title=...&tag=...&marking=...&primary_key=...&schema=...`
    /// `&crs=...&delimiter=...&file_name=...`
    pub query: Option<String>,
    /// The body's media type (`Content-Type`).
    pub content_type: Option<String>,
    /// The length the sender declared, if any: refused at once past the import limit.
    pub declared_length: Option<u64>,
}

/// Imports a body as a new item: GeoJSON → layer, CSV/NDJSON → dataset, anything else → file.
pub async fn import_item(
    node: &Node,
    caller: &Caller,
    request: ImportRequest,
    body: ByteStream,
) -> NodeResult<Item> {
    caller.require(ferry_proto::Role::Editor)?;
    let q = QueryPairs::parse(request.query.as_deref());
    let space = q
        .get("space")
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvalidRequest,
                "name the target space with 'space='",
            )
        })?
        .to_string();
    let kind = q
        .get("kind")
        .map(|k| {
            ItemKind::parse(k).ok_or_else(|| {
                NodeError::new(
                    ErrorCode::UnknownItemKind,
                    format!("unknown item kind '{k}': use dataset, feature_layer or file"),
                )
            })
        })
        .transpose()?;
    let media = media_type(request.content_type.as_deref())?;
    let target = choose_target(kind, q.get("format"), &media)?;
    let file_name = q.get("file_name").map(str::to_string);
    let draft = ItemDraft {
        space_ref: space.clone(),
        kind: match target {
            Target::Rows(f) => f.item_kind(),
            Target::File => ItemKind::File,
        },
        title: q
            .get("title")
            .or(file_name.as_deref())
            .unwrap_or("Untitled import")
            .to_string(),
        description: q.get("description").unwrap_or_default().to_string(),
        tags: names::normalize_set(q.all("tag")),
        markings: names::normalize_set(q.all("marking")),
        owner: caller.name.clone(),
        crs: None,
        file: None,
    };
    check_metadata(
        Some(&draft.title),
        Some(&draft.description),
        Some(&draft.tags),
        Some(&draft.markings),
    )?;
    let limit = node.limits.max_import_bytes;
    if request.declared_length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    // Fail before reading the body when the space does not exist.
    let store = node.store.clone();
    blocking(move || store.space(&space)).await?;

    let exceeded = Arc::new(AtomicBool::new(false));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let reader = LimitedRead {
        inner: SyncIoBridge::new(StreamReader::new(StallGuard::new(body))),
        limit,
        read: bytes_read.clone(),
        exceeded: exceeded.clone(),
    };
    let kind_label = draft.kind.as_str();
    let outcome = match target {
        Target::Rows(format) => {
            let options = ImportOptions {
                schema: q.get("schema").map(parse_schema).transpose()?,
                primary_key: q.get("primary_key").map(str::to_string),
                crs: q.get("crs").unwrap_or("EPSG:4326").to_string(),
                delimiter: q.get("delimiter").map(delimiter).transpose()?,
            };
            import_rows(node.store.clone(), draft, format, reader, options).await
        }
        Target::File => {
            let media = file_media_type(media, file_name.as_deref());
            import_file(node, draft, reader, media, file_name).await
        }
    };
    node.metrics
        .bytes_imported
        .get_or_create(&metrics::kind(kind_label))
        .inc_by(bytes_read.load(Ordering::Relaxed));
    match outcome {
        Err(_) if exceeded.load(Ordering::Relaxed) => Err(too_large(limit)),
        Err(e) => Err(e),
        Ok(item) => {
            node.metrics
                .rows_imported
                .get_or_create(&metrics::kind(kind_label))
                .inc_by(item.row_count as u64);
            crate::sync::changed(node, item.space_id.to_string());
            Ok(item)
        }
    }
}

fn parse_schema(text: &str) -> NodeResult<Schema> {
    serde_json::from_str(text).map_err(|e| {
        NodeError::new(
            ErrorCode::InvalidSchema,
            format!("the schema is not valid JSON: {e}"),
        )
    })
}

async fn import_rows(
    store: Arc<dyn ferry_store::Store>,
    draft: ItemDraft,
    format: ImportFormat,
    reader: impl Read + Send + 'static,
    options: ImportOptions,
) -> NodeResult<Item> {
    if let Some(schema) = &options.schema {
        ferry_core::edits::check_new_schema(format.item_kind(), schema)?;
    }
    let layer = format == ImportFormat::GeoJson;
    blocking(move || {
        let mut rows = start_import(format, reader, options);
        // The CRS is known once the parser has passed the GeoJSON `crs` member, which precedes
        // the features; the item row is written after the rows, so ask at the end.
        let mut tracked = CrsTracking {
            rows: &mut rows,
            layer,
        };
        let item = store.create_item(&draft, &mut tracked)?;
        Ok::<_, StoreError>(item)
    })
    .await
}

/// Forwards rows and, at the end, fills in the layer's CRS.
struct CrsTracking<'a> {
    rows: &'a mut ferry_formats::ImportStream,
    layer: bool,
}

impl RowSource for CrsTracking<'_> {
    fn next_row(&mut self) -> ferry_core::CoreResult<Option<ferry_store::RowRecord>> {
        self.rows.next_row()
    }
    fn shape(&self) -> ferry_store::ItemShape {
        let mut shape = self.rows.shape();
        if self.layer {
            shape.crs = Some(self.rows.crs());
        }
        shape
    }
}

/// A CSV separator as a query gives it: one character, or `tab`.
fn delimiter(text: &str) -> NodeResult<u8> {
    match text {
        "tab" | "\t" => Ok(b'\t'),
        one if one.len() == 1 && one.is_ascii() => Ok(one.as_bytes()[0]),
        _ => Err(NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "'{text}' is not a CSV separator: give one character such as ; or , or the word tab"
            ),
        )),
    }
}

/// A file's media type: the one the upload names, or, for a generic upload, the one its name's
/// extension stands for (`survey.pdf` is `application/pdf`).
fn file_media_type(given: String, file_name: Option<&str>) -> String {
    if given != "application/octet-stream" {
        return given;
    }
    file_name
        .and_then(|name| mime_guess::from_path(name).first())
        .map_or(given, |guessed| guessed.essence_str().to_string())
}

async fn import_file(
    node: &Node,
    mut draft: ItemDraft,
    mut reader: impl Read + Send + 'static,
    media_type: String,
    file_name: Option<String>,
) -> NodeResult<Item> {
    let (store, chunks) = (node.store.clone(), node.chunks.clone());
    blocking(move || {
        let mut writer = ChunkWriter::new(chunks.clone());
        let mut buf = vec![0u8; READ_BUFFER];
        let copied = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = writer.write(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) => {
                    break Err(CoreError::InvalidRequest(format!(
                        "reading the upload failed: {e}"
                    ))
                    .into());
                }
            }
        };
        if let Err(e) = copied {
            remove_unused_chunks(store.as_ref(), &chunks, &writer.abandon());
            return Err(e);
        }
        let written = writer.finish()?;
        let info = FileInfo {
            size: written.size,
            content_hash: written.content_hash.clone(),
            media_type,
            file_name,
            chunk_count: written.chunks.len() as u64,
        };
        draft.file = Some((info, written.chunks.clone()));
        // The chunks' names on disk before the item that points at them commits.
        let created = chunks
            .sync_dirs(&written.new_chunks)
            .and_then(|()| store.create_item(&draft, &mut NoRows::default()));
        // Committed (or given up): the item's reference, if any, now protects the chunks.
        chunks.release(&written.chunks);
        if created.is_err() {
            remove_unused_chunks(store.as_ref(), &chunks, &written.new_chunks);
        }
        created
    })
    .await
}

/// An `io::Write` that feeds a response body through a bounded channel.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(EXPORT_BUFFER),
        ));
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= EXPORT_BUFFER {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Runs `produce` on a blocking thread and streams what it writes as the response body. A failure
/// part-way aborts the body, so the client sees a cut-off transfer rather than a short file.
fn stream_body(
    node: &Node,
    kind: &'static str,
    produce: impl FnOnce(&mut ChannelWriter) -> Result<(), StoreError> + Send + 'static,
) -> ByteStream {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let metrics = node.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(EXPORT_BUFFER),
            sent: 0,
        };
        let result = produce(&mut out).and_then(|()| out.flush().map_err(StoreError::from));
        metrics
            .bytes_exported
            .get_or_create(&metrics::kind(kind))
            .inc_by(out.sent);
        if let Err(e) = result {
            tracing::warn!(error = %e, "export stopped part-way");
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Rows read from a referenced item's origin, a page at a time. The first page is read before
/// the answer starts, so an origin that cannot be read is a clean error, not a cut export.
async fn reference_export(node: &Node, item: Item, format: ExportFormat) -> NodeResult<ByteStream> {
    const PAGE: usize = 10_000;
    let first = crate::sync::reference::read_rows(node, &item, format!("limit={PAGE}"), Vec::new())
        .await?
        .page;
    let (background, runtime) = (node.clone(), tokio::runtime::Handle::current());
    Ok(stream_body(node, item.kind.as_str(), move |out| {
        let mut page = Some(first);
        write_rows(&item, format, out, &mut |visit| {
            while let Some(current) = page.take() {
                for row in &current.rows {
                    let key = ferry_core::Key::from_value(&row.key)
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                    let values = row.values.to_string();
                    let geometry = row.geometry.as_ref().map(|g| g.to_string());
                    visit(ferry_store::RawRow {
                        key: &key,
                        values: &values,
                        geometry: geometry.as_deref(),
                        seq: row.seq,
                        two_way: None,
                    })?;
                }
                if let Some(after) = &current.next {
                    let query = format!("limit={PAGE}&after={after}");
                    let next = runtime
                        .block_on(crate::sync::reference::read_rows(
                            &background,
                            &item,
                            query,
                            Vec::new(),
                        ))
                        .map_err(|e| StoreError::Backend(e.0.message))?
                        .page;
                    page = Some(next);
                }
            }
            Ok(())
        })
    }))
}

/// A file name for an export: the item's title with only safe characters, and the format's
/// extension.
fn export_name(title: &str, extension: &str) -> String {
    let safe: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.{extension}")
}

/// An item's content on its way out.
pub struct Export {
    pub media_type: String,
    /// The name to save it under.
    pub file_name: String,
    pub body: ByteStream,
    /// For a file: its size, the part sent, and its content hash.
    pub file: Option<FilePart>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("media_type", &self.media_type)
            .field("file_name", &self.file_name)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The part of a file an export sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    pub size: u64,
    /// Bytes in the body.
    pub length: u64,
    /// The range asked for and sent (`start..=end`), if one was.
    pub range: Option<(u64, u64)>,
    pub content_hash: String,
}

/// Exports an item: GeoJSON (layers), CSV or NDJSON (datasets), the original bytes (files; one
/// byte range when `range` names one, as an HTTP `Range` header does). A range outside the
/// file is refused with `range_not_satisfiable`, its details naming the file's size.
pub async fn export_item(
    node: &Node,
    caller: &Caller,
    id: String,
    query: Option<String>,
    range: Option<String>,
) -> NodeResult<Export> {
    caller.require(ferry_proto::Role::Viewer)?;
    let id = parse_item_id(&id)?;
    let q = QueryPairs::parse(query.as_deref());
    let store = node.store.clone();
    let item = blocking(move || store.item(id)).await?;
    if item.kind == ItemKind::File {
        return export_file(node, item, range.as_deref()).await;
    }
    let format = match q.get("format") {
        Some(f) => ExportFormat::parse(f).ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvalidRequest,
                format!("unknown format '{f}': use geojson, csv or ndjson"),
            )
        })?,
        None => ExportFormat::default_for(item.kind).unwrap_or(ExportFormat::Ndjson),
    };
    format.check(item.kind)?;
    let extension = match format {
        ExportFormat::GeoJson => "geojson",
        ExportFormat::Csv => "csv",
        ExportFormat::Ndjson => "ndjson",
    };
    let file_name = export_name(&item.title, extension);
    let body = if item.reference {
        reference_export(node, item, format).await?
    } else {
        let store = node.store.clone();
        stream_body(node, item.kind.as_str(), move |out| {
            write_export(store.as_ref(), &item, format, out)
        })
    };
    Ok(Export {
        media_type: format.media_type().to_string(),
        file_name,
        body,
        file: None,
    })
}

async fn export_file(node: &Node, item: Item, range: Option<&str>) -> NodeResult<Export> {
    let info = item.file.clone().ok_or_else(|| {
        NodeError::internal(format!("file item {} has no content record", item.id))
    })?;
    let store = node.store.clone();
    let id = item.id;
    let chunks = blocking(move || store.file_chunks(id)).await?;
    let range = match range {
        None => None,
        Some(raw) => byte_range(raw, info.size).map_err(|()| {
            NodeError::new(
                ErrorCode::RangeNotSatisfiable,
                format!(
                    "the range '{raw}' is outside the file of {} bytes",
                    info.size
                ),
            )
            .with_details(serde_json::json!({"size": info.size}))
        })?,
    };
    let (start, end) = range.unwrap_or((0, info.size.saturating_sub(1)));
    let length = if info.size == 0 { 0 } else { end - start + 1 };
    let chunk_store = node.chunks.clone();
    let body = stream_body(node, "file", move |out| {
        let mut offset = 0u64;
        for chunk in chunks {
            let (chunk_start, chunk_end) = (offset, offset + chunk.len);
            offset = chunk_end;
            if chunk_end <= start || chunk_start > end || length == 0 {
                continue;
            }
            let bytes = chunk_store.read(&chunk.hash)?;
            let from = start.saturating_sub(chunk_start) as usize;
            let to = ((end + 1).min(chunk_end) - chunk_start) as usize;
            out.write_all(&bytes[from..to])?;
        }
        Ok(())
    });
    Ok(Export {
        media_type: info.media_type.clone(),
        file_name: info.file_name.clone().unwrap_or(item.title.clone()),
        body,
        file: Some(FilePart {
            size: info.size,
            length,
            range,
            content_hash: info.content_hash,
        }),
    })
}

/// The one byte range to send, or `None` for the whole file. A header Ferry cannot use (bad
/// syntax, several ranges, an empty file) is ignored, as RFC 9110 allows; `Err` means 416.
fn byte_range(raw: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Ok(parsed) = http_range_header::parse_range_header(raw) else {
        return Ok(None);
    };
    if size == 0 {
        return Ok(None);
    }
    // A suffix longer than the file means the whole file (RFC 9110 §14.1.2), not a 416.
    if let Some(suffix) = raw.trim().strip_prefix("bytes=-")
        && suffix.parse::<u64>().is_ok_and(|n| n >= size)
    {
        return Ok(Some((0, size - 1)));
    }
    let ranges = parsed.validate(size).map_err(|_| ())?;
    Ok(match ranges.as_slice() {
        [one] => Some((*one.start(), *one.end())),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{StreamExt, TryStreamExt};

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(byte_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(byte_range("bytes=-100", 100), Ok(Some((0, 99))));
        assert_eq!(
            byte_range("bytes=-5000", 100),
            Ok(Some((0, 99))),
            "a suffix longer than the file is the whole file"
        );
        assert_eq!(
            byte_range("bytes=100-", 100),
            Err(()),
            "starts past the end"
        );
        assert_eq!(byte_range("lines=1-2", 100), Ok(None), "ignored");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upload_fails_after_the_idle_timeout() {
        let first = futures_util::stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"abc"))]);
        let mut guard = StallGuard::new(Box::pin(first.chain(futures_util::stream::pending())));
        assert_eq!(guard.try_next().await.unwrap().unwrap(), "abc");
        let started = tokio::time::Instant::now();
        let err = guard.try_next().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= UPLOAD_IDLE_TIMEOUT);
        assert!(
            guard.try_next().await.unwrap().is_none(),
            "a stalled upload stays ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_upload_is_not_cut() {
        let slow = futures_util::stream::unfold(0, |n| async move {
            if n == 5 {
                return None;
            }
            tokio::time::sleep(UPLOAD_IDLE_TIMEOUT / 2).await;
            Some((Ok::<_, io::Error>(Bytes::from_static(b"x")), n + 1))
        });
        let guard = StallGuard::new(Box::pin(slow));
        let chunks: Vec<_> = guard.try_collect().await.unwrap();
        assert_eq!(
            chunks.len(),
            5,
            "five chunks over 2.5 idle periods all arrive"
        );
    }
}
