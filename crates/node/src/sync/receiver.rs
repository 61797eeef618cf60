//! The receiving side: a run pulls every inbound channel of a link, applies each batch with its
//! cursor, copies items that need a whole copy, and records what happened.
//!
//! Everything a sender streams is checked here again ([`ferry_core::sync::accept`], schemas,
//! geometries): a sender that sends what this instance did not agree to import gets the item
//! refused, recorded with its error, and retried at the next run.

use super::apply::{Applier, COPY_PART_OPS, Tally, apply, apply_copy_part, finish, releasing};
use super::checker::Checker;
use super::links::{Inbound, Link, Trigger};
use super::stream::{Incoming, MAX_BATCH_BYTES, ReadAhead, StreamVerifier, bad_signature, cut};
use crate::error::{NodeError, NodeResult};
use crate::federation::{self, FederationError};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::policy::Flows;
use ferry_proto::frames;
use ferry_proto::{
    COMPACT_ROWS, ErrorCode, ItemPullRequest, PullRequest, SyncItemError, SyncRecord, SyncRun,
};
use ferry_store::{BatchOutcome, CopyPart, Origin, PendingCopy, SyncCursor};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

fn now() -> String {
    ferry_core::time::now()
}

/// Runs one sync of `link`: every inbound channel, then the copies they need. A run of the same
/// link still going makes this one `skipped`.
pub(crate) async fn run_link(node: &Node, link: &Link, trigger: Trigger) -> NodeResult<SyncRun> {
    run_as(node, link, new_run(&link.key(), trigger)).await
}

/// Records a run of `link` as `submitted` and starts it in the background; the run's record
/// (`sync history`) tells how it went.
pub(crate) async fn submit(node: &Node, link: Link, trigger: Trigger) -> NodeResult<SyncRun> {
    let mut run = new_run(&link.key(), trigger);
    run.status = "submitted".into();
    record(node, &run).await?;
    let (node, submitted) = (node.clone(), run.clone());
    tokio::spawn(async move {
        if let Err(e) = run_as(&node, &link, submitted).await {
            tracing::warn!(link = %link.key(), error = %e.0.message, "a submitted sync run failed");
        }
    });
    Ok(run)
}

/// Runs `link` under the record `run` (its id and trigger).
async fn run_as(node: &Node, link: &Link, mut run: SyncRun) -> NodeResult<SyncRun> {
    let trigger = Trigger::parse(&run.trigger).unwrap_or(Trigger::OnDemand);
    // Scheduled and on-demand runs sync both ways: the other side is asked to pull what this
    // side has. A poked run does not poke back.
    if trigger != Trigger::Realtime {
        super::pokes::poke_receivers(node, link).await;
    }
    let lock = node.sync.of(&run.link);
    let _running = match lock.running.try_lock() {
        Ok(running) => running,
        // Asked for by a person or a link change: it waits for the run going and then runs,
        // so what it reports holds when it returns.
        Err(_) if matches!(trigger, Trigger::OnDemand | Trigger::LinkChanged) => {
            lock.running.lock().await
        }
        Err(_) => {
            if trigger == Trigger::Realtime {
                lock.again.store(true, Ordering::SeqCst);
            }
            run.status = "skipped".into();
            run.ended_at = Some(now());
            run.message = Some("a run of this link was still going".into());
            record(node, &run).await?;
            return Ok(run);
        }
    };
    let mut run = one_run(node, link, run).await?;
    // Pokes that came meanwhile announced changes this run may have missed.
    while lock.again.swap(false, Ordering::SeqCst) {
        run = one_run(node, link, new_run(&run.link, Trigger::Realtime)).await?;
    }
    Ok(run)
}

fn new_run(key: &str, trigger: Trigger) -> SyncRun {
    SyncRun {
        id: crate::ids::hex_id(),
        link: key.to_string(),
        trigger: trigger.as_str().into(),
        status: "running".into(),
        started_at: now(),
        ended_at: None,
        items_received: 0,
        rows_received: 0,
        items_retracted: 0,
        bytes_received: 0,
        errors: Vec::new(),
        message: None,
        direction: "receive".into(),
        items_sent: 0,
        rows_sent: 0,
        bytes_sent: 0,
    }
}

/// One run, with the link's lock held.
async fn one_run(node: &Node, link: &Link, mut run: SyncRun) -> NodeResult<SyncRun> {
    run.status = "running".into();
    run.started_at = now();
    record(node, &run).await?;
    let mut tally = Tally {
        run,
        received: HashSet::new(),
        refused: HashSet::new(),
    };
    let mut spaces = Vec::new();
    let outcome = match super::links::inbound(node, link).await {
        Ok((_, channels)) => {
            spaces = channels.iter().map(|c| c.space.clone()).collect();
            spaces.dedup();
            pull_all(node, &channels, &mut tally).await
        }
        Err(e) => Err(e),
    };
    let mut run = tally.run;
    run.items_received = tally.received.len() as i64;
    run.ended_at = Some(now());
    run.status = match (&outcome, run.errors.is_empty()) {
        (Err(_), _) => "failed",
        (Ok(()), true) => "completed",
        (Ok(()), false) => "completed_with_failures",
    }
    .into();
    if let Err(e) = outcome {
        run.message = Some(format!("{} ({})", e.0.message, e.0.code.as_str()));
    }
    node.metrics.sync_run(&run);
    record(node, &run).await?;
    // What arrived here goes on at once to those who receive it from here (a host's other
    // guests, a peer of this instance); an instance it came from finds nothing new and stops.
    if run.items_received > 0 || run.rows_received > 0 || run.items_retracted > 0 {
        for space in spaces {
            super::pokes::changed(node, space);
        }
    }
    Ok(run)
}

async fn record(node: &Node, run: &SyncRun) -> NodeResult<()> {
    let store = node.store.clone();
    let run = run.clone();
    blocking(move || store.record_run(&run)).await
}

/// Pulls every channel; one that fails does not stop the others, but fails the run.
async fn pull_all(node: &Node, channels: &[Inbound], tally: &mut Tally) -> NodeResult<()> {
    let mut first_failure = None;
    for channel in channels {
        let pulled = pull(node, channel, tally).await;
        if pulled.is_ok()
            && let Some(grace) = channel.grace.clone()
        {
            // The edits made in grace have come: the grace ends (unless a later change of the
            // link opened a newer one meanwhile).
            let store = node.store.clone();
            blocking(move || store.close_edit_grace(&grace.channel, grace.until_ms)).await?;
        }
        // A channel open only for edits in grace takes no item, so copies none whole.
        let copied = match channel.edits_only {
            true => Ok(()),
            false => copy_pending(node, channel, tally).await,
        };
        if let Err(e) = pulled.and(copied) {
            tracing::warn!(channel = %channel.channel, error = %e.0.message, "a sync channel failed");
            first_failure.get_or_insert(e);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// The stream encodings this instance asks senders for.
fn encodings(node: &Node) -> Vec<String> {
    if node.compress_sync {
        vec![frames::LZ4_FRAMES.to_string()]
    } else {
        Vec::new()
    }
}

/// What this instance asks for when it copies an item whole: compact rows as well.
fn copy_encodings(node: &Node) -> Vec<String> {
    let mut encodings = encodings(node);
    encodings.push(COMPACT_ROWS.to_string());
    encodings
}

/// Pulls one channel from its cursor to the sender's end record.
async fn pull(node: &Node, channel: &Inbound, tally: &mut Tally) -> NodeResult<()> {
    let store = node.store.clone();
    let key = channel.channel.clone();
    let known = blocking(move || store.sync_cursor(&key)).await?;
    let request = PullRequest {
        link: channel.wire.clone(),
        epoch: known.as_ref().map(|c| c.epoch.clone()),
        scope: known.as_ref().map(|c| c.scope.clone()),
        after: known.as_ref().map_or(0, |c| c.seq),
        encodings: encodings(node),
        run: Some(tally.tag()),
    };
    let (response, nonce) = node
        .federation
        .open_stream(
            federation::Callee::of(&channel.sender, Flows::RECEIVES),
            federation::SYNC_PULL_PATH,
            &request,
        )
        .await
        .map_err(refusal)?;
    let mut records = ReadAhead::spawn(response, StreamVerifier::new(&channel.sender, nonce)?);
    let Some(Incoming::Record(SyncRecord::Start { epoch, scope, full })) = records.next().await?
    else {
        return Err(cut("no start record"));
    };
    let mut cursor = SyncCursor {
        epoch,
        scope,
        seq: request.after,
        resync: known.as_ref().is_some_and(|c| c.resync),
    };
    // A full pass begins with the first batch that verifies, not on the word of an unsigned
    // start record; a channel open for edits only never makes one (it takes no item, so the
    // pass would retract them all).
    let full = full && !channel.edits_only;
    let mut begin_full_pass = full;
    if full {
        cursor.seq = 0;
        cursor.resync = true;
    }
    let mut checker = Checker::new(node, channel, tally.tag(), None);
    let mut applier = Applier::default();
    let mut ops = Vec::new();
    let mut batch_start = records.line_bytes;
    // A commit or end read, waiting for the signature that covers its batch.
    let mut unsigned: Option<SyncRecord> = None;
    let result = loop {
        let incoming = match records.next().await {
            Ok(Some(incoming)) => incoming,
            Ok(None) => break Err(cut("the connection closed")),
            Err(e) => break Err(e),
        };
        if unsigned.is_some() && !matches!(incoming, Incoming::Verified) {
            break Err(bad_signature("a batch that no signature follows, checked"));
        }
        match incoming {
            Incoming::Record(boundary @ (SyncRecord::Commit { .. } | SyncRecord::End { .. })) => {
                unsigned = Some(boundary);
            }
            Incoming::Verified => {
                let Some(boundary) = unsigned.take() else {
                    continue;
                };
                let fetched = match checker.fetch_files(&mut ops).await {
                    Ok(fetched) => fetched,
                    Err(e) => break Err(e),
                };
                if let Err(e) = checker.write_marks().await {
                    break Err(e);
                }
                if std::mem::take(&mut begin_full_pass) {
                    let (store, c, key, link) = (
                        node.store.clone(),
                        cursor.clone(),
                        channel.channel.clone(),
                        channel.link.clone(),
                    );
                    if let Err(e) = blocking(move || store.begin_resync(&key, &link, &c)).await {
                        break Err(e);
                    }
                }
                match boundary {
                    SyncRecord::Commit { seq } => {
                        cursor.seq = seq;
                        batch_start = records.line_bytes;
                        // Applied while the next batch is read and checked.
                        let batch = apply(node, channel, std::mem::take(&mut ops), &cursor);
                        let batch = releasing(node, fetched, batch);
                        if let Err(e) = applier.start(tally, batch).await {
                            break Err(e);
                        }
                    }
                    SyncRecord::End { seq } => {
                        cursor.seq = seq;
                        let last = releasing(node, fetched, apply(node, channel, ops, &cursor));
                        break finish_pull(node, channel, &mut applier, tally, last, cursor).await;
                    }
                    _ => unreachable!("only boundaries wait for a signature"),
                }
            }
            other => match checker.op(other).await {
                Ok(Some(op)) => {
                    ops.push(op);
                    ops.extend(checker.take_extra());
                    if records.line_bytes - batch_start > MAX_BATCH_BYTES {
                        break Err(NodeError::new(
                            ErrorCode::SyncRefused,
                            format!(
                                "the sender sent more than {} MiB without a commit; this instance does not hold more in one batch",
                                MAX_BATCH_BYTES >> 20
                            ),
                        ));
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            },
        }
    };
    // Whatever was committed stays: a failure leaves the cursor at the last applied batch.
    let waited = applier.wait(tally).await;
    tally.absorb(checker, records.wire_bytes());
    result.and(waited)
}

/// The last batch of a pull, then the end of a full pass (its sweep).
async fn finish_pull(
    node: &Node,
    channel: &Inbound,
    applier: &mut Applier,
    tally: &mut Tally,
    last: impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static,
    mut cursor: SyncCursor,
) -> NodeResult<()> {
    applier.start(tally, last).await?;
    applier.wait(tally).await?;
    let (store, key) = (node.store.clone(), channel.channel.clone());
    blocking(move || store.end_stream(&key)).await?;
    if cursor.resync {
        cursor.resync = false;
        let outcome = finish(node, channel, &cursor).await?;
        tally.add(&outcome);
    }
    Ok(())
}

/// A refusal by the sender, with its own code: the admin needs to know why.
fn refusal(e: FederationError) -> NodeError {
    match e {
        FederationError::Refused { error, .. } => {
            NodeError::new(error.code, format!("the sender refused: {}", error.message))
        }
        other => other.into(),
    }
}

/// Copies whole every item the channel marked: new ones whose older rows never came, and refused
/// ones, which are tried again.
async fn copy_pending(node: &Node, channel: &Inbound, tally: &mut Tally) -> NodeResult<()> {
    let store = node.store.clone();
    let key = channel.channel.clone();
    let pending = blocking(move || store.pending_copies(&key)).await?;
    for copy in pending {
        // Refused in this very run: the next run tries again. One of an origin the link may
        // not bring (queued before links were held to their origins) is never asked for.
        if !tally.refused.contains(&copy.origin_item)
            && channel.agreement.origins.allows(&copy.origin_instance)
        {
            copy_item(node, channel, &copy, tally).await?;
        }
    }
    Ok(())
}

async fn copy_item(
    node: &Node,
    channel: &Inbound,
    copy: &PendingCopy,
    tally: &mut Tally,
) -> NodeResult<()> {
    let opened = node
        .federation
        .open_stream(
            federation::Callee::of(&channel.sender, Flows::RECEIVES),
            federation::SYNC_ITEM_PATH,
            &ItemPullRequest {
                link: channel.wire.clone(),
                origin_instance: copy.origin_instance.clone(),
                origin_item: copy.origin_item.clone(),
                encodings: copy_encodings(node),
                run: Some(tally.tag()),
            },
        )
        .await;
    let (response, nonce) = match opened {
        // Still arriving at the sender (a host relaying it): it stays pending here, and a
        // later run copies it once it is all there. The run says so.
        Err(FederationError::Refused { error, .. }) if error.code == ErrorCode::ItemArriving => {
            if tally.refused.insert(copy.origin_item.clone()) {
                tally.run.errors.push(SyncItemError {
                    origin_item: copy.origin_item.clone(),
                    title: copy.title.clone(),
                    code: error.code.as_str().into(),
                    message: error.message,
                });
            }
            return Ok(());
        }
        opened => opened.map_err(refusal)?,
    };
    let mut records = ReadAhead::spawn(response, StreamVerifier::new(&channel.sender, nonce)?);
    let copying = Arc::new(Origin::new(&copy.origin_instance, &copy.origin_item));
    let mut checker = Checker::new(node, channel, tally.tag(), Some(copying));
    let mut ops = Vec::with_capacity(COPY_PART_OPS);
    let part = Arc::new(Mutex::new(CopyPart::default()));
    let mut applier = Applier::default();
    let mut part_bytes = records.line_bytes;
    let mut ended = false;
    let read = loop {
        let record = match records.next().await {
            Ok(Some(record)) => record,
            Ok(None) => break Err(cut("the connection closed")),
            Err(e) => break Err(e),
        };
        match record {
            Incoming::Record(SyncRecord::End { .. }) => ended = true,
            // The end's signature covers the whole copy: its last part goes below.
            Incoming::Verified if ended => break Ok(()),
            // A large item is applied in parts, each once the signature covering it verified,
            // so memory holds one part, not the whole item; each part is applied while the next
            // one is read.
            Incoming::Verified => {
                let fetched = match checker.fetch_files(&mut ops).await {
                    Ok(fetched) => fetched,
                    Err(e) => break Err(e),
                };
                let part_ops = std::mem::replace(&mut ops, Vec::with_capacity(COPY_PART_OPS));
                let next = apply_copy_part(node, channel, copy, part_ops, &part, false);
                if let Err(e) = applier.start(tally, releasing(node, fetched, next)).await {
                    break Err(e);
                }
                part_bytes = records.line_bytes;
            }
            _ if ended => break Err(bad_signature("an end that no signature follows, checked")),
            record => match checker.op(record).await {
                Ok(Some(op)) => {
                    ops.push(op);
                    ops.extend(checker.take_extra());
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            },
        }
        if !checker.errors.is_empty() {
            // Refused: it stays pending, and the next run copies it again.
            break Ok(());
        }
        if records.line_bytes - part_bytes > MAX_BATCH_BYTES {
            break Err(NodeError::new(
                ErrorCode::SyncRefused,
                format!(
                    "the sender sent more than {} MiB of a copy without signing it; this instance does not hold more unchecked",
                    MAX_BATCH_BYTES >> 20
                ),
            ));
        }
    };
    let refused = !checker.errors.is_empty();
    tally.absorb(checker, records.wire_bytes());
    // Parts already applied stay: the next copy of the item sweeps what it does not bring again.
    applier.wait(tally).await?;
    read?;
    if refused {
        return Ok(());
    }
    let last = apply_copy_part(node, channel, copy, ops, &part, true);
    applier.start(tally, last).await?;
    applier.wait(tally).await
}
