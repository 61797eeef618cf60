//! Ferry's domain rules, free of IO: what a valid name, marking, schema, value, key and geometry is,
//! and how a schema is inferred from data. The store and the server call these; nothing here knows
//! about SQL or HTTP.

pub mod collab;
mod collections;
pub mod edits;
mod error;
pub mod geometry;
pub mod names;
pub mod peering;
pub mod policy;
pub mod rows;
pub mod schema;
pub mod schema_change;
pub mod sync;
pub mod tiles;
pub mod time;
pub mod twoway;

pub use error::{CoreError, CoreResult};

pub use collections::{FastMap, FastSet};
pub use schema::{Key, SchemaBuilder};
