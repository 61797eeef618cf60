//! `ferry-node`: everything a Ferry instance does, behind one handle, [`Node`]. Opening an
//! instance (identity, config, store, chunk store), spaces, items, imports and exports, edits,
//! tokens, policies, audit, peer connections, collaborations, the sync engine and the outbound
//! federation client. Operations are grouped by domain (`node::peers`, `node::collabs`, ...);
//! each takes the node, the acting [`Caller`] where a person acts, and plain inputs, and returns
//! domain values or a [`NodeError`] carrying its stable code. No HTTP server type appears here:
//! the doors (`ferry-server`'s REST API and federation endpoints, later a web console) are thin
//! adapters over these operations.

mod background;
pub mod caller;
pub mod chunks;
pub mod collabs;
pub mod config;
pub mod conflicts;
pub mod error;
pub mod federation;
mod ids;
pub mod instance;
pub mod items;
pub mod map;
pub mod metrics;
mod node;
pub mod peers;
pub mod query;
mod session_table;
pub mod sessions;
pub mod spaces;
pub mod sync;
mod task;
#[cfg(test)]
mod tests;
pub mod tls;
pub mod tokens;
pub mod transfer;
pub mod trust;

pub use background::Background;
pub use caller::Caller;
pub use config::{Basemap, Config, ServeOptions};
pub use error::{NodeError, NodeResult};
pub use instance::{Instance, StartError};
pub use node::{InstanceFacts, Limits, Node};
pub use task::blocking;
