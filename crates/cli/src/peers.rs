//! `ferry peer`: peer connections between two instances.

use crate::client::{Client, segment};
use crate::output::{Output, fields, table};
use anyhow::Result;
use clap::Subcommand;
use ferry_proto::{
    ImportInviteCode, NewPeerRequest, PeerConnection, PeerRequestCreated, RefreshPeerRequest,
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
    Import { code: String },
    /// List peer connections in every state.
    List,
    /// Show one connection.
    Show { id: String },
    /// Give an unanswered request a new code and expiry; the old code stops working.
    Refresh {
        id: String,
        #[arg(long, default_value = "24h")]
        expires: String,
    },
    /// Withdraw an unanswered request.
    Invalidate { id: String },
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
        ("state", p.state.clone()),
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
                        p.state.clone(),
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
            let p: PeerConnection = client
                .get(&format!("/api/v1/peers/{}", segment(&id)))
                .await?;
            out.show(&p, detail)
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
