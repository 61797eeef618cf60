//! Content-addressed chunk storage for file items.
//!
//! A file is cut into fixed-size chunks, each stored once under `chunks/<aa>/<hash>` where `hash`
//! is its BLAKE3 digest. Sync can then send only the chunks a receiver lacks. Chunks are written to
//! a temporary file, flushed, and renamed into place, so a chunk file is either whole or absent.
//!
//! Durability, in order: a chunk's bytes reach the disk before its rename ([`ChunkStore::put`]);
//! the directories holding the renames reach it before the item that uses the chunks commits
//! ([`ChunkStore::sync_dirs`], called by every writer of items with chunks); so no committed
//! item can point at a chunk a power cut takes away. A crash between the chunks and the commit
//! leaves chunks no item uses: [`ChunkStore::orphans`] finds them for the sweep.

use crate::StoreResult;
use crate::types::ChunkRef;
use ferry_proto::ChunkHash;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// 1 MiB: small enough that a resumed transfer loses little, large enough to keep the chunk table
/// small (a 10 GB file has 10,000 chunks).
pub const CHUNK_SIZE: usize = 1 << 20;

/// Chunk files under one directory. Clones share the registry of chunks held by uploads in
/// progress, which clean-up never removes.
#[derive(Debug, Clone)]
pub struct ChunkStore {
    root: PathBuf,
    /// Chunks an uncommitted upload uses, with how many uploads use each.
    held: Arc<Mutex<HashMap<ChunkHash, usize>>>,
}

impl ChunkStore {
    pub fn open(root: impl Into<PathBuf>) -> StoreResult<ChunkStore> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(ChunkStore {
            root,
            held: Arc::default(),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<ChunkHash, usize>> {
        // The map stays consistent even if a holder panicked: recover it.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets clean-up remove these chunks again once no item uses them (after the upload
    /// committed or gave up).
    pub fn release(&self, chunks: &[ChunkRef]) {
        let mut held = self.held();
        for c in chunks {
            if let Some(n) = held.get_mut(&c.hash) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&c.hash);
                }
            }
        }
    }

    /// Removes a chunk unless an upload holds it or `in_use` says an item references it. The
    /// check and the removal happen under the registry lock, so an upload cannot pick the chunk
    /// up in between.
    pub fn remove_unused(
        &self,
        hash: &ChunkHash,
        in_use: impl FnOnce(&ChunkHash) -> StoreResult<bool>,
    ) -> StoreResult<bool> {
        let held = self.held();
        if held.contains_key(hash) || in_use(hash)? {
            return Ok(false);
        }
        self.remove(hash)?;
        drop(held);
        Ok(true)
    }

    /// Where a chunk lives: `<root>/<first two hex digits>/<64 hex digits>`. A [`ChunkHash`] is
    /// hex digits only, so the path never leaves the root.
    fn path(&self, hash: &ChunkHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub fn has(&self, hash: &ChunkHash) -> bool {
        self.path(hash).is_file()
    }

    /// Stores a chunk and holds it for the caller until [`ChunkStore::release`]; returns its
    /// reference and whether it was new.
    pub fn put(&self, bytes: &[u8]) -> StoreResult<(ChunkRef, bool)> {
        self.put_hashed(ChunkHash::of(bytes), bytes)
    }

    /// [`ChunkStore::put`] for bytes the caller has already hashed and checked against `hash`
    /// (a chunk received from another instance is hashed once, not twice).
    pub fn put_hashed(&self, hash: ChunkHash, bytes: &[u8]) -> StoreResult<(ChunkRef, bool)> {
        let chunk = ChunkRef {
            hash,
            len: bytes.len() as u64,
        };
        // Held before looking at the disk: clean-up that runs from now on leaves it alone.
        *self.held().entry(hash).or_insert(0) += 1;
        let path = self.path(&hash);
        if path.is_file() {
            return Ok((chunk, false));
        }
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        // The bytes first: a rename that survives a power cut must not name an empty file.
        tmp.as_file().sync_data()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok((chunk, true))
    }

    /// Flushes the directories that hold these chunks (and the root, which holds those
    /// directories), so their names survive a power cut: call it before committing an item
    /// that uses chunks written since the last call. Each directory is flushed once.
    pub fn sync_dirs<'a>(
        &self,
        hashes: impl IntoIterator<Item = &'a ChunkHash>,
    ) -> StoreResult<()> {
        let dirs: std::collections::BTreeSet<PathBuf> = hashes
            .into_iter()
            .filter_map(|h| self.path(h).parent().map(Path::to_path_buf))
            .collect();
        if dirs.is_empty() {
            return Ok(());
        }
        for dir in dirs.iter().chain(std::iter::once(&self.root)) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Chunk files last written more than `age` ago, for the sweep to check against the items
    /// that use them (younger ones may belong to a transfer that resumes); temporary files of
    /// writes that never finished, as old, are removed on the way.
    pub fn orphans(&self, age: std::time::Duration) -> StoreResult<Vec<ChunkHash>> {
        let old = |entry: &fs::DirEntry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= age))
        };
        let mut found = Vec::new();
        for dir in fs::read_dir(&self.root)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(dir.path())? {
                let entry = entry?;
                if !old(&entry) {
                    continue;
                }
                if is_temp(&entry.path()) {
                    let _ = fs::remove_file(entry.path());
                } else if let Some(hash) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<ChunkHash>().ok())
                {
                    found.push(hash);
                }
            }
        }
        Ok(found)
    }

    pub fn read(&self, hash: &ChunkHash) -> StoreResult<Vec<u8>> {
        Ok(fs::read(self.path(hash))?)
    }

    fn remove(&self, hash: &ChunkHash) -> StoreResult<()> {
        match fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Number of chunk files on disk (for tests and metrics).
    pub fn count(&self) -> StoreResult<usize> {
        let mut n = 0;
        for dir in fs::read_dir(&self.root)? {
            let dir = dir?;
            if dir.file_type()?.is_dir() {
                n += fs::read_dir(dir.path())?
                    .filter(|e| e.as_ref().is_ok_and(|e| !is_temp(&e.path())))
                    .count();
            }
        }
        Ok(n)
    }
}

/// The sweep: removes chunk files older than `age` that no committed item uses and no upload in
/// progress holds (left by a crash between writing chunks and committing their item, or by a
/// transfer that never resumed); returns how many went.
pub fn sweep_orphans(
    store: &dyn crate::Store,
    chunks: &ChunkStore,
    age: std::time::Duration,
) -> StoreResult<usize> {
    let mut removed = 0;
    for hash in chunks.orphans(age)? {
        if chunks.remove_unused(&hash, |h| store.chunk_in_use(h))? {
            removed += 1;
        }
    }
    Ok(removed)
}

fn is_temp(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".tmp"))
}

/// The result of writing a whole file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub size: u64,
    /// BLAKE3 of the whole content, hex.
    pub content_hash: String,
    pub chunks: Vec<ChunkRef>,
    /// Chunks this write created (the rest already existed): the ones to remove if the item is
    /// not committed.
    pub new_chunks: Vec<ChunkHash>,
}

/// Cuts a byte stream into chunks as it arrives. Holds at most one chunk in memory.
#[derive(Debug)]
pub struct ChunkWriter {
    store: ChunkStore,
    buffer: Vec<u8>,
    whole: blake3::Hasher,
    written: WrittenFile,
}

impl ChunkWriter {
    pub fn new(store: ChunkStore) -> ChunkWriter {
        ChunkWriter {
            store,
            buffer: Vec::with_capacity(CHUNK_SIZE),
            whole: blake3::Hasher::new(),
            written: WrittenFile {
                size: 0,
                content_hash: String::new(),
                chunks: Vec::new(),
                new_chunks: Vec::new(),
            },
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> StoreResult<()> {
        self.whole.update(bytes);
        self.written.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = CHUNK_SIZE - self.buffer.len();
            let take = room.min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == CHUNK_SIZE {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> StoreResult<()> {
        let (chunk, created) = self.store.put(&self.buffer)?;
        if created {
            self.written.new_chunks.push(chunk.hash);
        }
        self.written.chunks.push(chunk);
        self.buffer.clear();
        Ok(())
    }

    pub fn finish(mut self) -> StoreResult<WrittenFile> {
        if !self.buffer.is_empty() {
            self.flush_chunk()?;
        }
        self.written.content_hash = self.whole.finalize().to_hex().to_string();
        Ok(self.written)
    }

    /// Gives up: releases the chunks written so far and returns those this upload created,
    /// for clean-up.
    pub fn abandon(self) -> Vec<ChunkHash> {
        self.store.release(&self.written.chunks);
        self.written.new_chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_chunks_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let mut w = ChunkWriter::new(store.clone());
        let data = vec![7u8; CHUNK_SIZE * 2 + 10];
        w.write(&data[..100]).unwrap();
        w.write(&data[100..]).unwrap();
        let file = w.finish().unwrap();
        assert_eq!(file.size, data.len() as u64);
        assert_eq!(file.chunks.len(), 3);
        assert_eq!(file.chunks[0], file.chunks[1]);
        assert_eq!(
            file.new_chunks.len(),
            2,
            "the repeated chunk is written once"
        );
        assert_eq!(store.count().unwrap(), 2);
        assert_eq!(file.content_hash, blake3::hash(&data).to_hex().to_string());
        assert_eq!(store.read(&file.chunks[2].hash).unwrap(), vec![7u8; 10]);

        // Held by the (uncommitted) upload: clean-up leaves the chunks alone until released.
        let hash = file.chunks[0].hash;
        assert!(!store.remove_unused(&hash, |_| Ok(false)).unwrap());
        store.release(&file.chunks);
        assert!(
            !store.remove_unused(&hash, |_| Ok(true)).unwrap(),
            "an item uses it"
        );
        assert!(store.remove_unused(&hash, |_| Ok(false)).unwrap());
        assert!(!store.has(&hash));
    }
}
