//! Ferry's domain rules, free of IO: what a valid name, marking, schema, value, key and geometry is,
//! and how a schema is inferred from data. The store and the server call these; nothing here knows
//! about SQL or HTTP.

pub mod collab;
pub mod edits;
mod error;
pub mod geometry;
pub mod names;
pub mod peering;
pub mod policy;
pub mod rows;
pub mod schema;
pub mod sync;
pub mod time;

pub use error::{CoreError, CoreResult};

/// Hash maps on the per-row paths (schema fields, items of a sync batch): foldhash instead of
/// SipHash, randomly seeded per map. Cheap to hash, and its random seed gives a basic defence
/// against crafted keys; remote field names are also checked against a fixed schema first.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
pub use schema::{Key, SchemaBuilder};
