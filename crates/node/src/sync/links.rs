//! Links and their channels: who may send what to whom, decided from the link's records and
//! nowhere else. A **link** is a peer connection or a collaboration workspace; a **channel** is
//! one direction of flow on a link, from one instance to another.

use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::collab::{self, CollabRole, GuestStatus, Participant};
use ferry_core::sync::{Agreement, DeliveryRules, Origins, SendScope};
use ferry_proto::ticket::DataTypes;
use ferry_proto::{ErrorCode, WireLink};
use ferry_store::{CollabRecord, PeerIdentity, PeerRecord};

/// A link as this instance names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    Peer {
        id: String,
    },
    Collab {
        collab_id: String,
        workspace_id: String,
    },
}

impl Link {
    /// `peer:<connection id>` or `collab:<collaboration id>:<workspace id>`; also the arrival
    /// link of items received over it.
    pub(crate) fn key(&self) -> String {
        match self {
            Link::Peer { id } => format!("peer:{id}"),
            Link::Collab {
                collab_id,
                workspace_id,
            } => format!("collab:{collab_id}:{workspace_id}"),
        }
    }

    pub(crate) fn parse(key: &str) -> Option<Link> {
        if let Some(id) = key.strip_prefix("peer:") {
            return Some(Link::Peer { id: id.to_string() });
        }
        let rest = key.strip_prefix("collab:")?;
        let (collab_id, workspace_id) = rest.split_once(':')?;
        Some(Link::Collab {
            collab_id: collab_id.to_string(),
            workspace_id: workspace_id.to_string(),
        })
    }
}

/// One inbound channel: where to pull from and what this instance agreed to take.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    /// The cursor's key.
    pub(crate) channel: String,
    /// The link's key: the arrival link of what comes in.
    pub(crate) link: String,
    pub(crate) wire: WireLink,
    pub(crate) sender: PeerIdentity,
    /// The local space received items land in.
    pub(crate) space: String,
    pub(crate) agreement: Agreement,
    /// Markings given to every received item.
    pub(crate) mark: Vec<String>,
    pub(crate) delete_retracted: bool,
    /// The types of this instance's own two-way items whose copies at the sender may send
    /// edits back over this channel (see [`Outbound::edits_back`]).
    pub(crate) edits_from: DataTypes,
    /// Types the sender may no longer edit but whose edits made before a time still come.
    pub(crate) grace: Option<ferry_store::EditGrace>,
    /// The link carries nothing from the sender now: the channel is open for its edits made
    /// in grace only, and takes no item.
    pub(crate) edits_only: bool,
}

/// What one outbound channel sends: from which space, to whom, under which scope.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    /// The link's key here (see [`Link::key`]): what the send runs are recorded under.
    pub(crate) link: String,
    pub(crate) space: String,
    pub(crate) scope: SendScope,
    /// Where the receiver is this link's only other end (a peer, or the host seen from a
    /// guest): what arrived over the link came from it and never goes back. A host relays
    /// between guests on one link, so it has none and relies on the origin check.
    pub(crate) echo_link: Option<String>,
    /// The types whose copies of the receiver's own two-way items send their edits back to it
    /// over this channel. Every type with rows: an edit pending here was allowed when it was
    /// made, and its origin judges whether it still takes it (see [`Inbound::grace`]).
    pub(crate) edits_back: DataTypes,
    /// Nothing but those edits goes (see [`Inbound::edits_only`]).
    pub(crate) edits_only: bool,
}

/// Whether `link` is a link of this instance straight to `origin` that lets this end edit
/// copies of `origin`'s two-way items of `kind`.
pub(crate) async fn edits_allowed(
    node: &Node,
    link: &Link,
    origin: &str,
    kind: ferry_proto::ItemKind,
) -> NodeResult<bool> {
    let store = node.store.clone();
    let allowed = match link.clone() {
        Link::Peer { id } => {
            let record = blocking(move || store.peer(&id)).await?;
            let other = record.peer.as_ref().map(|p| p.instance_id.as_str());
            let types = both(both(record.sends, record.receives), ROW_TYPES);
            record.status.carries_data()
                && other == Some(origin)
                && ferry_core::sync::carries(types, kind)
        }
        Link::Collab {
            collab_id,
            workspace_id,
        } => {
            let record = blocking(move || store.collab(&collab_id)).await?;
            let two_way = record
                .workspaces
                .iter()
                .any(|w| w.id == workspace_id && w.config.two_way_editing);
            let guest = match record.role {
                CollabRole::Guest if record.host.instance_id == origin => {
                    record.part_in(&workspace_id, &record.self_participant)
                }
                CollabRole::Guest => None,
                CollabRole::Host => record
                    .participants
                    .iter()
                    .find(|p| p.instance() == Some(origin))
                    .and_then(|p| record.part_in(&workspace_id, &p.id)),
            };
            record.state == collab::CollabState::Active
                && guest.is_some_and(|g| ferry_core::sync::carries(collab_edits(two_way, g), kind))
        }
    };
    Ok(allowed)
}

/// Types with rows: what two-way editing can apply to.
const ROW_TYPES: DataTypes = DataTypes {
    datasets: true,
    features: true,
    files: false,
};

/// The types both of two sets hold.
fn both(a: DataTypes, b: DataTypes) -> DataTypes {
    DataTypes {
        datasets: a.datasets && b.datasets,
        features: a.features && b.features,
        files: a.files && b.files,
    }
}

/// What copies may edit over a workspace link: everything with rows in a two-way workspace,
/// when the guest end sends and receives.
pub(crate) fn collab_edits(two_way: bool, guest: Participant) -> DataTypes {
    match guest {
        Participant::Guest(mode) if two_way && collab::may_edit_two_way(mode) => ROW_TYPES,
        _ => DataTypes::NONE,
    }
}

const ALL_TYPES: DataTypes = DataTypes {
    datasets: true,
    features: true,
    files: true,
};

pub(crate) fn inactive(message: impl Into<String>) -> NodeError {
    NodeError::new(ErrorCode::LinkInactive, message)
}

pub(crate) fn same_instance(a: &PeerIdentity, b: &PeerIdentity) -> bool {
    a.instance_id == b.instance_id && a.public_key == b.public_key
}

/// A peer connection that carries data now, and its other end.
fn live_peer(record: &PeerRecord) -> NodeResult<(PeerIdentity, String)> {
    if !record.status.carries_data() {
        return Err(inactive(format!(
            "peer connection {} carries no data now ({}{})",
            record.id,
            record.status.phase.as_str(),
            if record.status.disabled_here || record.status.disabled_there {
                ", disabled"
            } else {
                ""
            }
        )));
    }
    let peer = record
        .peer
        .clone()
        .ok_or_else(|| inactive("the connection's other instance is not known"))?;
    let space = record
        .space
        .clone()
        .ok_or_else(|| inactive("the connection has no local space"))?;
    Ok((peer, space))
}

/// The inbound channels of a link on this instance, with a name for people.
pub(crate) async fn inbound(node: &Node, link: &Link) -> NodeResult<(String, Vec<Inbound>)> {
    let store = node.store.clone();
    let me = node.info.instance_id.clone();
    let graces = blocking(move || store.edit_graces()).await?;
    let store = node.store.clone();
    match link {
        Link::Peer { id } => {
            let id = id.clone();
            let record = blocking(move || store.peer(&id)).await?;
            let name = peer_name(&record);
            let (peer, space) = live_peer(&record)?;
            if record.receives.is_empty() {
                return Ok((name, Vec::new()));
            }
            Ok((
                name,
                vec![Inbound {
                    channel: link.key(),
                    link: link.key(),
                    wire: WireLink::Peer {
                        request_id: record.request_id.clone(),
                    },
                    agreement: Agreement {
                        kinds: record.receives,
                        max_item_bytes: u64::MAX,
                        receiver: me,
                        references_allowed: DeliveryRules::PEER.references_allowed,
                        origins: Origins::only(peer.instance_id.clone()),
                    },
                    sender: peer,
                    space,
                    mark: record.security.mark.clone(),
                    delete_retracted: true,
                    edits_from: both(both(record.sends, record.receives), ROW_TYPES),
                    grace: graces.into_iter().find(|g| g.channel == link.key()),
                    edits_only: false,
                }],
            ))
        }
        Link::Collab {
            collab_id,
            workspace_id,
        } => {
            let id = collab_id.clone();
            let record = blocking(move || store.collab(&id)).await?;
            collab_inbound(&record, workspace_id, link, me, &graces)
        }
    }
}

fn peer_name(record: &PeerRecord) -> String {
    record.peer.as_ref().map_or_else(
        || format!("peer connection {}", record.id),
        |p| format!("peer {}", p.title),
    )
}

fn collab_inbound(
    record: &CollabRecord,
    workspace_id: &str,
    link: &Link,
    me: String,
    graces: &[ferry_store::EditGrace],
) -> NodeResult<(String, Vec<Inbound>)> {
    let workspace = record
        .workspaces
        .iter()
        .find(|w| w.id == workspace_id)
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::LinkNotFound,
                format!(
                    "collaboration '{}' has no workspace {workspace_id}",
                    record.name
                ),
            )
        })?;
    let name = format!("{} / {}", record.name, workspace.name);
    if record.state != collab::CollabState::Active {
        return Err(inactive(format!(
            "collaboration '{}' is {} here",
            record.name,
            record.state.as_str()
        )));
    }
    let Some(space) = record.links.get(workspace_id) else {
        return Err(inactive(format!(
            "no space is linked to workspace '{}' here: `ferry collab link`",
            workspace.name
        )));
    };
    let me_part = record
        .part_in(workspace_id, &record.self_participant)
        .ok_or_else(|| inactive("this instance takes no part in the workspace"))?;
    let grace_of = |participant: &str| {
        let channel = format!("{}:{participant}", link.key());
        graces.iter().find(|g| g.channel == channel).cloned()
    };
    // Each sender, and whether the workspace carries anything from it now (if not, it is a
    // sender only while edits it made before it lost the right to edit are in grace).
    let senders: Vec<(String, PeerIdentity, bool)> = match record.role {
        CollabRole::Host => record
            .participants
            .iter()
            .filter(|p| p.role == "guest" && p.status == GuestStatus::Active.as_str())
            .filter_map(|p| {
                let sends = record
                    .part_in(workspace_id, &p.id)
                    .is_some_and(|part| collab::channel(part, me_part));
                let identity = p.identity.as_ref()?.into();
                (sends || grace_of(&p.id).is_some()).then(|| (p.id.clone(), identity, sends))
            })
            .collect(),
        CollabRole::Guest => {
            let sends = collab::channel(Participant::Host, me_part);
            if sends || grace_of("host").is_some() {
                vec![("host".to_string(), record.host.clone(), sends)]
            } else {
                Vec::new()
            }
        }
    };
    let channels = senders
        .into_iter()
        .map(|(participant, sender, sends)| Inbound {
            grace: grace_of(&participant),
            edits_only: !sends,
            edits_from: match record.role {
                CollabRole::Host => record
                    .part_in(workspace_id, &participant)
                    .map_or(DataTypes::NONE, |guest| {
                        collab_edits(workspace.config.two_way_editing, guest)
                    }),
                CollabRole::Guest => collab_edits(workspace.config.two_way_editing, me_part),
            },
            agreement: Agreement {
                kinds: if sends { ALL_TYPES } else { DataTypes::NONE },
                max_item_bytes: workspace.config.max_item_bytes,
                receiver: me.clone(),
                references_allowed: workspace_delivery(&workspace.config).references_allowed,
                // A guest brings its host its own items; a host brings the participants'.
                origins: match record.role {
                    CollabRole::Host => Origins::only(sender.instance_id.clone()),
                    CollabRole::Guest => participant_origins(record, None),
                },
            },
            channel: format!("{}:{participant}", link.key()),
            link: link.key(),
            wire: WireLink::Collab {
                collaboration_id: record.id.clone(),
                workspace_id: workspace_id.to_string(),
            },
            sender,
            space: space.space_id.to_string(),
            mark: record.security.mark.clone(),
            delete_retracted: record.delete_policy == collab::DeletePolicy::Delete,
        })
        .collect();
    Ok((name, channels))
}

/// The outbound channel from this instance to the caller on a wire link, if there is one: the
/// caller must be the link's other end, the link must carry data that way now, and this
/// instance's egress rules must permit data to the caller. Everything a sender serves (a pull,
/// an item, a chunk, reference rows) comes through here.
pub(crate) async fn outbound(
    node: &Node,
    caller: &crate::federation::SignedByPeer,
    wire: &WireLink,
) -> NodeResult<Outbound> {
    let receiver = &caller.sender;
    let outbound = channel_to(node, receiver, wire).await?;
    let party = crate::federation::policy::Party::of(receiver, caller.remote);
    crate::federation::admission::data_permitted(
        node,
        &party,
        ferry_core::policy::Direction::Egress,
    )
    .await?;
    Ok(outbound)
}

pub(crate) async fn channel_to(
    node: &Node,
    receiver: &PeerIdentity,
    wire: &WireLink,
) -> NodeResult<Outbound> {
    let store = node.store.clone();
    match wire {
        WireLink::Peer { request_id } => {
            let request_id = request_id.clone();
            let records = blocking(move || store.list_peers()).await?;
            let record = records
                .into_iter()
                .find(|r| {
                    r.request_id == request_id
                        && r.peer.as_ref().is_some_and(|p| same_instance(p, receiver))
                })
                .ok_or_else(|| {
                    NodeError::new(
                        ErrorCode::LinkNotFound,
                        "no connection with the caller has this request id",
                    )
                })?;
            let (_, space) = live_peer(&record)?;
            if record.sends.is_empty() {
                return Err(inactive("this instance sends nothing over the connection"));
            }
            Ok(Outbound {
                link: Link::Peer {
                    id: record.id.clone(),
                }
                .key(),
                space,
                scope: SendScope {
                    kinds: record.sends,
                    ceiling: record.security.ceiling.clone(),
                    receiver: receiver.instance_id.clone(),
                    delivery: DeliveryRules::PEER,
                    origins: Origins::only(node.info.instance_id.clone()),
                },
                edits_back: ROW_TYPES,
                edits_only: false,
                echo_link: Some(Link::Peer { id: record.id }.key()),
            })
        }
        WireLink::Collab {
            collaboration_id,
            workspace_id,
        } => {
            let id = collaboration_id.clone();
            let record = blocking(move || store.collab(&id))
                .await
                .map_err(|_| NodeError::new(ErrorCode::LinkNotFound, "no such collaboration"))?;
            collab_outbound(&record, workspace_id, receiver, &node.info.instance_id)
        }
    }
}

fn collab_outbound(
    record: &CollabRecord,
    workspace_id: &str,
    receiver: &PeerIdentity,
    me: &str,
) -> NodeResult<Outbound> {
    if record.state != collab::CollabState::Active {
        return Err(inactive("the collaboration is not active here"));
    }
    let receiver_part = match record.role {
        CollabRole::Guest if same_instance(&record.host, receiver) => Some(Participant::Host),
        CollabRole::Guest => None,
        CollabRole::Host => record
            .participants
            .iter()
            .find(|p| {
                p.identity
                    .as_ref()
                    .is_some_and(|i| same_instance(&i.into(), receiver))
            })
            .and_then(|p| record.part_in(workspace_id, &p.id)),
    };
    let my_part = record.part_in(workspace_id, &record.self_participant);
    // The other end of the workspace, known here: the host, or an active guest.
    let known = match record.role {
        CollabRole::Guest => same_instance(&record.host, receiver),
        CollabRole::Host => record.participants.iter().any(|p| {
            p.status == GuestStatus::Active.as_str()
                && p.identity
                    .as_ref()
                    .is_some_and(|i| same_instance(&i.into(), receiver))
        }),
    };
    let sends =
        matches!((my_part, receiver_part), (Some(from), Some(to)) if collab::channel(from, to));
    if !sends && !known {
        return Err(inactive(
            "the workspace carries nothing from this instance to the caller",
        ));
    }
    let space = record
        .links
        .get(workspace_id)
        .ok_or_else(|| inactive("no space is linked to the workspace here"))?;
    let workspace = record
        .workspaces
        .iter()
        .find(|w| w.id == workspace_id)
        .ok_or_else(|| NodeError::new(ErrorCode::LinkNotFound, "no such workspace"))?;
    // A guest's own layers go as its link says; a host's as the workspace does.
    let config = match record.role {
        CollabRole::Guest => workspace_delivery(&workspace.config).with_share(space.share),
        CollabRole::Host => workspace_delivery(&workspace.config),
    };
    let link = Link::Collab {
        collab_id: record.id.clone(),
        workspace_id: workspace_id.to_string(),
    }
    .key();
    let echo_link = (record.role == CollabRole::Guest).then(|| link.clone());
    Ok(Outbound {
        link,
        space: space.space_id.to_string(),
        scope: SendScope {
            // Nothing but edits made here to the receiver's own items, when the workspace
            // carries nothing to it now: its origin judges whether it still takes them.
            kinds: if sends { ALL_TYPES } else { DataTypes::NONE },
            ceiling: record.security.ceiling.clone(),
            receiver: receiver.instance_id.clone(),
            delivery: config,
            origins: match record.role {
                CollabRole::Guest => Origins::only(me),
                CollabRole::Host => participant_origins(record, Some(workspace_id)),
            },
        },
        echo_link,
        edits_back: ROW_TYPES,
        edits_only: !sends,
    })
}

/// The inbound channels (their cursor keys) whose sender lost, with a change of a
/// collaboration's record here, the right to edit some types of this instance's two-way items,
/// with those types: a guest whose mode dropped below send and receive, or a workspace no
/// longer two-way (seen from the host for each guest, from a guest for its host).
pub(crate) fn lost_edit_rights(old: &CollabRecord, new: &CollabRecord) -> Vec<(String, DataTypes)> {
    let rights = |record: &CollabRecord, workspace: &str, participant: &str| {
        let two_way = record
            .workspaces
            .iter()
            .any(|w| w.id == workspace && w.config.two_way_editing);
        let guest = match record.role {
            CollabRole::Host => participant,
            CollabRole::Guest => record.self_participant.as_str(),
        };
        record
            .part_in(workspace, guest)
            .map_or(DataTypes::NONE, |part| collab_edits(two_way, part))
    };
    let editors: Vec<String> = match old.role {
        CollabRole::Host => old
            .participants
            .iter()
            .filter(|p| p.role == "guest" && p.status == GuestStatus::Active.as_str())
            .map(|p| p.id.clone())
            .collect(),
        CollabRole::Guest => vec!["host".to_string()],
    };
    let mut lost = Vec::new();
    for workspace in &old.workspaces {
        let link = Link::Collab {
            collab_id: old.id.clone(),
            workspace_id: workspace.id.clone(),
        }
        .key();
        for editor in &editors {
            let gone = rights(old, &workspace.id, editor).minus(rights(new, &workspace.id, editor));
            if !gone.is_empty() {
                lost.push((format!("{link}:{editor}"), gone));
            }
        }
    }
    lost
}

/// The instances whose items travel between a collaboration's participants: the host and its
/// active guests (on a host, those with a part in `workspace_id`; a guest knows the guests'
/// instances from its host's snapshot, not their parts).
fn participant_origins(record: &CollabRecord, workspace_id: Option<&str>) -> Origins {
    let guests = record
        .participants
        .iter()
        .filter(|p| p.role == "guest" && p.status == GuestStatus::Active.as_str())
        .filter(|p| workspace_id.is_none_or(|w| record.part_in(w, &p.id).is_some()))
        .filter_map(|p| p.instance().map(str::to_string));
    Origins::any_of(std::iter::once(record.host.instance_id.clone()).chain(guests))
}

/// A workspace's copy and reference rules, from its config.
fn workspace_delivery(config: &ferry_proto::WorkspaceConfig) -> DeliveryRules {
    DeliveryRules {
        layers_by_reference: config.feature_layers == "reference",
        references_allowed: !config.two_way_editing,
    }
}

/// Finds the link a person means: `peer:ID` / `collab:C:W` keys, a peer connection id, or
/// `COLLABORATION/WORKSPACE` by names or ids.
pub(crate) async fn resolve(node: &Node, text: &str) -> NodeResult<Link> {
    if let Some(link) = Link::parse(text) {
        return Ok(link);
    }
    let store = node.store.clone();
    let (peers, collabs) = blocking(move || {
        Ok::<_, ferry_store::StoreError>((store.list_peers()?, store.list_collabs()?))
    })
    .await?;
    if peers.iter().any(|p| p.id == text) {
        return Ok(Link::Peer { id: text.into() });
    }
    if let Some((c, w)) = text.split_once('/') {
        let found = collabs
            .iter()
            .filter(|r| r.id == c || r.name == c)
            .find_map(|r| r.workspace(w).map(|ws| (r.id.clone(), ws.id.clone())));
        if let Some((collab_id, workspace_id)) = found {
            return Ok(Link::Collab {
                collab_id,
                workspace_id,
            });
        }
    } else {
        // A workspace by name (or id) alone, when only one collaboration has it.
        let found: Vec<(&CollabRecord, String)> = collabs
            .iter()
            .filter(|r| !r.state.is_over())
            .filter_map(|r| r.workspace(text).map(|ws| (r, ws.id.clone())))
            .collect();
        match found.as_slice() {
            [(record, workspace_id)] => {
                return Ok(Link::Collab {
                    collab_id: record.id.clone(),
                    workspace_id: workspace_id.clone(),
                });
            }
            [] => {}
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|(r, _)| format!("{}/{text}", r.name))
                    .collect();
                return Err(NodeError::new(
                    ErrorCode::LinkNotFound,
                    format!(
                        "several collaborations have a workspace '{text}': name one, as {}",
                        names.join(" or ")
                    ),
                ));
            }
        }
    }
    Err(NodeError::new(
        ErrorCode::LinkNotFound,
        format!(
            "no link '{text}': give a peer connection id, COLLABORATION/WORKSPACE, or a workspace name; `ferry sync status` lists them"
        ),
    ))
}

/// The instances that receive from this one on a link now, with the link's wire name: those to
/// poke when something changed here.
pub(crate) async fn receivers(
    node: &Node,
    link: &Link,
) -> NodeResult<Vec<(PeerIdentity, WireLink)>> {
    let store = node.store.clone();
    match link {
        Link::Peer { id } => {
            let id = id.clone();
            let record = blocking(move || store.peer(&id)).await?;
            let Ok((peer, _)) = live_peer(&record) else {
                return Ok(Vec::new());
            };
            if record.sends.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![(
                peer,
                WireLink::Peer {
                    request_id: record.request_id,
                },
            )])
        }
        Link::Collab {
            collab_id,
            workspace_id,
        } => {
            let id = collab_id.clone();
            let record = blocking(move || store.collab(&id)).await?;
            if record.state != collab::CollabState::Active
                || !record.links.contains_key(workspace_id)
            {
                return Ok(Vec::new());
            }
            let Some(me) = record.part_in(workspace_id, &record.self_participant) else {
                return Ok(Vec::new());
            };
            let wire = WireLink::Collab {
                collaboration_id: record.id.clone(),
                workspace_id: workspace_id.clone(),
            };
            let to: Vec<PeerIdentity> = match record.role {
                CollabRole::Guest if collab::channel(me, Participant::Host) => {
                    vec![record.host.clone()]
                }
                CollabRole::Guest => Vec::new(),
                CollabRole::Host => record
                    .participants
                    .iter()
                    .filter(|p| {
                        record
                            .part_in(workspace_id, &p.id)
                            .is_some_and(|part| collab::channel(me, part))
                    })
                    .filter_map(|p| Some(p.identity.as_ref()?.into()))
                    .collect(),
            };
            Ok(to.into_iter().map(|p| (p, wire.clone())).collect())
        }
    }
}

/// This instance's name for a wire link the caller shares with it.
pub(crate) async fn local_link(
    node: &Node,
    caller: &PeerIdentity,
    wire: &WireLink,
) -> NodeResult<Link> {
    match wire {
        WireLink::Peer { request_id } => {
            let store = node.store.clone();
            let records = blocking(move || store.list_peers()).await?;
            records
                .into_iter()
                .find(|r| {
                    &r.request_id == request_id
                        && r.peer.as_ref().is_some_and(|p| same_instance(p, caller))
                })
                .map(|r| Link::Peer { id: r.id })
                .ok_or_else(|| {
                    NodeError::new(
                        ErrorCode::LinkNotFound,
                        "no connection with the caller has this request id",
                    )
                })
        }
        WireLink::Collab {
            collaboration_id,
            workspace_id,
        } => Ok(Link::Collab {
            collab_id: collaboration_id.clone(),
            workspace_id: workspace_id.clone(),
        }),
    }
}

/// Every link of this instance that is not over.
pub(crate) async fn all_links(node: &Node) -> NodeResult<Vec<(Link, bool)>> {
    let store = node.store.clone();
    let (peers, collabs) = blocking(move || {
        Ok::<_, ferry_store::StoreError>((store.list_peers()?, store.list_collabs()?))
    })
    .await?;
    // The bool: whether this instance owns the link's schedule (a collaboration's guests do).
    let mut links: Vec<(Link, bool)> = peers
        .iter()
        .filter(|p| p.status.phase.is_established())
        .map(|p| (Link::Peer { id: p.id.clone() }, true))
        .collect();
    for c in collabs.iter().filter(|c| !c.state.is_over()) {
        for w in &c.workspaces {
            links.push((
                Link::Collab {
                    collab_id: c.id.clone(),
                    workspace_id: w.id.clone(),
                },
                c.role == CollabRole::Guest,
            ));
        }
    }
    Ok(links)
}

/// Links whose local space is `space_id`: what to poke when something in that space changed.
pub(crate) async fn links_of_space(node: &Node, space_id: &str) -> NodeResult<Vec<Link>> {
    let store = node.store.clone();
    let space_id = space_id.to_string();
    blocking(move || {
        let space = store.space(&space_id)?;
        let mut links: Vec<Link> = store
            .list_peers()?
            .into_iter()
            .filter(|p| p.space.as_deref() == Some(space.name.as_str()))
            .map(|p| Link::Peer { id: p.id })
            .collect();
        for c in store.list_collabs()? {
            for (workspace_id, linked) in &c.links {
                if linked.space_id == space.id {
                    links.push(Link::Collab {
                        collab_id: c.id.clone(),
                        workspace_id: workspace_id.clone(),
                    });
                }
            }
        }
        Ok::<_, ferry_store::StoreError>(links)
    })
    .await
}

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    Scheduled,
    OnDemand,
    /// The other side poked: it has changes.
    Realtime,
    /// The link started or widened (activated, enabled, linked, a mode widened): what is
    /// already there goes now.
    LinkChanged,
}

impl Trigger {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::OnDemand => "on_demand",
            Trigger::Realtime => "realtime",
            Trigger::LinkChanged => "link_changed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Trigger> {
        [
            Trigger::Scheduled,
            Trigger::OnDemand,
            Trigger::Realtime,
            Trigger::LinkChanged,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}
