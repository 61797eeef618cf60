//! `ferry conflicts`: the concurrent edits two-way editing found on this instance (the origin of
//! the items), with both versions of each row, and their resolution.

use crate::client::Client;
use crate::output::{Output, fields, table};
use anyhow::{Context, Result};
use clap::Subcommand;
use ferry_proto::twoway::{ConflictRecord, ConflictResolution, Fields};
use reqwest::Method;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub(crate) enum ConflictsCmd {
    /// Conflicts, newest first: open ones wait for an admin (`manual` items), settled ones were
    /// decided by the item's policy and can still be changed.
    List {
        /// Only `open`, `settled` or `resolved` ones.
        #[arg(long, value_parser = ["open", "settled", "resolved"])]
        status: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One conflict: both versions of the row, the fields both sides changed, who and when.
    Show {
        /// The conflict's id (`conflicts list` shows it).
        id: String,
    },
    /// Decides a conflict: the row becomes `ours` (this instance's version), `theirs` (the
    /// editing copy's) or `merged` (a JSON object of fields given in FILE, a feature's geometry
    /// as `@geometry`). The decision is an edit of the row that reaches every copy.
    Resolve {
        /// The conflict's id.
        id: String,
        /// Which version to keep.
        #[arg(long, value_parser = ["ours", "theirs", "merged"])]
        keep: String,
        /// With `--keep merged`: the row to keep, as a JSON object.
        file: Option<PathBuf>,
    },
}

pub(crate) async fn conflicts(client: &Client, out: Output, cmd: ConflictsCmd) -> Result<()> {
    match cmd {
        ConflictsCmd::List { status, limit } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                query.push(("status", s));
            }
            let list: Vec<ConflictRecord> = client
                .json(
                    client
                        .request(Method::GET, "/api/v1/conflicts")
                        .query(&query),
                )
                .await?;
            out.show(&list, |list| {
                let mut t = table(&[
                    "id", "status", "kind", "item", "key", "fields", "kept", "from",
                ]);
                for c in list {
                    t.add_row(vec![
                        c.id.clone(),
                        c.status.clone(),
                        c.kind.clone(),
                        c.item_id.to_string(),
                        c.key.to_string(),
                        c.fields.join(", "),
                        c.kept.clone(),
                        c.their_instance.clone(),
                    ]);
                }
                t
            })
        }
        ConflictsCmd::Show { id } => {
            let c: ConflictRecord = client.get(&format!("/api/v1/conflicts/{id}")).await?;
            out.show(&c, detail)
        }
        ConflictsCmd::Resolve { id, keep, file } => {
            let row = match (&file, keep.as_str()) {
                (Some(path), "merged") => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let row: Fields = serde_json::from_str(&text).with_context(|| {
                        format!("{} is not a JSON object of fields", path.display())
                    })?;
                    Some(row)
                }
                (None, "merged") => anyhow::bail!("--keep merged needs FILE: the row to keep"),
                (Some(_), _) => anyhow::bail!("FILE goes only with --keep merged"),
                (None, _) => None,
            };
            let resolved: ConflictRecord = client
                .call(
                    Method::POST,
                    &format!("/api/v1/conflicts/{id}/resolve"),
                    &ConflictResolution { keep, row },
                )
                .await?;
            out.done(
                &resolved,
                &format!("Resolved conflict {}: the row is now the version kept, and syncs to every copy.", resolved.id),
            )
        }
    }
}

fn detail(c: &ConflictRecord) -> comfy_table::Table {
    let version = |row: &Option<Fields>| match row {
        Some(row) => serde_json::to_string(row).unwrap_or_default(),
        None => "(deleted)".to_string(),
    };
    let who = |instance: &Option<String>, at: &Option<ferry_proto::twoway::Stamp>| {
        format!(
            "{} at {}",
            instance.as_deref().unwrap_or("-"),
            at.as_ref().map_or("-".to_string(), |a| clock_time(a.ms))
        )
    };
    fields(&[
        ("id", c.id.clone()),
        ("status", c.status.clone()),
        ("kind", c.kind.clone()),
        ("item", c.item_id.to_string()),
        ("key", c.key.to_string()),
        ("fields", c.fields.join(", ")),
        ("ours", version(&c.ours)),
        ("our change", who(&c.our_instance, &c.our_at)),
        ("theirs", version(&c.theirs)),
        (
            "their edit",
            who(&Some(c.their_instance.clone()), &Some(c.their_at.clone())),
        ),
        ("policy", c.policy.as_str().to_string()),
        ("kept", c.kept.clone()),
        ("found", c.created_at.clone()),
        (
            "resolved",
            match (&c.resolved_at, &c.resolved_by) {
                (Some(at), Some(by)) => format!("{at} by {by}"),
                _ => "-".into(),
            },
        ),
    ])
}

/// A clock reading's milliseconds as Ferry writes times.
fn clock_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
