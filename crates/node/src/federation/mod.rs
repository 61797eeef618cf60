//! `/federation/v1`: what other Ferry instances ask of this one, and the client this instance
//! calls them with. Every request is signed (`ferry_proto::signing`); [`SignedByPeer::check`]
//! checks signature, clock, nonce, connection state and ingress policy before any operation
//! runs. The HTTP routes are the server's.

pub(crate) mod admission;
mod audit;
pub(crate) mod client;
pub mod inbound;
pub mod paths;
pub mod policy;
pub(crate) mod refusals;

pub(crate) use client::{Callee, FederationError, read_bounded, transport_warning};
pub use inbound::{Incoming, RequestHead, SignedByPeer, json_body};

pub use audit::flush_refusals;
pub(crate) use audit::record_refusal;
pub use paths::*;
