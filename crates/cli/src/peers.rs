//! `ferry peer`: peer connections between two instances.

use crate::client::{Client, segment};
use crate::output::{Output, fields, table};
use anyhow::Result;
use clap::Subcommand;
use ferry_proto::{
    AcceptPeerResponse, ApprovePeer, ImportInviteCode, NewPeerRequest, PeerApproved, PeerChanged,
    PeerConnection, PeerDetail, PeerRequestCreated, PeerSecurity, PeerSends, PolicyCheck,
    ProposeSecurity, RefreshPeerRequest,
};
use reqwest::Method;

#[derive(Subcommand, Debug)]
pub(crate) enum PeerCmd {
    /// Create a peer request on a local space; prints the invite code for the other admin.
    Request {
        /// The local space the connection links.
        #[arg(long)]
        space: String,
        /// Data types to send: datasets, features, files (comma-separated).
        #[arg(long, default_value = "")]
        export: String,
        /// Data types to receive.
        #[arg(long, default_value = "")]
        import: String,
        /// How long the code stays valid (5m to 30d).
        #[arg(long, default_value = "24h")]
        expires: String,
    },
    /// Check an invite code from another instance and show what it offers (nothing is sent).
    Import {
        /// The invite code (`ferry1-peer-...`) the other instance's admin sent.
        code: String,
    },
    /// List peer connections in every state.
    List,
    /// Show one connection.
    Show {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Give an unanswered request a new code and expiry; the old code stops working.
    Refresh {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
        /// How long the new code stays valid (5m to 30d).
        #[arg(long, default_value = "24h")]
        expires: String,
    },
    /// Withdraw an unanswered request.
    Invalidate {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Approve an imported code: the local space that receives, security, then answer the
    /// originator.
    Approve {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
        /// The local space that takes what the connection brings (and sends what it exports).
        #[arg(long)]
        space: String,
        /// Markings that may leave over this connection (comma-separated); none by default.
        #[arg(long)]
        ceiling: Option<String>,
        /// Markings given to items received over this connection (comma-separated).
        #[arg(long)]
        mark: Option<String>,
        /// Write the signed response to this file instead of sending it (for sites with no path
        /// to the originator); its admin runs `ferry peer accept-response FILE`.
        #[arg(long)]
        response_file: Option<std::path::PathBuf>,
    },
    /// Import a response file written by `ferry peer approve --response-file`.
    AcceptResponse {
        /// The response file the other instance's admin sent.
        file: std::path::PathBuf,
    },
    /// Activate an approved connection (the originator does this); data flows only after.
    Activate {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Stop data on this side; the other side is told.
    Disable {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Resume this side after a disable.
    Enable {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Delete the connection; the other side's copy is revoked.
    Delete {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Check both instances' network policies for each direction the connection carries (the
    /// sender's egress, the receiver's ingress) and say which rule is missing where.
    Check {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Propose new security settings for this side; they apply once the other side approves.
    Security {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
        /// Markings that may leave over this connection (comma-separated; empty for none).
        #[arg(long)]
        ceiling: Option<String>,
        /// Markings given to items received over this connection (comma-separated).
        #[arg(long)]
        mark: Option<String>,
    },
    /// Send fewer data types from now on (more would need a new connection); the other side
    /// retracts items of the types left out at its next run.
    Sends {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
        /// The data types to go on sending (comma-separated; `none` for nothing).
        #[arg(long)]
        types: String,
    },
    /// Approve the security change the other side proposed.
    ApproveChange {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
    /// Reject the security change the other side proposed.
    RejectChange {
        /// The connection's id on this instance (`peer list` shows it; each side has its own).
        id: String,
    },
}

fn changed(out: Output, c: &PeerChanged, what: &str) -> Result<()> {
    let told = if c.notified {
        "the other instance was told".to_string()
    } else {
        format!(
            "the other instance could not be told: {}",
            c.notice_error.clone().unwrap_or_default()
        )
    };
    out.done(
        c,
        &format!("Connection {} {what}; {told}.", c.connection.id),
    )
}

fn split(types: &str) -> Vec<String> {
    types
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn detail(p: &PeerConnection) -> comfy_table::Table {
    let mut rows = vec![
        ("id", p.id.clone()),
        ("role", p.role.clone()),
        ("state", state_label(p)),
        ("carries data", p.carries_data.to_string()),
        (
            "local space",
            p.space
                .clone()
                .unwrap_or_else(|| "(chosen at approval)".into()),
        ),
        ("offered space", p.offered_space.clone()),
        ("this side sends", p.sends.join(", ")),
        ("this side receives", p.receives.join(", ")),
    ];
    if let Some(peer) = &p.peer {
        rows.push(("peer", format!("{} ({})", peer.title, peer.url)));
        rows.push(("peer instance", peer.instance_id.clone()));
        rows.push(("peer fingerprint", peer.fingerprint.clone()));
    }
    if let Some(e) = &p.expires_at {
        rows.push(("code expires", e.clone()));
    }
    for warning in &p.warnings {
        rows.push(("WARNING", warning.clone()));
    }
    let ceiling = |s: &ferry_proto::PeerSecurity| {
        s.ceiling
            .as_ref()
            .map_or("(no marked items leave)".to_string(), |c| c.join(", "))
    };
    rows.push(("ceiling", ceiling(&p.security)));
    rows.push(("marks received items", p.security.mark.join(", ")));
    if let Some(pending) = &p.pending_security {
        let who = if pending.proposed_by == "here" {
            "proposed here, waiting for the peer"
        } else {
            "proposed by the peer: approve-change or reject-change"
        };
        rows.push((
            "pending change",
            format!(
                "ceiling {}; mark {} ({who})",
                ceiling(&pending.security),
                pending.security.mark.join(", ")
            ),
        ));
    }
    fields(&rows)
}

pub(crate) async fn peer(client: &Client, out: Output, cmd: PeerCmd) -> Result<()> {
    match cmd {
        PeerCmd::Request {
            space,
            export,
            import,
            expires,
        } => {
            let new = NewPeerRequest {
                space,
                export: split(&export),
                import: split(&import),
                expires_in: Some(expires),
            };
            let created: PeerRequestCreated = client
                .call(Method::POST, "/api/v1/peers/requests", &new)
                .await?;
            let message = format!(
                "Peer request {} on space '{}' (expires {}). Give this invite code to the other instance's admin:\n{}",
                created.connection.id,
                created.connection.offered_space,
                created.connection.expires_at.clone().unwrap_or_default(),
                created.code
            );
            out.done(&created, &message)
        }
        PeerCmd::Import { code } => {
            let p: PeerConnection = client
                .call(
                    Method::POST,
                    "/api/v1/peers/import",
                    &ImportInviteCode { code },
                )
                .await?;
            out.show(&p, detail)
        }
        PeerCmd::List => {
            let peers: Vec<PeerConnection> = client.get("/api/v1/peers").await?;
            out.show(&peers, |list| {
                let mut t = table(&["id", "role", "state", "peer", "space", "sends", "receives"]);
                for p in list {
                    let peer = p.peer.as_ref().map(|i| i.title.clone()).unwrap_or_default();
                    let space = p.space.clone().unwrap_or_default();
                    t.add_row(vec![
                        p.id.clone(),
                        p.role.clone(),
                        state_label(p),
                        peer,
                        space,
                        p.sends.join(","),
                        p.receives.join(","),
                    ]);
                }
                t
            })
        }
        PeerCmd::Show { id } => {
            let shown: PeerDetail = client
                .get(&format!("/api/v1/peers/{}", segment(&id)))
                .await?;
            out.show(&shown, |d| {
                let mut t = detail(&d.connection);
                let history: Vec<String> = d
                    .history
                    .iter()
                    .map(|e| format!("{}  {}  by {}", e.at, e.event, e.actor))
                    .collect();
                t.add_row(vec!["history".to_string(), history.join("\n")]);
                t
            })
        }
        PeerCmd::Refresh { id, expires } => {
            let path = format!("/api/v1/peers/{}/refresh", segment(&id));
            let created: PeerRequestCreated = client
                .call(
                    Method::POST,
                    &path,
                    &RefreshPeerRequest {
                        expires_in: Some(expires),
                    },
                )
                .await?;
            out.done(
                &created,
                &format!(
                    "New invite code (the old one no longer works):\n{}",
                    created.code
                ),
            )
        }
        PeerCmd::Approve {
            id,
            space,
            ceiling,
            mark,
            response_file,
        } => {
            let security = PeerSecurity {
                ceiling: ceiling.as_deref().map(split),
                mark: mark.as_deref().map(split).unwrap_or_default(),
            };
            let body = ApprovePeer {
                space,
                security,
                response_file: response_file.is_some(),
            };
            let approved: PeerApproved = client
                .call(
                    Method::POST,
                    &format!("/api/v1/peers/{}/approve", segment(&id)),
                    &body,
                )
                .await?;
            match (response_file, &approved.response) {
                (Some(path), Some(text)) => {
                    std::fs::write(&path, format!("{text}\n"))?;
                    out.done(&approved, &format!("Approved. Give {} to the originator's admin: `ferry peer accept-response FILE`.", path.display()))
                }
                _ => out.done(
                    &approved,
                    "Approved; the originator was told and can now activate the connection.",
                ),
            }
        }
        PeerCmd::AcceptResponse { file } => {
            let response = std::fs::read_to_string(&file)?;
            let p: PeerConnection = client
                .call(
                    Method::POST,
                    "/api/v1/peers/accept-response",
                    &AcceptPeerResponse { response },
                )
                .await?;
            out.show(&p, detail)
        }
        PeerCmd::Activate { id } => {
            let p: PeerConnection = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/activate", segment(&id)),
                ))
                .await?;
            out.done(&p, &format!("Connection {} is active on both sides.", p.id))
        }
        PeerCmd::Disable { id } => {
            let c: PeerChanged = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/disable", segment(&id)),
                ))
                .await?;
            changed(out, &c, "disabled")
        }
        PeerCmd::Enable { id } => {
            let c: PeerChanged = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/enable", segment(&id)),
                ))
                .await?;
            changed(out, &c, "enabled")
        }
        PeerCmd::Delete { id } => {
            let c: PeerChanged = client
                .json(client.request(Method::DELETE, &format!("/api/v1/peers/{}", segment(&id))))
                .await?;
            changed(out, &c, "deleted")
        }
        PeerCmd::Check { id } => {
            let check: PolicyCheck = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/check", segment(&id)),
                ))
                .await?;
            show_policy_check(out, &check)
        }
        PeerCmd::Security { id, ceiling, mark } => {
            let security = PeerSecurity {
                ceiling: ceiling.as_deref().map(split),
                mark: mark.as_deref().map(split).unwrap_or_default(),
            };
            let path = format!("/api/v1/peers/{}/security", segment(&id));
            let p: PeerConnection = client
                .call(Method::POST, &path, &ProposeSecurity { security })
                .await?;
            out.done(
                &p,
                "Proposed; the change applies once the other instance's admin approves it.",
            )
        }
        PeerCmd::Sends { id, types } => {
            let path = format!("/api/v1/peers/{}/sends", segment(&id));
            let body = PeerSends {
                sends: split(&types),
            };
            let p: PeerConnection = client.call(Method::PUT, &path, &body).await?;
            let now = match p.sends.join(", ") {
                names if names.is_empty() => "nothing".to_string(),
                names => names,
            };
            out.done(&p, &format!("The connection now sends {now}."))
        }
        PeerCmd::ApproveChange { id } => {
            let p: PeerConnection = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/security/approve", segment(&id)),
                ))
                .await?;
            out.done(
                &p,
                "Approved; the other side's new security settings apply now.",
            )
        }
        PeerCmd::RejectChange { id } => {
            let p: PeerConnection = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/security/reject", segment(&id)),
                ))
                .await?;
            out.done(&p, "Rejected; the other side keeps its current settings.")
        }
        PeerCmd::Invalidate { id } => {
            let p: PeerConnection = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/peers/{}/invalidate", segment(&id)),
                ))
                .await?;
            out.done(
                &p,
                &format!("Request {} withdrawn; its code no longer works.", p.id),
            )
        }
    }
}

/// A policy check as a table (flow, instance, rule, ok, finding); fails when a rule is missing.
pub(crate) fn show_policy_check(out: Output, check: &PolicyCheck) -> anyhow::Result<()> {
    let result = out.show(check, |c| {
        let mut t = table(&["flow", "instance", "rule", "ok", "finding"]);
        for f in &c.findings {
            t.add_row(vec![
                f.flow.clone(),
                f.instance.clone(),
                f.rule.clone(),
                if f.ok { "yes" } else { "NO" }.to_string(),
                f.message.clone(),
            ]);
        }
        t
    });
    if check.ok {
        result
    } else {
        result.and(Err(anyhow::anyhow!(
            "a rule is missing; see the findings above"
        )))
    }
}

/// A connection's state for people: a disabled one says so, and which side disabled it.
fn state_label(p: &PeerConnection) -> String {
    match (p.disabled_here, p.disabled_there) {
        (false, false) => p.state.clone(),
        (true, false) => format!("{}, disabled here", p.state),
        (false, true) => format!("{}, disabled by the peer", p.state),
        (true, true) => format!("{}, disabled on both sides", p.state),
    }
}
