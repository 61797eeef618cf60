//! Sync on the wire: what a receiver asks for, the records a sender streams back, and the sync
//! history the admin API shows.
//!
//! A pull answers with NDJSON, one [`SyncRecord`] per line. Records between two `commit` records
//! form a batch the receiver applies in one transaction together with the commit's cursor; the
//! stream ends with an `end` record, so a cut-off stream is told apart from a finished one.

use crate::model::{FileInfo, GeometryType, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One side's name for a link both sides share: a peer connection (by the request id both sides
/// keep) or a collaboration workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireLink {
    Peer {
        request_id: String,
    },
    Collab {
        collaboration_id: String,
        workspace_id: String,
    },
}

/// "Changes after this cursor, please."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PullRequest {
    pub link: WireLink,
    /// The sender's epoch the cursor belongs to; `None` on a first pull.
    #[serde(default)]
    pub epoch: Option<String>,
    /// The scope fingerprint the cursor belongs to (see [`SyncRecord::Start`]).
    #[serde(default)]
    pub scope: Option<String>,
    /// Feed position after which changes are wanted; 0 for everything.
    pub after: i64,
    /// Stream encodings the receiver reads (`lz4-frames`); the sender picks one or none.
    #[serde(default)]
    pub encodings: Vec<String>,
    /// The receiver's run this request belongs to.
    #[serde(default)]
    pub run: Option<RunTag>,
}

/// Names the receiver's run a request belongs to, so the sender records what it sent for that
/// run as one send run of its own, whatever the number of requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunTag {
    /// The receiver's run id (32 lowercase hex digits; anything else is ignored).
    pub id: String,
    /// `scheduled`, `on_demand` or `realtime`.
    pub trigger: String,
}

/// Asks for the whole current content of one item (after the item entered the receiver's view
/// with rows older than its cursor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ItemPullRequest {
    pub link: WireLink,
    pub origin_instance: String,
    pub origin_item: String,
    /// As in [`PullRequest::encodings`].
    #[serde(default)]
    pub encodings: Vec<String>,
    /// As in [`PullRequest::run`].
    #[serde(default)]
    pub run: Option<RunTag>,
}

/// Reads rows of an item the caller holds by reference: `query` is the query string of
/// `GET /api/v1/items/{id}/rows` (`after`, `limit`, `bbox`, `where`), run at the origin after it
/// checks that the item is still in the link's scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReferenceRowsRequest {
    pub link: WireLink,
    pub origin_instance: String,
    pub origin_item: String,
    #[serde(default)]
    pub query: String,
    /// The instances this read already passed through, the reader first: a read never goes
    /// back to one of them, and stops after a few hops.
    #[serde(default)]
    pub via: Vec<String>,
}

/// The answer to a [`ReferenceRowsRequest`]: a page of rows, and the item's markings as the
/// answering instance sees them now, so an instance that relays the read can check them against
/// its own link to the reader (its copy of the markings may be older).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReferenceRows {
    pub page: crate::RowPage,
    pub markings: Vec<String>,
}

/// "I have changes for you on this link: pull now."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Poke {
    pub link: WireLink,
}

/// A link's schedule, as `ferry sync schedules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncSchedule {
    pub link: String,
    pub every_secs: i64,
    /// The first run, RFC 3339; later runs fall on start + k * every.
    #[serde(default)]
    pub start_at: Option<String>,
    pub paused: bool,
    /// When the next scheduled run is due (absent while paused).
    #[serde(default)]
    pub next_run: Option<String>,
    /// Whether this instance runs it (a collaboration's schedules belong to its guests).
    pub owned: bool,
}

/// Changes a link's schedule; absent fields stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetSchedule {
    pub link: String,
    /// `1h` to `24h` (e.g. `6h`, `90m`).
    #[serde(default)]
    pub every: Option<String>,
    /// RFC 3339 time of the first run.
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub paused: Option<bool>,
}

/// Asks for one file chunk an item in scope uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChunkRequest {
    pub link: WireLink,
    /// BLAKE3, 64 lowercase hex digits.
    pub hash: crate::ChunkHash,
    /// As in [`PullRequest::run`].
    #[serde(default)]
    pub run: Option<RunTag>,
}

/// An item's description as it travels: its global identity and its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WireItem {
    /// The instance where the item was created, and its id there: one item however many paths
    /// bring it.
    pub origin_instance: String,
    pub origin_item: String,
    /// `dataset`, `feature_layer` or `file`.
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub markings: Vec<String>,
    #[serde(default)]
    pub schema: Option<Schema>,
    #[serde(default)]
    pub geometry_type: Option<GeometryType>,
    #[serde(default)]
    pub crs: Option<String>,
    #[serde(default)]
    pub file: Option<FileInfo>,
    /// The file's chunks, in order: (BLAKE3, 64 lowercase hex digits; length). A record with any
    /// other hash does not parse.
    #[serde(default)]
    #[schema(value_type = Vec<Vec<Object>>)]
    pub chunks: Vec<(crate::ChunkHash, u64)>,
    /// Bytes of the item's content (rows or file), for the size limit.
    #[serde(default)]
    pub size: u64,
    /// All the item's rows are newer than the receiver's cursor (it was created after it, or the
    /// stream is a full pass): they all follow in this stream, unless `copy_whole`.
    #[serde(default)]
    pub whole: bool,
    /// None of the item's rows are in this stream (a large item new to the receiver): the
    /// receiver copies it whole (`/federation/v1/sync/item`), one scan at the sender instead of a
    /// lookup per row.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copy_whole: bool,
    /// Sent by reference: no rows follow, ever; the receiver reads them from the sender on
    /// demand (`/federation/v1/sync/rows`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    /// Live rows at the sender (what a reference shows as its row count).
    #[serde(default)]
    pub row_count: i64,
    /// The owner's choice of copy or reference, which holds on every further hop.
    #[serde(default)]
    pub sync_as: crate::SyncAs,
    /// Two-way editing, as the origin set it: its rows carry versions, and copies directly
    /// linked to the origin may edit them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_way: Option<crate::twoway::TwoWay>,
}

/// One line of a pull's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum SyncRecord {
    /// First line: the sender's epoch and scope fingerprint. A receiver whose cursor has another
    /// epoch or scope starts over from 0 (a full resync).
    Start {
        epoch: String,
        scope: String,
        /// True when the answer starts from 0 (everything in scope follows).
        full: bool,
    },
    /// An item in scope was created or changed.
    Item { item: Box<WireItem> },
    /// A row of an item in scope was added or changed.
    Row {
        origin_item: String,
        #[schema(value_type = Object)]
        key: Value,
        #[schema(value_type = Object)]
        values: serde_json::Map<String, Value>,
        #[serde(default)]
        #[schema(value_type = Object)]
        geometry: Option<Value>,
        /// The row's version at its origin, for a two-way item sent by its origin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v: Option<crate::twoway::RowVersion>,
    },
    /// A row of an item in scope was deleted.
    RowDeleted {
        origin_item: String,
        #[schema(value_type = Object)]
        key: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v: Option<crate::twoway::RowVersion>,
    },
    /// An edit made on a copy of one of the receiver's own two-way items, back to it: the
    /// receiver judges it (see `ferry_core::twoway`).
    Edit {
        origin_item: String,
        #[schema(value_type = Object)]
        key: Value,
        edit: Box<crate::twoway::RowEdit>,
    },
    /// The item left the receiver's view: deleted at its origin, or no longer in scope (unshared,
    /// a marking above the ceiling, a data type no longer sent).
    Retract {
        origin_instance: String,
        origin_item: String,
        /// `deleted` or `out_of_scope`.
        reason: String,
    },
    /// Everything before this line is one batch, consistent up to feed position `seq`.
    Commit { seq: i64 },
    /// The last line: nothing more follows.
    End { seq: i64 },
    /// The sender's signature over every line before this one (see
    /// [`crate::signing::StreamSignature`]); follows every `commit` and `end`, and comes every
    /// few thousand rows in a whole-item copy. A receiver applies only what a valid one covers.
    Sig { sig: String },
}

/// Runs one link now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncNow {
    /// A peer connection id, COLLABORATION/WORKSPACE, or a link key.
    pub link: String,
    /// `false`: answer at once with the run `submitted` (202), and run it in the background.
    #[serde(default = "yes")]
    pub wait: bool,
}

fn yes() -> bool {
    true
}

/// One sync run, as `ferry sync history` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncRun {
    pub id: String,
    /// `peer:<connection id>` or `collab:<collaboration id>:<workspace id>`.
    pub link: String,
    /// `scheduled`, `on_demand` or `realtime` (a send run: its receiver's run's; `unknown`
    /// when the receiver did not name its run).
    pub trigger: String,
    /// `submitted`, `running`, `completed`, `completed_with_failures`, `failed` or `skipped`.
    pub status: String,
    /// `receive`: this instance pulled; `send`: it served the other side's run of that pull
    /// (its requests, however many, are one send run).
    #[serde(default = "receive")]
    pub direction: String,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub items_received: i64,
    pub rows_received: i64,
    /// Items retracted here (a receive run) or retractions sent (a send run).
    pub items_retracted: i64,
    pub bytes_received: i64,
    /// Item descriptions, rows (updates and deletes included) and bytes a send run sent.
    #[serde(default)]
    pub items_sent: i64,
    #[serde(default)]
    pub rows_sent: i64,
    #[serde(default)]
    pub bytes_sent: i64,
    /// Per-item errors: the item, and what went wrong.
    pub errors: Vec<SyncItemError>,
    /// Why the run failed, if it did.
    #[serde(default)]
    pub message: Option<String>,
}

fn receive() -> String {
    "receive".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncItemError {
    pub origin_item: String,
    pub title: String,
    pub code: String,
    pub message: String,
}

/// The state of one link's sync, for `ferry sync status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkSyncStatus {
    pub link: String,
    /// What the link is, for people: the peer's title, or collaboration / workspace.
    pub name: String,
    /// Whether this instance receives on the link now.
    pub receives: bool,
    /// Whether this instance sends on the link now.
    pub sends: bool,
    #[serde(default)]
    pub last_run: Option<SyncRun>,
    /// The latest run that moved data (items, rows or retractions), when it is not the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_data_run: Option<SyncRun>,
    pub running: bool,
}

/// Every `row` line starts so: the receiver reads those with [`RawRowRecord`], without building
/// maps for values it stores as text.
pub const ROW_LINE_PREFIX: &str = r#"{"t":"row","#;

/// A `row` record with its values and geometry left as JSON text.
#[derive(Debug, Deserialize)]
pub struct RawRowRecord<'a> {
    #[serde(borrow)]
    pub origin_item: std::borrow::Cow<'a, str>,
    pub key: Value,
    #[serde(borrow)]
    pub values: &'a serde_json::value::RawValue,
    #[serde(borrow, default)]
    pub geometry: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    pub v: Option<crate::twoway::RowVersion>,
}

/// Writes a `row` line (with its newline) from stored JSON text, decoding nothing.
pub fn write_row_line(
    out: &mut Vec<u8>,
    origin_item: &str,
    key: &Value,
    values: &str,
    geometry: Option<&str>,
    version: Option<&str>,
) {
    out.extend_from_slice(ROW_LINE_PREFIX.as_bytes());
    out.extend_from_slice(br#""origin_item":"#);
    serde_json::to_writer(&mut *out, origin_item).expect("a string always serializes");
    out.extend_from_slice(br#","key":"#);
    serde_json::to_writer(&mut *out, key).expect("a key always serializes");
    out.extend_from_slice(br#","values":"#);
    push_one_line(out, values);
    if let Some(g) = geometry {
        out.extend_from_slice(br#","geometry":"#);
        push_one_line(out, g);
    }
    if let Some(v) = version {
        out.extend_from_slice(br#","v":"#);
        push_one_line(out, v);
    }
    out.extend_from_slice(b"}\n");
}

/// A receiver that lists this among its `encodings` reads compact row lines in a whole-item copy
/// (`/sync/item`); a sender that writes them says so in [`ROWS_HEADER`].
pub const COMPACT_ROWS: &str = "compact-rows";

/// The response header by which a sender says its row lines are compact.
pub const ROWS_HEADER: &str = "x-ferry-rows";

/// Writes a compact row line of a whole-item copy: the key, the values and the geometry (empty
/// when there is none) as JSON text separated by tabs, then a newline. The stream is of one item,
/// so the line does not name it, and the receiver finds the parts without scanning the JSON.
pub fn write_compact_row(
    out: &mut Vec<u8>,
    key: &Value,
    values: &str,
    geometry: Option<&str>,
    version: Option<&str>,
) {
    serde_json::to_writer(&mut *out, key).expect("a key always serializes");
    out.push(b'\t');
    push_one_line(out, values);
    out.push(b'\t');
    if let Some(g) = geometry {
        push_one_line(out, g);
    }
    // A two-way item's row carries its version as a fourth part.
    if let Some(v) = version {
        out.push(b'\t');
        push_one_line(out, v);
    }
    out.push(b'\n');
}

/// The parts of a compact row line, still JSON text: each is checked by whoever reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactRow<'a> {
    pub key: &'a [u8],
    pub values: &'a str,
    pub geometry: Option<&'a str>,
    /// A two-way item's row version ([`crate::twoway::RowVersion`] as JSON).
    pub version: Option<&'a str>,
}

/// Splits a compact row line (without its newline) into its three parts.
pub fn read_compact_row(line: &[u8]) -> Result<CompactRow<'_>, String> {
    let mut parts = line.splitn(5, |b| *b == b'\t');
    let (Some(key), Some(values), Some(geometry), version, None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("a compact row line has three or four tab-separated parts".into());
    };
    if version.is_some_and(<[u8]>::is_empty) {
        return Err("a compact row line's fourth part (its version) is empty".into());
    }
    let text = |part| std::str::from_utf8(part).map_err(|e| format!("a row is not UTF-8: {e}"));
    Ok(CompactRow {
        key,
        values: text(values)?,
        geometry: (!geometry.is_empty()).then(|| text(geometry)).transpose()?,
        version: version.map(text).transpose()?,
    })
}

/// Appends stored JSON text on one line. JSON allows a raw tab, newline or carriage return only
/// as whitespace between tokens (inside strings they are escaped), so each becomes a space: the
/// same JSON, and it cannot break a line or a compact row. Text stored as it was imported may be
/// pretty-printed.
fn push_one_line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(one_line(text).as_bytes());
}

/// Stored JSON text on one line (see [`write_row_line`]): what NDJSON, one object per line,
/// needs as well.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if memchr::memchr3(b'\n', b'\r', b'\t', text.as_bytes()).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.replace(['\n', '\r', '\t'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row line written from text reads back both ways: as a full record and on the fast path.
    #[test]
    fn row_lines_read_back() {
        let mut out = Vec::new();
        let values = r#"{"name":"a \"quoted\" name","n":3}"#;
        let geometry = r#"{"type":"Point","coordinates":[1.5,2]}"#;
        write_row_line(
            &mut out,
            "o1",
            &serde_json::json!(7),
            values,
            Some(geometry),
            Some(r#"{"version":12,"seen":{"g1":3}}"#),
        );
        let line = std::str::from_utf8(&out).unwrap().trim_end();
        assert!(line.starts_with(ROW_LINE_PREFIX));
        let record: SyncRecord = serde_json::from_str(line).unwrap();
        let SyncRecord::Row {
            origin_item,
            key,
            values: parsed,
            geometry: g,
            v,
        } = record
        else {
            panic!("not a row: {line}");
        };
        assert_eq!((origin_item.as_str(), key), ("o1", serde_json::json!(7)));
        assert_eq!(parsed["name"], "a \"quoted\" name");
        assert_eq!(g.unwrap()["coordinates"][0], 1.5);
        let v = v.unwrap();
        assert_eq!((v.version, v.seen["g1"]), (12, 3));
        let raw: RawRowRecord<'_> = serde_json::from_str(line).unwrap();
        assert_eq!(raw.v.unwrap().version, 12);
        assert_eq!(
            (raw.values.get(), raw.geometry.map(|g| g.get())),
            (values, Some(geometry))
        );
        out.clear();
        write_row_line(&mut out, "o1", &serde_json::json!("k"), "{}", None, None);
        let raw: RawRowRecord<'_> = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert!(raw.geometry.is_none());
    }

    /// Pretty-printed stored text goes out on one line, as the same JSON.
    #[test]
    fn stored_text_with_line_breaks_stays_on_its_line() {
        let values = "{\n\t\"name\": \"a\\tb\",\r\n  \"n\": 3\n}";
        let geometry = "{ \"type\": \"Point\",\n \"coordinates\": [1, 2] }";
        let mut out = Vec::new();
        write_row_line(
            &mut out,
            "o1",
            &serde_json::json!(1),
            values,
            Some(geometry),
            None,
        );
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        let raw: RawRowRecord<'_> = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        let parsed: Value = serde_json::from_str(raw.values.get()).unwrap();
        assert_eq!(parsed, serde_json::from_str::<Value>(values).unwrap());
        assert_eq!(parsed["name"], "a\tb", "escapes inside strings are kept");

        out.clear();
        write_compact_row(
            &mut out,
            &serde_json::json!(1),
            values,
            Some(geometry),
            None,
        );
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        let row = read_compact_row(out.strip_suffix(b"\n").unwrap()).unwrap();
        let parsed: Value = serde_json::from_str(row.values).unwrap();
        assert_eq!(parsed, serde_json::from_str::<Value>(values).unwrap());
        let g: Value = serde_json::from_str(row.geometry.unwrap()).unwrap();
        assert_eq!(g["coordinates"], serde_json::json!([1, 2]));
    }

    #[test]
    fn compact_rows_read_back_and_malformed_ones_are_refused() {
        let mut out = Vec::new();
        write_compact_row(
            &mut out,
            &serde_json::json!("k\t1"),
            r#"{"a":1}"#,
            None,
            None,
        );
        let row = read_compact_row(out.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(row.key, br#""k\t1""#, "a tab in a key is escaped");
        assert_eq!((row.values, row.geometry), (r#"{"a":1}"#, None));
        out.clear();
        let version = r#"{"version":9}"#;
        write_compact_row(&mut out, &serde_json::json!(2), "{}", None, Some(version));
        let row = read_compact_row(out.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!((row.geometry, row.version), (None, Some(version)));
        for bad in [&b"1\t{}"[..], b"1\t{}\t\t", b"1", b"1\t\xff\t"] {
            assert!(read_compact_row(bad).is_err(), "{bad:?}");
        }
    }
}
