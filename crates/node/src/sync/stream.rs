//! Reading a sync stream: records split from the bytes (plain or LZ4 frames), every line
//! checked against the `sig` records that follow it, and read ahead of the consumer on a task
//! of its own with bounded memory.

use crate::error::{NodeError, NodeResult};
use bytes::Bytes;
use ferry_proto::frames;
use ferry_proto::signing::StreamSignature;
use ferry_proto::{
    COMPACT_ROWS, ErrorCode, ROW_LINE_PREFIX, ROWS_HEADER, RawRowRecord, SyncRecord,
    read_compact_row,
};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The most a pull holds between two commits (and the longest line): well above what an honest
/// sender puts in a batch (`sender::BATCH_BYTES`, plus the line that crossed it).
pub(super) const MAX_BATCH_BYTES: usize = 8 * super::sender::BATCH_BYTES;

/// Splits a byte stream (plain, or LZ4 frames when the sender says so) into NDJSON records.
pub(super) struct Records {
    pub(super) body: futures_util::stream::BoxStream<'static, Result<Bytes, reqwest::Error>>,
    /// Set when the body comes in compressed frames.
    pub(super) frames: Option<frames::FrameDecoder>,
    /// Whether rows come as compact lines (a whole-item copy whose sender writes them).
    pub(super) compact_rows: bool,
    pub(super) buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    pub(super) read: usize,
    /// Bytes on the wire.
    pub(super) bytes: i64,
    /// Bytes of the lines read, uncompressed.
    pub(super) line_bytes: usize,
    /// Checks the sender's `sig` records against every line before them.
    pub(super) verifier: StreamVerifier,
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
    pub(super) fn line(&mut self, line: &[u8]) -> NodeResult<Option<Incoming>> {
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

/// How a `sig` record's line starts, as senders write it.
pub(super) const SIG_LINE_PREFIX: &str = r#"{"t":"sig""#;

pub(super) fn bad_signature(what: &str) -> NodeError {
    NodeError::new(
        ErrorCode::StreamSignatureInvalid,
        format!(
            "the sender's stream has {what} with the sender's pinned key: it was changed on the way, or does not come from the sender. Nothing of that batch was applied; what was applied before stays"
        ),
    )
}

impl Records {
    pub(super) fn new(response: reqwest::Response, verifier: StreamVerifier) -> Records {
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
    pub(super) async fn next(&mut self) -> NodeResult<Option<Incoming>> {
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
    pub(super) fn has_line(&self) -> bool {
        memchr::memchr(b'\n', &self.buffer[self.read..]).is_some()
    }

    pub(super) fn take(&mut self, chunk: &[u8]) -> NodeResult<()> {
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
pub(super) const READ_BLOCK: usize = 256;
/// ...and lines of at most about this many bytes (a block holds at least one line).
pub(super) const READ_BLOCK_BYTES: usize = 1 << 20;
/// Bytes of lines the reading task may have read ahead of the consumer, so that memory stays
/// bounded whatever a sender's lines and frames are like.
pub(super) const READ_AHEAD_BYTES: u32 = 16 << 20;

/// A block of parsed records, each with the length of its line.
pub(super) type Block = Vec<(Incoming, usize)>;

/// Records read and parsed on their own task, a block at a time, so that reading and parsing
/// one part of a stream overlaps checking (and applying) the part before.
pub(super) struct ReadAhead {
    /// Each block with the read-ahead budget it holds.
    pub(super) blocks: tokio::sync::mpsc::Receiver<NodeResult<(Block, u32)>>,
    pub(super) budget: Arc<tokio::sync::Semaphore>,
    pub(super) block: std::vec::IntoIter<(Incoming, usize)>,
    /// Bytes of the lines handed out, uncompressed.
    pub(super) line_bytes: usize,
    /// Bytes on the wire so far, as the reading task counts them.
    pub(super) wire_bytes: Arc<AtomicI64>,
}

impl ReadAhead {
    pub(super) fn spawn(response: reqwest::Response, verifier: StreamVerifier) -> ReadAhead {
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
    pub(super) async fn next(&mut self) -> NodeResult<Option<Incoming>> {
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

    pub(super) fn wire_bytes(&self) -> i64 {
        self.wire_bytes.load(Ordering::Relaxed)
    }
}

/// Reads records until a block is full, or until the next one would wait on the connection
/// (what arrived goes on at once); with how the stream ended, if it did.
pub(super) async fn read_block(records: &mut Records) -> (Block, Option<NodeResult<()>>) {
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
pub(super) enum Incoming {
    Row {
        /// `None` for a compact row: the item the stream copies.
        origin_item: Option<String>,
        key: serde_json::Value,
        values: String,
        geometry: Option<String>,
        /// The row's version at its origin (a two-way item's row from its origin).
        version: Option<ferry_proto::twoway::RowVersion>,
    },
    Record(SyncRecord),
    /// A `sig` record that verified: every line before it is the sender's, unchanged.
    Verified,
}

impl Incoming {
    /// Reads a line (with its newline). Records are JSON objects; in a stream of compact rows,
    /// any other line is a row.
    pub(super) fn read(line: &[u8], compact_rows: bool) -> Result<Incoming, String> {
        let json_error = |e: serde_json::Error| e.to_string();
        if compact_rows && !line.starts_with(b"{") {
            let row = read_compact_row(line.strip_suffix(b"\n").unwrap_or(line))?;
            return Ok(Incoming::Row {
                origin_item: None,
                key: serde_json::from_slice(row.key).map_err(json_error)?,
                values: row.values.to_string(),
                geometry: row.geometry.map(str::to_string),
                version: row
                    .version
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(json_error)?,
            });
        }
        if line.starts_with(ROW_LINE_PREFIX.as_bytes()) {
            let row: RawRowRecord<'_> = serde_json::from_slice(line).map_err(json_error)?;
            return Ok(Incoming::Row {
                origin_item: Some(row.origin_item.into_owned()),
                key: row.key,
                values: row.values.get().to_string(),
                geometry: row.geometry.map(|g| g.get().to_string()),
                version: row.v,
            });
        }
        serde_json::from_slice(line)
            .map(Incoming::Record)
            .map_err(json_error)
    }
}

pub(super) fn cut(why: &str) -> NodeError {
    NodeError::new(
        ErrorCode::SyncStreamCut,
        format!(
            "the sender's stream ended before its end record ({why}); what arrived before is kept and the next run goes on from there"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows come as `row` records from any sender, and as compact lines only from one that said
    /// it writes them; a record is a record either way.
    #[test]
    fn lines_read_as_what_the_stream_holds() {
        let mut record = Vec::new();
        ferry_proto::write_row_line(
            &mut record,
            "o1",
            &serde_json::json!(7),
            r#"{"a":1}"#,
            None,
            None,
        );
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
        ferry_proto::write_compact_row(
            &mut compact,
            &serde_json::json!(8),
            r#"{"a":1}"#,
            None,
            None,
        );
        let Ok(Incoming::Row {
            origin_item,
            key,
            values,
            geometry,
            ..
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
                ferry_proto::write_row_line(
                    &mut line,
                    "o1",
                    &serde_json::json!(key),
                    "{}",
                    None,
                    None,
                );
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
        // One answer over plain HTTP/1.1: the node names no HTTP server type, not even in tests.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap() == 1 {
                head.push(byte[0]);
            }
            let status = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(status.as_bytes()).await.unwrap();
            socket.write_all(&body).await.unwrap();
        });

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
