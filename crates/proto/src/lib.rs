//! Ferry's wire types: everything that crosses the HTTP edge between the CLI, the server and (later)
//! other instances. No IO, no async, no storage: only shapes, ids and the stable error codes.
//!
//! Every `Serialize` here is a compatibility promise. Add fields as `Option` or with
//! `#[serde(default)]`; never rename or repurpose one.

mod collab;
mod error;
pub mod exact;
pub mod frames;
mod ids;
mod model;
pub mod signing;
mod sync;
pub mod ticket;
pub mod twoway;

pub use collab::*;
pub use error::{ApiError, ErrorCode};
pub use ids::{BadChunkHash, ChunkHash, ItemId, SpaceId, TokenId};
pub use model::*;
pub use sync::*;

/// Version of the `/api/v1` wire format, reported by `GET /api/v1/instance`.
pub const API_VERSION: u32 = 1;
