//! `ferry collab`: collaborations with one host and many guests.

use crate::client::{Client, segment};
use crate::output::{Output, fields, table};
use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use ferry_proto::{
    AcceptInvitation, CollabChanged, CollabDetail, Collaboration, GuestResponse,
    InvitationAccepted, InvitationCode, InvitationCreated, InvitationPreview, InvitationView,
    LinkSpace, NewCollab, NewInvitation, NewWorkspace, RefreshInvitation, SetAccess,
    SetDeletePolicy, WorkspaceConfig, WorkspacePatch,
};
use reqwest::Method;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// COLLAB arguments take a collaboration's id or its name.
#[derive(Subcommand, Debug)]
pub(crate) enum CollabCmd {
    /// Create a collaboration hosted by this instance, with its first workspace.
    Create {
        /// The collaboration's name (1-100 characters).
        name: String,
        /// What the collaboration is for, for its guests.
        #[arg(long)]
        description: Option<String>,
        /// Name of the first workspace.
        #[arg(long)]
        workspace: String,
        /// This instance's space linked to the first workspace.
        #[arg(long)]
        space: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List collaborations this instance hosts or joined, in every state.
    List,
    /// Show a collaboration: role, state, workspaces, this instance's links and modes, the
    /// other participants, and its history.
    Show {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
    },
    /// Delete a collaboration this instance hosts; guests are told. Spaces and items stay.
    Delete {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
    },
    /// Workspaces of a collaboration.
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// Invite a guest instance (host): writes a signed invitation to hand to its admin.
    Invite {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
        /// The guest instance's public URL; only that instance can accept.
        #[arg(long)]
        guest_url: String,
        /// WORKSPACE=MODE, repeat per workspace. Modes are the guest's: send (the guest sends to
        /// the host), receive (the guest receives from the host), or send_receive.
        #[arg(long = "access", required = true)]
        access: Vec<String>,
        /// How long the invitation stays valid (5m to 30d).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// Where to write the invitation (default: invitation-<id>.txt here).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// A collaboration's invitations (host).
    #[command(subcommand)]
    Invitation(InvitationCmd),
    /// Check an invitation, show what it offers, and accept it (guest).
    Accept {
        /// The invitation file (or the invitation text itself).
        invitation: String,
        /// Who the host's people can contact here (name, e-mail, phone).
        #[arg(long, default_value = "")]
        contact: String,
        /// Write the signed response to this file instead of sending it to the host (for sites
        /// with no path to the host); its admin runs `ferry collab import-response`.
        #[arg(long)]
        response_file: Option<PathBuf>,
        /// Only show what the invitation offers; accept nothing.
        #[arg(long)]
        inspect: bool,
    },
    /// Import a guest's response file (host).
    ImportResponse {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
        /// The response file the guest's admin sent.
        file: PathBuf,
    },
    /// Link one of this instance's spaces to a workspace. Nobody else learns which space.
    Link {
        /// Workspace id or name.
        workspace: String,
        /// This instance's space to link (name or id); nobody else learns which.
        #[arg(long)]
        space: String,
        /// The collaboration, when the workspace name alone is ambiguous.
        #[arg(long)]
        collab: Option<String>,
        /// A guest's choice for the feature layers it sends: `copies`, `references`, or
        /// `workspace` (as the host set the workspace). An item's own `--sync-as copy|reference`
        /// comes first; a two-way workspace takes copies only.
        #[arg(long, default_value = "workspace", value_parser = ["copies", "references", "workspace"])]
        share: String,
    },
    /// Change how this guest's link sends its own feature layers; receivers convert what was
    /// sent before at their next run.
    Share {
        /// Workspace id or name.
        workspace: String,
        /// `copies`, `references`, or `workspace` (as the host set the workspace).
        #[arg(long, value_parser = ["copies", "references", "workspace"])]
        share: String,
        /// The collaboration, when the workspace name alone is ambiguous.
        #[arg(long)]
        collab: Option<String>,
    },
    /// Unlink this instance's space from a workspace; the space and its items stay.
    Unlink {
        /// The workspace, by name or id.
        workspace: String,
        /// The collaboration, by name or id (`collab list` shows them).
        #[arg(long)]
        collab: Option<String>,
    },
    /// Set a guest's access modes (host): WORKSPACE=MODE, MODE `none` takes it out.
    Access {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
        /// The guest's title, instance id or participant id.
        guest: String,
        /// WORKSPACE=MODE, MODE one of send (the guest sends to the host), receive (the guest
        /// receives), send_receive, or none (takes the guest out of the workspace); repeat per
        /// workspace.
        #[arg(long = "access", required = true)]
        access: Vec<String>,
    },
    /// Remove a guest (host); it is told, and its calls are refused from then on.
    RemoveGuest {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
        /// The guest, by title, instance id or participant id.
        guest: String,
    },
    /// Set this guest's sync schedule for a workspace: every 1h to 24h (default 24h), from a first
    /// run time; or pause and resume it.
    Schedule {
        /// The workspace, by name or id.
        workspace: String,
        /// The collaboration, by name or id (`collab list` shows them).
        #[arg(long)]
        collab: Option<String>,
        /// Interval, e.g. 6h or 90m.
        #[arg(long)]
        every: Option<String>,
        /// RFC 3339 time of the first run.
        #[arg(long)]
        start: Option<String>,
        /// Pause this guest's scheduled runs of the workspace.
        #[arg(long, conflicts_with = "resume")]
        pause: bool,
        /// Resume them.
        #[arg(long)]
        resume: bool,
    },
    /// Leave a collaboration (guest); the host is told. Spaces and items stay.
    Leave {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
    },
    /// Catch up with the host now (guest).
    Refresh {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
    },
    /// What happens to items this instance received when a workspace or the collaboration ends
    /// for it: keep (default) or delete.
    DeletePolicy {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
        /// keep (received items stay when a workspace or the collaboration ends for this instance)
        /// or delete.
        policy: String,
    },
    /// Check both sides' network policies for every direction the collaboration carries (on a
    /// host: with each guest; on a guest: with its host), and say which rule is missing where.
    Check {
        /// The collaboration, by name or id (`collab list` shows them).
        collab: String,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ConfigArgs {
    /// Share feature layers by reference (receivers read from the origin) instead of copies.
    #[arg(long)]
    reference: bool,
    /// The largest item the workspace carries, in bytes (default 1 GiB).
    #[arg(long)]
    max_item_bytes: Option<u64>,
    /// Allow two-way editing of feature layers (copies only).
    #[arg(long)]
    two_way: bool,
}

impl ConfigArgs {
    fn config(&self) -> WorkspaceConfig {
        let defaults = WorkspaceConfig::default();
        WorkspaceConfig {
            feature_layers: if self.reference { "reference" } else { "copy" }.into(),
            max_item_bytes: self.max_item_bytes.unwrap_or(defaults.max_item_bytes),
            two_way_editing: self.two_way,
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum WorkspaceCmd {
    /// Add a workspace (host), link this instance's space, set existing guests' modes in it.
    Add {
        /// The collaboration, by name or id.
        collab: String,
        /// The new workspace's name (1-100 characters).
        name: String,
        /// The host's space linked to the workspace (name or id).
        #[arg(long)]
        space: String,
        /// What the workspace is for, for its guests.
        #[arg(long, default_value = "")]
        description: String,
        /// GUEST=MODE for guests taking part; repeat per guest.
        #[arg(long = "access")]
        access: Vec<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List a collaboration's workspaces.
    List {
        /// The collaboration, by name or id.
        collab: String,
    },
    /// Change a workspace's name, description or config (host).
    Update {
        /// The collaboration, by name or id.
        collab: String,
        /// The workspace, by name or id.
        workspace: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// What the workspace is for, for its guests.
        #[arg(long)]
        description: Option<String>,
        /// Replace the config with the one these flags give.
        #[arg(long)]
        set_config: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Delete a workspace (host). Linked spaces and items stay.
    Delete {
        /// The collaboration, by name or id.
        collab: String,
        /// The workspace, by name or id.
        workspace: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum InvitationCmd {
    /// List invitations and their states.
    List {
        /// The collaboration, by name or id.
        collab: String,
    },
    /// A new code and expiry for an open invitation; the old code stops working.
    Refresh {
        /// The collaboration, by name or id.
        collab: String,
        /// The invitation's id (`collab invitation list` shows it).
        id: String,
        /// How long the new invitation stays valid (5m to 30d).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// Where to write the new invitation (default: invitation-<id>.txt here).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Withdraw an open invitation.
    Invalidate {
        /// The collaboration, by name or id.
        collab: String,
        /// The invitation's id (`collab invitation list` shows it).
        id: String,
    },
}

/// `KEY=VALUE` pairs, as given on the command line.
fn pairs(args: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow!("'{a}' is not {what}=MODE"))
        })
        .collect()
}

/// A share mode clap already checked.
fn share_mode(text: &str) -> ferry_proto::ShareMode {
    ferry_proto::ShareMode::parse(text).unwrap_or_default()
}

/// The collaboration a reference names: an id, or a name that only one collaboration has.
async fn resolve(client: &Client, reference: &str) -> Result<Collaboration> {
    let all: Vec<Collaboration> = client.get("/api/v1/collabs").await?;
    if let Some(c) = all.iter().find(|c| c.id == reference) {
        return Ok(c.clone());
    }
    let named: Vec<&Collaboration> = all.iter().filter(|c| c.name == reference).collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no collaboration '{reference}' here; `ferry collab list` shows them"),
        _ => bail!("several collaborations are named '{reference}'; give its id instead"),
    }
}

/// The collaboration holding a workspace, from `--collab` or, without it, the only one with a
/// workspace of that id or name.
async fn resolve_workspace(
    client: &Client,
    workspace: &str,
    collab: Option<&str>,
) -> Result<Collaboration> {
    if let Some(c) = collab {
        return resolve(client, c).await;
    }
    let all: Vec<Collaboration> = client.get("/api/v1/collabs").await?;
    let holding: Vec<&Collaboration> = all
        .iter()
        .filter(|c| !matches!(c.state.as_str(), "left" | "removed" | "deleted"))
        .filter(|c| {
            c.workspaces
                .iter()
                .any(|w| w.id == workspace || w.name == workspace)
        })
        .collect();
    match holding.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!(
            "no collaboration here has a workspace '{workspace}'; `ferry collab list` shows them"
        ),
        _ => bail!("several collaborations have a workspace '{workspace}'; add --collab"),
    }
}

fn summary(c: &Collaboration) -> Vec<(&'static str, String)> {
    vec![
        ("id", c.id.clone()),
        ("name", c.name.clone()),
        ("description", c.description.clone()),
        ("this instance is", c.role.clone()),
        ("state", c.state.clone()),
        (
            "host",
            format!(
                "{} ({}, fingerprint {})",
                c.host.title, c.host.url, c.host.fingerprint
            ),
        ),
        ("delete policy", c.delete_policy.clone()),
    ]
}

/// A mode with what it means: modes are the guest's.
fn mode_words(mode: &str) -> String {
    let meaning = match mode {
        "send" => "the guest sends to the host",
        "receive" => "the guest receives from the host",
        "send_receive" => "the guest sends and receives",
        "host" => "sends and receives",
        _ => return mode.to_string(),
    };
    format!("{mode} ({meaning})")
}

fn workspace_lines(c: &Collaboration) -> String {
    c.workspaces
        .iter()
        .map(|w| {
            let mut line = format!(
                "{} [{}]: mode {}, linked space {}, layers as {}{}{}",
                w.name,
                w.id,
                mode_words(&w.my_mode),
                w.linked_space.as_deref().unwrap_or("(none)"),
                w.config.feature_layers,
                match w.share {
                    Some(share) if share != ferry_proto::ShareMode::Workspace => {
                        format!(" (ours as {})", share.as_str())
                    }
                    _ => String::new(),
                },
                if w.config.two_way_editing {
                    ", two-way editing"
                } else {
                    ""
                }
            );
            if !w.guests.is_empty() {
                let guests: Vec<String> = w
                    .guests
                    .iter()
                    .map(|g| format!("{}={}", g.title, mode_words(&g.mode)))
                    .collect();
                line.push_str(&format!("; guests {}", guests.join(", ")));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn participant_lines(c: &Collaboration) -> String {
    c.participants
        .iter()
        .map(|p| {
            let mut line = format!("{} ({}, {})", p.title, p.role, p.status);
            if p.is_self {
                line.push_str(" - this instance");
            }
            if let Some(i) = &p.instance {
                line.push_str(&format!(" {}", i.url));
            }
            if let Some(contact) = p.contact.as_ref().filter(|c| !c.is_empty()) {
                line.push_str(&format!(", contact: {contact}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn detail(c: &Collaboration) -> comfy_table::Table {
    let mut rows = summary(c);
    rows.push(("workspaces", workspace_lines(c)));
    rows.push(("participants", participant_lines(c)));
    for warning in &c.warnings {
        rows.push(("WARNING", warning.clone()));
    }
    fields(&rows)
}

fn changed_message(c: &CollabChanged, what: &str) -> String {
    if c.not_notified.is_empty() {
        format!("{what}; every participant concerned was told.")
    } else {
        format!(
            "{what}; not told yet (they catch up at their next contact): {}.",
            c.not_notified.join(", ")
        )
    }
}

fn write_invitation(created: &InvitationCreated, file: Option<PathBuf>) -> Result<PathBuf> {
    let short: String = created.invitation.id.chars().take(8).collect();
    let path = file.unwrap_or_else(|| PathBuf::from(format!("invitation-{short}.txt")));
    std::fs::write(&path, format!("{}\n", created.code))?;
    Ok(path)
}

/// An invitation argument: a file's content, or the text itself.
fn invitation_text(arg: &str) -> Result<String> {
    if arg.trim_start().starts_with("ferry1-") {
        return Ok(arg.trim().to_string());
    }
    std::fs::read_to_string(arg)
        .map(|t| t.trim().to_string())
        .map_err(|e| anyhow!("cannot read invitation file '{arg}': {e}"))
}

fn preview_table(p: &InvitationPreview) -> comfy_table::Table {
    let workspaces: Vec<String> = p
        .workspaces
        .iter()
        .map(|w| {
            let description = if w.description.is_empty() {
                String::new()
            } else {
                format!(" - {}", w.description)
            };
            format!("{}: {}{description}", w.name, mode_words(&w.mode))
        })
        .collect();
    fields(&[
        (
            "collaboration",
            format!("{} [{}]", p.collaboration, p.collaboration_id),
        ),
        (
            "host",
            format!(
                "{} ({}), instance {}",
                p.host.title, p.host.url, p.host.instance_id
            ),
        ),
        ("host fingerprint", p.host.fingerprint.clone()),
        ("offered workspaces (mode)", workspaces.join("\n")),
        ("expires", p.expires_at.clone()),
    ])
}

pub(crate) async fn collab(client: &Client, out: Output, cmd: CollabCmd) -> Result<()> {
    match cmd {
        CollabCmd::Create {
            name,
            description,
            workspace,
            space,
            config,
        } => {
            let new = NewCollab {
                name,
                description: description.unwrap_or_default(),
                workspaces: vec![NewWorkspace {
                    name: workspace,
                    description: String::new(),
                    config: config.config(),
                    space,
                    access: BTreeMap::new(),
                }],
            };
            let c: Collaboration = client.call(Method::POST, "/api/v1/collabs", &new).await?;
            out.done(
                &c,
                &format!(
                    "Collaboration '{}' created ({}); invite guests with `ferry collab invite {} --guest-url URL --access {}=MODE`.",
                    c.name, c.id, c.name, c.workspaces[0].name
                ),
            )
        }
        CollabCmd::List => {
            let all: Vec<Collaboration> = client.get("/api/v1/collabs").await?;
            out.show(&all, |list| {
                let mut t = table(&[
                    "id",
                    "name",
                    "role",
                    "state",
                    "host",
                    "workspaces",
                    "participants",
                ]);
                for c in list {
                    t.add_row(vec![
                        c.id.clone(),
                        c.name.clone(),
                        c.role.clone(),
                        c.state.clone(),
                        c.host.title.clone(),
                        c.workspaces.len().to_string(),
                        c.participants.len().to_string(),
                    ]);
                }
                t
            })
        }
        CollabCmd::Check { collab } => {
            let id = resolve(client, &collab).await?.id;
            let check: ferry_proto::PolicyCheck = client
                .json(client.request(
                    Method::POST,
                    &format!("/api/v1/collabs/{}/check", segment(&id)),
                ))
                .await?;
            crate::peers::show_policy_check(out, &check)
        }
        CollabCmd::Show { collab } => {
            let id = resolve(client, &collab).await?.id;
            let shown: CollabDetail = client
                .get(&format!("/api/v1/collabs/{}", segment(&id)))
                .await?;
            out.show(&shown, |d| {
                let mut t = detail(&d.collaboration);
                let history: Vec<String> = d
                    .history
                    .iter()
                    .map(|e| format!("{}  {}  by {}", e.at, e.event, e.actor))
                    .collect();
                t.add_row(vec!["history".to_string(), history.join("\n")]);
                t
            })
        }
        CollabCmd::Delete { collab } => {
            let id = resolve(client, &collab).await?.id;
            let c: CollabChanged = client
                .json(client.request(Method::DELETE, &format!("/api/v1/collabs/{}", segment(&id))))
                .await?;
            out.done(&c, &changed_message(&c, "Collaboration deleted"))
        }
        CollabCmd::Workspace(cmd) => workspace(client, out, cmd).await,
        CollabCmd::Invite {
            collab,
            guest_url,
            access,
            expires,
            file,
        } => {
            let id = resolve(client, &collab).await?.id;
            let new = NewInvitation {
                guest_url,
                access: pairs(&access, "WORKSPACE")?,
                expires_in: Some(expires),
            };
            let created: InvitationCreated = client
                .call(
                    Method::POST,
                    &format!("/api/v1/collabs/{}/invitations", segment(&id)),
                    &new,
                )
                .await?;
            let path = write_invitation(&created, file)?;
            out.done(
                &created,
                &format!(
                    "Invitation {} for {} (expires {}) written to {}. Give it to that instance's admin: `ferry collab accept {}`.\n{}",
                    created.invitation.id,
                    created.invitation.guest_url,
                    created.invitation.expires_at,
                    path.display(),
                    path.display(),
                    created.code
                ),
            )
        }
        CollabCmd::Invitation(cmd) => invitation(client, out, cmd).await,
        CollabCmd::Accept {
            invitation,
            contact,
            response_file,
            inspect,
        } => {
            let code = invitation_text(&invitation)?;
            let preview: InvitationPreview = client
                .call(
                    Method::POST,
                    "/api/v1/collabs/invitations/preview",
                    &InvitationCode { code: code.clone() },
                )
                .await?;
            if inspect {
                return out.show(&preview, preview_table);
            }
            if out.for_people() {
                println!(
                    "{}",
                    crate::output::for_terminal(&preview_table(&preview).to_string())
                );
            }
            let body = AcceptInvitation {
                code,
                contact,
                response_file: response_file.is_some(),
            };
            let accepted: InvitationAccepted = client
                .call(Method::POST, "/api/v1/collabs/accept", &body)
                .await?;
            match (response_file, &accepted.response) {
                (Some(path), Some(text)) => {
                    std::fs::write(&path, format!("{text}\n"))?;
                    out.done(
                        &accepted,
                        &format!(
                            "Accepted. Give {} to the host's admin: `ferry collab import-response {} FILE`. Then link a space: `ferry collab link WORKSPACE --space SPACE`.",
                            path.display(),
                            accepted.collaboration.id
                        ),
                    )
                }
                _ => out.done(
                    &accepted,
                    &format!(
                        "Joined '{}'; the host confirmed. Link a space to each workspace: `ferry collab link WORKSPACE --space SPACE`.",
                        accepted.collaboration.name
                    ),
                ),
            }
        }
        CollabCmd::ImportResponse { collab, file } => {
            let id = resolve(client, &collab).await?.id;
            let response = std::fs::read_to_string(&file)
                .map_err(|e| anyhow!("cannot read response file '{}': {e}", file.display()))?;
            let c: CollabChanged = client
                .call(
                    Method::POST,
                    &format!("/api/v1/collabs/{}/responses", segment(&id)),
                    &GuestResponse { response },
                )
                .await?;
            out.done(&c, &changed_message(&c, "The guest joined"))
        }
        CollabCmd::Link {
            workspace,
            space,
            collab,
            share,
        } => {
            let c = resolve_workspace(client, &workspace, collab.as_deref()).await?;
            let path = format!(
                "/api/v1/collabs/{}/workspaces/{}/link",
                segment(&c.id),
                segment(&workspace)
            );
            let linked: Collaboration = client
                .call(
                    Method::POST,
                    &path,
                    &LinkSpace {
                        space: space.clone(),
                        share: share_mode(&share),
                    },
                )
                .await?;
            out.done(
                &linked,
                &format!(
                    "Space '{space}' is linked to workspace '{workspace}' of '{}'.",
                    c.name
                ),
            )
        }
        CollabCmd::Share {
            workspace,
            share,
            collab,
        } => {
            let c = resolve_workspace(client, &workspace, collab.as_deref()).await?;
            let path = format!(
                "/api/v1/collabs/{}/workspaces/{}/share",
                segment(&c.id),
                segment(&workspace)
            );
            let body = ferry_proto::SetShare {
                share: share_mode(&share),
            };
            let changed: Collaboration = client.call(Method::PUT, &path, &body).await?;
            out.done(
                &changed,
                &format!(
                    "This instance's feature layers go to workspace '{workspace}' as {share} now; receivers convert what came before at their next run."
                ),
            )
        }
        CollabCmd::Unlink { workspace, collab } => {
            let c = resolve_workspace(client, &workspace, collab.as_deref()).await?;
            let path = format!(
                "/api/v1/collabs/{}/workspaces/{}/link",
                segment(&c.id),
                segment(&workspace)
            );
            let unlinked: Collaboration =
                client.json(client.request(Method::DELETE, &path)).await?;
            out.done(
                &unlinked,
                &format!("Workspace '{workspace}' has no linked space here now; the space and its items stay."),
            )
        }
        CollabCmd::Access {
            collab,
            guest,
            access,
        } => {
            let id = resolve(client, &collab).await?.id;
            let path = format!(
                "/api/v1/collabs/{}/guests/{}/access",
                segment(&id),
                segment(&guest)
            );
            let body = SetAccess {
                access: pairs(&access, "WORKSPACE")?,
            };
            let c: CollabChanged = client.call(Method::POST, &path, &body).await?;
            out.done(&c, &changed_message(&c, "Access modes set"))
        }
        CollabCmd::RemoveGuest { collab, guest } => {
            let id = resolve(client, &collab).await?.id;
            let path = format!(
                "/api/v1/collabs/{}/guests/{}/remove",
                segment(&id),
                segment(&guest)
            );
            let c: CollabChanged = client.json(client.request(Method::POST, &path)).await?;
            out.done(&c, &changed_message(&c, "Guest removed"))
        }
        CollabCmd::Schedule {
            workspace,
            collab,
            every,
            start,
            pause,
            resume,
        } => {
            let c = resolve_workspace(client, &workspace, collab.as_deref()).await?;
            let w = c
                .workspaces
                .iter()
                .find(|w| w.id == workspace || w.name == workspace)
                .map(|w| w.id.clone())
                .unwrap_or(workspace);
            let body = ferry_proto::SetSchedule {
                link: format!("collab:{}:{w}", c.id),
                every,
                start,
                paused: (pause || resume).then_some(pause),
            };
            crate::sync::set(client, out, body).await
        }
        CollabCmd::Leave { collab } => {
            let id = resolve(client, &collab).await?.id;
            let path = format!("/api/v1/collabs/{}/leave", segment(&id));
            let c: CollabChanged = client.json(client.request(Method::POST, &path)).await?;
            out.done(&c, &changed_message(&c, "Left the collaboration"))
        }
        CollabCmd::Refresh { collab } => {
            let id = resolve(client, &collab).await?.id;
            let path = format!("/api/v1/collabs/{}/refresh", segment(&id));
            let c: Collaboration = client.json(client.request(Method::POST, &path)).await?;
            out.show(&c, detail)
        }
        CollabCmd::DeletePolicy { collab, policy } => {
            let id = resolve(client, &collab).await?.id;
            let path = format!("/api/v1/collabs/{}/delete-policy", segment(&id));
            let c: Collaboration = client
                .call(
                    Method::PUT,
                    &path,
                    &SetDeletePolicy {
                        delete_policy: policy,
                    },
                )
                .await?;
            out.done(
                &c,
                &format!(
                    "Delete policy of '{}' is now '{}'.",
                    c.name, c.delete_policy
                ),
            )
        }
    }
}

async fn workspace(client: &Client, out: Output, cmd: WorkspaceCmd) -> Result<()> {
    match cmd {
        WorkspaceCmd::Add {
            collab,
            name,
            space,
            description,
            access,
            config,
        } => {
            let id = resolve(client, &collab).await?.id;
            let new = NewWorkspace {
                name: name.clone(),
                description,
                config: config.config(),
                space,
                access: pairs(&access, "GUEST")?,
            };
            let c: CollabChanged = client
                .call(
                    Method::POST,
                    &format!("/api/v1/collabs/{}/workspaces", segment(&id)),
                    &new,
                )
                .await?;
            out.done(
                &c,
                &changed_message(&c, &format!("Workspace '{name}' added")),
            )
        }
        WorkspaceCmd::List { collab } => {
            let c = resolve(client, &collab).await?;
            out.show(&c.workspaces, |list| {
                let mut t = table(&[
                    "id",
                    "name",
                    "description",
                    "my mode",
                    "linked space",
                    "layers as",
                ]);
                for w in list {
                    t.add_row(vec![
                        w.id.clone(),
                        w.name.clone(),
                        w.description.clone(),
                        w.my_mode.clone(),
                        w.linked_space.clone().unwrap_or_default(),
                        w.config.feature_layers.clone(),
                    ]);
                }
                t
            })
        }
        WorkspaceCmd::Update {
            collab,
            workspace,
            name,
            description,
            set_config,
            config,
        } => {
            let id = resolve(client, &collab).await?.id;
            let patch = WorkspacePatch {
                name,
                description,
                config: set_config.then(|| config.config()),
            };
            let path = format!(
                "/api/v1/collabs/{}/workspaces/{}",
                segment(&id),
                segment(&workspace)
            );
            let c: CollabChanged = client.call(Method::PATCH, &path, &patch).await?;
            out.done(&c, &changed_message(&c, "Workspace updated"))
        }
        WorkspaceCmd::Delete { collab, workspace } => {
            let id = resolve(client, &collab).await?.id;
            let path = format!(
                "/api/v1/collabs/{}/workspaces/{}",
                segment(&id),
                segment(&workspace)
            );
            let c: CollabChanged = client.json(client.request(Method::DELETE, &path)).await?;
            out.done(&c, &changed_message(&c, "Workspace deleted"))
        }
    }
}

async fn invitation(client: &Client, out: Output, cmd: InvitationCmd) -> Result<()> {
    match cmd {
        InvitationCmd::List { collab } => {
            let id = resolve(client, &collab).await?.id;
            let list: Vec<InvitationView> = client
                .get(&format!("/api/v1/collabs/{}/invitations", segment(&id)))
                .await?;
            out.show(&list, |list| {
                let mut t = table(&["id", "guest url", "state", "expires", "access", "guest"]);
                for i in list {
                    let access: Vec<String> = i
                        .access
                        .iter()
                        .map(|a| format!("{}={}", a.workspace, a.mode))
                        .collect();
                    t.add_row(vec![
                        i.id.clone(),
                        i.guest_url.clone(),
                        i.state.clone(),
                        i.expires_at.clone(),
                        access.join(", "),
                        i.guest.clone().unwrap_or_default(),
                    ]);
                }
                t
            })
        }
        InvitationCmd::Refresh {
            collab,
            id,
            expires,
            file,
        } => {
            let collab_id = resolve(client, &collab).await?.id;
            let path = format!(
                "/api/v1/collabs/{}/invitations/{}/refresh",
                segment(&collab_id),
                segment(&id)
            );
            let created: InvitationCreated = client
                .call(
                    Method::POST,
                    &path,
                    &RefreshInvitation {
                        expires_in: Some(expires),
                    },
                )
                .await?;
            let written = write_invitation(&created, file)?;
            out.done(
                &created,
                &format!(
                    "New invitation written to {} (expires {}); the old one no longer works.",
                    written.display(),
                    created.invitation.expires_at
                ),
            )
        }
        InvitationCmd::Invalidate { collab, id } => {
            let collab_id = resolve(client, &collab).await?.id;
            let path = format!(
                "/api/v1/collabs/{}/invitations/{}/invalidate",
                segment(&collab_id),
                segment(&id)
            );
            let view: InvitationView = client.json(client.request(Method::POST, &path)).await?;
            out.done(
                &view,
                &format!("Invitation {} withdrawn; it no longer works.", view.id),
            )
        }
    }
}
