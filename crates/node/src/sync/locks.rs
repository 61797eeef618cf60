//! One sync run per link at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One run at a time per link, however many triggers fire.
#[derive(Default)]
pub(crate) struct SyncLocks(Mutex<HashMap<String, Arc<LinkLock>>>);

/// A link's run lock, and whether a poke came while a run was going (the running run then goes
/// once more, so no change announced by a poke waits for the next schedule).
#[derive(Default)]
pub(crate) struct LinkLock {
    pub(crate) running: tokio::sync::Mutex<()>,
    pub(crate) again: std::sync::atomic::AtomicBool,
}

impl SyncLocks {
    pub(crate) fn of(&self, link: &str) -> Arc<LinkLock> {
        let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(link.to_string()).or_default().clone()
    }
}
