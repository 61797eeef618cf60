//! `ferry policy` and `ferry audit`.

use crate::client::{Client, segment};
use crate::output::{Output, table};
use anyhow::Result;
use clap::Subcommand;
use ferry_proto::{AuditEntry, NewPolicyRule, PolicyRule};
use reqwest::Method;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Data coming to this instance, from the instances a rule matches.
    Ingress,
    /// Data leaving this instance, for the instances a rule matches.
    Egress,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// `ferry policy ingress|egress ACTION`, or `ferry policy list` for both directions.
#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCmd {
    /// Rules for data coming to this instance.
    #[command(subcommand)]
    Ingress(PolicyAction),
    /// Rules for data leaving this instance.
    #[command(subcommand)]
    Egress(PolicyAction),
    /// Every rule, both directions.
    List,
}

#[derive(Subcommand, Debug)]
pub(crate) enum PolicyAction {
    /// Allow data to or from instances matching PATTERN: instance:<id>, a CIDR (10.0.0.0/8), or
    /// the host of their URL (*.example.org). Internal addresses need a CIDR rule of their own.
    Allow {
        /// instance:<id>, an address or CIDR range (10.0.0.0/8), or a host name (gis.example.org,
        /// *.example.org).
        pattern: String,
    },
    /// Refuse data to or from instances matching PATTERN, even where an allow rule matches.
    Deny {
        /// instance:<id>, an address or CIDR range (10.0.0.0/8), or a host name (gis.example.org,
        /// *.example.org).
        pattern: String,
    },
    /// List this direction's rules (`ferry policy list`: both directions).
    List,
    /// Remove a rule by id.
    Remove {
        /// The rule's id (`policy <direction> list` shows it).
        id: String,
    },
}

fn rules_table(rules: &[PolicyRule]) -> comfy_table::Table {
    let mut t = table(&["id", "direction", "effect", "pattern", "created"]);
    for r in rules {
        t.add_row(vec![
            r.id.clone(),
            r.direction.clone(),
            r.effect.clone(),
            r.pattern.clone(),
            r.created_at.clone(),
        ]);
    }
    t
}

pub(crate) async fn policy(client: &Client, out: Output, cmd: PolicyCmd) -> Result<()> {
    let (direction, action) = match cmd {
        PolicyCmd::Ingress(action) => (Direction::Ingress, action),
        PolicyCmd::Egress(action) => (Direction::Egress, action),
        PolicyCmd::List => {
            let all: Vec<PolicyRule> = client.get("/api/v1/policies").await?;
            return out.show(&all, |r| rules_table(r));
        }
    };
    let direction = direction.as_str();
    let (effect, pattern) = match action {
        PolicyAction::Allow { pattern } => ("allow", pattern),
        PolicyAction::Deny { pattern } => ("deny", pattern),
        PolicyAction::List => {
            let all: Vec<PolicyRule> = client.get("/api/v1/policies").await?;
            let rules: Vec<PolicyRule> = all
                .into_iter()
                .filter(|r| r.direction == direction)
                .collect();
            return out.show(&rules, |r| rules_table(r));
        }
        PolicyAction::Remove { id } => {
            let rule: PolicyRule = client
                .json(client.request(
                    Method::DELETE,
                    &format!("/api/v1/policies/{}", segment(&id)),
                ))
                .await?;
            return out.done(
                &rule,
                &format!(
                    "Removed {} rule: {} {}.",
                    rule.direction, rule.effect, rule.pattern
                ),
            );
        }
    };
    let new = NewPolicyRule {
        direction: direction.to_string(),
        effect: effect.to_string(),
        pattern,
    };
    let rule: PolicyRule = client.call(Method::POST, "/api/v1/policies", &new).await?;
    out.done(
        &rule,
        &format!("{direction} {effect} {} (rule {}).", rule.pattern, rule.id),
    )
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// Trust and security events, newest first; says when there are older ones.
    List {
        /// Oldest first instead, from after this sequence number (for reading the log through).
        #[arg(long, conflicts_with = "before")]
        after: Option<i64>,
        /// Only entries before this sequence number (the next page of older ones).
        #[arg(long)]
        before: Option<i64>,
        /// How many entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub(crate) async fn audit(client: &Client, out: Output, cmd: AuditCmd) -> Result<()> {
    let AuditCmd::List {
        after,
        before,
        limit,
    } = cmd;
    // One more than shown tells whether there are more.
    let asked = (limit + 1).to_string();
    let query: Vec<(&str, String)> = match after {
        Some(after) => vec![("after", after.to_string()), ("limit", asked)],
        None => {
            let mut q = vec![("newest", "true".to_string()), ("limit", asked)];
            if let Some(before) = before {
                q.push(("before", before.to_string()));
            }
            q
        }
    };
    let mut entries: Vec<AuditEntry> = client
        .json(client.request(Method::GET, "/api/v1/audit").query(&query))
        .await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let shown = out.show(&entries, |e| {
        let mut t = table(&["seq", "at", "actor", "event", "subject", "detail"]);
        for a in e {
            t.add_row(vec![
                a.seq.to_string(),
                a.at.clone(),
                a.actor.clone(),
                a.event.clone(),
                a.subject.clone().unwrap_or_default(),
                a.detail.to_string(),
            ]);
        }
        t
    });
    if more && out.for_people() {
        let next = match (after, entries.last()) {
            (Some(_), Some(last)) => format!("--after {}", last.seq),
            (None, Some(last)) => format!("--before {}", last.seq),
            _ => String::new(),
        };
        eprintln!("There are more entries: `ferry audit list {next}` shows the next {limit}.");
    }
    shown
}
