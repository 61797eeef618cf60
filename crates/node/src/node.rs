//! The node: one running instance's node, and the handle every door (REST API, federation,
//! web console, CLI tests) calls operations on.

use crate::instance::Instance;
use crate::metrics::Metrics;
use ferry_store::{ChunkStore, Store};
use std::sync::Arc;

/// One running instance. Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Node {
    pub store: Arc<dyn Store>,
    pub chunks: ChunkStore,
    pub info: Arc<InstanceFacts>,
    pub identity: Arc<crate::instance::Identity>,
    pub(crate) federation: crate::federation::client::FederationClient,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Whether item-level changes poke receivers at once.
    pub realtime: bool,
    /// Whether pulls ask for compressed streams.
    pub compress_sync: bool,
    /// One sync run per link at a time.
    pub(crate) sync: Arc<crate::sync::locks::SyncLocks>,
    /// Refused federation calls, counted so a flood of them cannot fill the audit log.
    pub(crate) refusals: Arc<crate::federation::refusals::RefusalLog>,
    /// Console sessions.
    pub(crate) sessions: Arc<crate::session_table::Sessions>,
    /// How long a console session lasts from sign-in, in seconds.
    pub session_secs: i64,
    /// The hybrid logical clock two-way edits made here carry.
    pub(crate) clock: Arc<std::sync::Mutex<ferry_core::twoway::Clock>>,
}

/// What the instance says about itself.
#[derive(Debug, Clone)]
pub struct InstanceFacts {
    pub instance_id: String,
    pub title: String,
    pub public_url: String,
    pub public_key: String,
    pub fingerprint: String,
    /// Background tiles for the console's map, when an admin configured them.
    pub basemap: Option<crate::config::Basemap>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_import_bytes: u64,
}

impl Node {
    /// A reading of this instance's hybrid logical clock, for a two-way edit made now.
    pub(crate) fn tick(&self) -> ferry_proto::twoway::Stamp {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        clock.tick(now_ms, &self.info.instance_id)
    }

    /// An editor's clock reading as this instance takes it (see `Clock::bounded`).
    pub(crate) fn bounded(&self, given: &ferry_proto::twoway::Stamp) -> ferry_proto::twoway::Stamp {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        clock.bounded(given, now_ms)
    }

    /// The node of an opened instance reached at `public_url`.
    pub fn new(instance: &Instance, public_url: String) -> Node {
        let instance_id = instance.store.instance().map(|i| i.id).unwrap_or_default();
        Node {
            federation: crate::federation::client::FederationClient::new(
                instance.identity.clone(),
                (instance_id.clone(), instance.config.title.clone()),
                instance.store.clone(),
                crate::federation::client::Transport {
                    tls: instance.client_tls.clone(),
                    allow_plain_http: instance.config.allow_plain_http,
                },
            ),
            store: instance.store.clone(),
            chunks: instance.chunks.clone(),
            info: Arc::new(InstanceFacts {
                instance_id,
                title: instance.config.title.clone(),
                public_url,
                public_key: instance.identity.public_key_base64(),
                fingerprint: instance.identity.fingerprint(),
                basemap: instance.config.basemap.clone(),
            }),
            identity: instance.identity.clone(),
            metrics: Arc::new(Metrics::new()),
            sync: Default::default(),
            refusals: Default::default(),
            sessions: Default::default(),
            clock: Default::default(),
            session_secs: i64::try_from(instance.config.session_secs).unwrap_or(i64::MAX),
            realtime: instance.config.realtime,
            compress_sync: instance.config.compress_sync,
            limits: Limits {
                max_body_bytes: instance.config.max_body_bytes,
                max_import_bytes: instance.config.max_import_bytes,
            },
        }
    }
}
