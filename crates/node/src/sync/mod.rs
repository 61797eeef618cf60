//! The sync engine. A **link** is a peer connection or a collaboration workspace; a **channel** is
//! one direction of flow on a link, from one instance to another. The receiver pulls: it asks
//! the sender for changes after its cursor ([`receiver`]), and the sender streams what is in
//! scope for that receiver ([`sender`]). Who may send what to whom is decided here, from the
//! link's records, and nowhere else.

pub(crate) mod apply;
pub(crate) mod checker;
pub(crate) mod edits;
pub mod links;
pub(crate) mod locks;
pub mod pokes;
pub mod receiver;
pub mod reference;
pub mod scheduler;
pub mod sender;
pub mod status;
pub(crate) mod stream;
pub mod triggers;

pub(crate) use links::{Link, all_links, lost_edit_rights};
pub use pokes::changed;
pub(crate) use pokes::poke_receivers;
pub(crate) use triggers::link_changed;
pub use triggers::poked;
