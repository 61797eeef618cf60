//! Collaborations on the wire: the admin API's bodies and the snapshots a host sends its guests.
//!
//! Privacy rule: which space a participant linked to a workspace never leaves that participant.
//! [`CollabSnapshot`] therefore has no field that could carry a link, and a guest's snapshot lists
//! other participants by title, role and status only.

use crate::model::{AuditEntry, PeerInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a workspace shares, set by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceConfig {
    /// `copy` (receivers hold the data) or `reference` (receivers read it from the origin).
    #[serde(default = "default_share_mode")]
    pub feature_layers: String,
    /// The largest item, in bytes, the workspace carries.
    #[serde(default = "default_max_item_bytes")]
    pub max_item_bytes: u64,
    /// Whether participants in `send_receive` may edit the same feature layers.
    #[serde(default)]
    pub two_way_editing: bool,
}

fn default_share_mode() -> String {
    "copy".into()
}

/// 1 GiB.
pub const DEFAULT_MAX_ITEM_BYTES: u64 = 1 << 30;

fn default_max_item_bytes() -> u64 {
    DEFAULT_MAX_ITEM_BYTES
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            feature_layers: default_share_mode(),
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
            two_way_editing: false,
        }
    }
}

/// A workspace to create: its info and the host's own linked space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewWorkspace {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: WorkspaceConfig,
    /// The host's space linked to the workspace.
    pub space: String,
    /// Access modes of existing guests in the new workspace, by guest (participant id, instance
    /// id or title); a guest left out does not take part in it.
    #[serde(default)]
    pub access: std::collections::BTreeMap<String, String>,
}

/// Creates a collaboration hosted by this instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewCollab {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// At least one.
    pub workspaces: Vec<NewWorkspace>,
}

/// Changes a workspace's info or config (host only). Absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspacePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: Option<WorkspaceConfig>,
}

/// Sets guests' access modes (host only): workspace (id or name) to mode, `none` to take the
/// guest out of the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetAccess {
    pub access: std::collections::BTreeMap<String, String>,
}

/// One workspace as a participant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub config: WorkspaceConfig,
    /// This instance's part: `host`, or the guest's mode.
    pub my_mode: String,
    /// The space this instance linked, if any. Never known to other participants.
    #[serde(default)]
    pub linked_space: Option<String>,
    /// On a guest, how its link sends its own feature layers (see [`ShareMode`]); the host
    /// learns it only from what arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareMode>,
    /// On the host: each guest's mode here (guests in the workspace only).
    #[serde(default)]
    pub guests: Vec<GuestAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GuestAccess {
    pub participant_id: String,
    pub title: String,
    pub mode: String,
}

/// A participant, as seen by this instance. Guests see title, role and status only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParticipantView {
    pub id: String,
    pub title: String,
    /// `host` or `guest`.
    pub role: String,
    /// `active`, `left` or `removed`.
    pub status: String,
    /// This instance itself.
    pub is_self: bool,
    /// Host only: the guest's identity and contact details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<PeerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// A collaboration as this instance sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Collaboration {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `host` or `guest`.
    pub role: String,
    /// `awaiting_host`, `active`, `left`, `removed` or `deleted`.
    pub state: String,
    pub host: PeerInfo,
    /// `keep` or `delete`: what happens to items this instance received when a workspace or the
    /// collaboration ends for it.
    pub delete_policy: String,
    /// This instance's own security for the collaboration (never sent to others).
    #[serde(default)]
    pub security: crate::PeerSecurity,
    pub workspaces: Vec<WorkspaceView>,
    pub participants: Vec<ParticipantView>,
    /// The host's revision this view reflects.
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
    /// What an admin should know about the collaboration, such as a participant's URL on plain
    /// HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A collaboration with its audit history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollabDetail {
    pub collaboration: Collaboration,
    pub history: Vec<AuditEntry>,
}

/// Invites one guest instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewInvitation {
    /// The guest instance's public URL; only that instance can accept.
    pub guest_url: String,
    /// Workspace (id or name) to access mode; at least one.
    pub access: std::collections::BTreeMap<String, String>,
    /// Validity, e.g. `24h` (default), `30m`, `7d`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// Refreshes an open invitation: a new code with a new expiry; the old code stops working.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RefreshInvitation {
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A guest's access to one offered workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfferedAccess {
    pub workspace_id: String,
    pub workspace: String,
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub guest_url: String,
    pub access: Vec<OfferedAccess>,
    /// `open`, `accepted`, `invalidated` or `expired`.
    pub state: String,
    pub expires_at: String,
    /// The guest that accepted it.
    #[serde(default)]
    pub guest: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvitationCreated {
    pub invitation: InvitationView,
    /// The signed invitation (`ferry1-collab-...`) to hand to the guest's admin.
    pub code: String,
}

/// An invitation's content, checked (signature, expiry, meant for this instance) but not acted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvitationPreview {
    pub collaboration_id: String,
    pub collaboration: String,
    pub host: PeerInfo,
    pub workspaces: Vec<OfferedWorkspaceView>,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfferedWorkspaceView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub mode: String,
}

/// The invitation text, for a preview or an acceptance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvitationCode {
    pub code: String,
}

/// Accepts an invitation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcceptInvitation {
    pub code: String,
    /// Who to contact at the guest's organization (name, e-mail, phone), given to the host.
    #[serde(default)]
    pub contact: String,
    /// Return the signed response for a file instead of sending it to the host.
    #[serde(default)]
    pub response_file: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvitationAccepted {
    pub collaboration: Collaboration,
    /// The signed response (`ferry1-guest-...`) when asked for as a file.
    #[serde(default)]
    pub response: Option<String>,
}

/// A guest's signed response, online or imported from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuestResponse {
    pub response: String,
}

/// Links one of this instance's spaces to a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkSpace {
    pub space: String,
    /// A guest's choice for the feature layers it sends over this link (default `workspace`).
    #[serde(default)]
    pub share: ShareMode,
}

/// How a guest's link sends its own feature layers: as `copies`, as `references`, or as the
/// `workspace` says (the host's setting). The item's own `sync_as`, when not `link`, comes
/// first; a two-way workspace takes copies only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareMode {
    Copies,
    References,
    #[default]
    Workspace,
}

impl ShareMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareMode::Copies => "copies",
            ShareMode::References => "references",
            ShareMode::Workspace => "workspace",
        }
    }

    pub fn parse(s: &str) -> Option<ShareMode> {
        match s {
            "copies" => Some(ShareMode::Copies),
            "references" => Some(ShareMode::References),
            "workspace" => Some(ShareMode::Workspace),
            _ => None,
        }
    }
}

/// Changes how this guest's link to a workspace sends its feature layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetShare {
    pub share: ShareMode,
}

/// This participant's security for a collaboration: which marked items may leave it, and the
/// markings given to what it receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetCollabSecurity {
    pub security: crate::PeerSecurity,
}

/// This participant's delete policy: `keep` or `delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetDeletePolicy {
    pub delete_policy: String,
}

/// The outcome of a change the other participants are told of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollabChanged {
    pub collaboration: Collaboration,
    /// Participants that could not be told now; they learn at their next contact.
    #[serde(default)]
    pub not_notified: Vec<String>,
}

/// What a host tells one guest about a collaboration: everything that guest may know, nothing
/// more. Sent after every change (and on request); a guest keeps the highest revision it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollabSnapshot {
    pub collaboration_id: String,
    pub name: String,
    pub description: String,
    pub revision: i64,
    /// The guest's standing: `active`, `removed`, or `deleted` (the collaboration ended).
    pub state: String,
    /// The guest's own participant id.
    pub participant_id: String,
    pub workspaces: Vec<SnapshotWorkspace>,
    pub participants: Vec<SnapshotParticipant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotWorkspace {
    pub id: String,
    pub name: String,
    pub description: String,
    pub config: WorkspaceConfig,
    /// The receiving guest's mode in it.
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotParticipant {
    pub id: String,
    pub title: String,
    pub role: String,
    pub status: String,
    /// The participant's instance id: a guest takes from its host only items that originate
    /// at a participant. Relayed items name their origin instance anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

/// Names a collaboration in a guest-to-host call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CollabRef {
    pub collaboration_id: String,
}

/// Who an instance is, as it tells anyone who asks (`POST /federation/v1/identity`, unsigned):
/// a host checks that the instance at an invitation's URL is the one that answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceIdentity {
    pub instance_id: String,
    pub title: String,
    /// Ed25519, base64url without padding.
    pub public_key: String,
}
