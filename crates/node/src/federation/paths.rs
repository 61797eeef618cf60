//! The paths of the federation API, and what the door does with their answers.

pub const RESPONSES_PATH: &str = "/federation/v1/peer/responses";
pub const STATE_PATH: &str = "/federation/v1/peer/state";
pub const PROBE_PATH: &str = "/federation/v1/probe";
pub const SECURITY_PATH: &str = "/federation/v1/peer/security";
pub const COLLAB_RESPONSES_PATH: &str = "/federation/v1/collab/responses";
pub const COLLAB_SNAPSHOT_PATH: &str = "/federation/v1/collab/snapshot";
pub const COLLAB_FETCH_PATH: &str = "/federation/v1/collab/fetch";
pub const COLLAB_LEAVE_PATH: &str = "/federation/v1/collab/leave";
pub const IDENTITY_PATH: &str = "/federation/v1/identity";
pub const SYNC_PULL_PATH: &str = "/federation/v1/sync/pull";
pub const SYNC_ITEM_PATH: &str = "/federation/v1/sync/item";
pub const SYNC_CHUNK_PATH: &str = "/federation/v1/sync/chunk";
pub const SYNC_POKE_PATH: &str = "/federation/v1/sync/poke";
pub const SYNC_ROWS_PATH: &str = "/federation/v1/sync/rows";

/// Answers that are streams, not control answers: sync streams sign themselves batch by batch,
/// and a chunk is checked against the hash its signed file description gives.
pub const STREAM_PATHS: [&str; 3] = [SYNC_PULL_PATH, SYNC_ITEM_PATH, SYNC_CHUNK_PATH];

/// The largest control answer signed (and so sent): most are a few KiB, a page of reference rows
/// at most what a reader takes of one (`reference::ROWS_ANSWER_BYTES`).
pub const MAX_SIGNED_ANSWER: usize = 32 << 20;
