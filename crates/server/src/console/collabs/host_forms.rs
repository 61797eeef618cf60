//! The host's forms on a collaboration's page and on "Create a collaboration": a workspace's
//! inputs, add and edit workspaces, invite a guest, import a guest's response file.

use super::parts::MODES;
use crate::console::layout::csrf_field;
use ferry_node::sessions::Session;
use ferry_proto::{Collaboration, NewWorkspace, Space, WorkspaceConfig};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A workspace as typed: its name, description, how layers travel, two-way editing, and (new
/// ones) the host's space.
#[derive(Deserialize, Default)]
pub(crate) struct WorkspaceFields {
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) feature_layers: String,
    pub(super) two_way_editing: Option<String>,
    #[serde(default)]
    pub(super) space: String,
}

impl WorkspaceFields {
    pub(super) fn config(&self) -> WorkspaceConfig {
        WorkspaceConfig {
            feature_layers: if self.feature_layers.is_empty() {
                "copy".into()
            } else {
                self.feature_layers.clone()
            },
            two_way_editing: self.two_way_editing.is_some(),
            ..WorkspaceConfig::default()
        }
    }

    pub(super) fn new_workspace(&self) -> NewWorkspace {
        NewWorkspace {
            name: self.name.trim().to_string(),
            description: self.description.clone(),
            config: self.config(),
            space: self.space.clone(),
            access: BTreeMap::new(),
        }
    }
}

/// The inputs of a workspace, labelled; `prefix` keeps ids unique on a page.
pub(super) fn workspace_inputs(
    prefix: &str,
    typed: &WorkspaceFields,
    spaces: Option<&[Space]>,
) -> Markup {
    let reference = typed.feature_layers == "reference";
    html! {
        label for={ (prefix) "-name" } { "Workspace name" }
        input #{ (prefix) "-name" } type="text" name="name" required value=(typed.name);
        label for={ (prefix) "-description" } { "Description" }
        input #{ (prefix) "-description" } type="text" name="description" value=(typed.description);
        label for={ (prefix) "-layers" } { "Feature layers travel" }
        select #{ (prefix) "-layers" } name="feature_layers" {
            option value="copy" selected[!reference] { "as copies (receivers hold the data)" }
            option value="reference" selected[reference] { "as references (receivers read from the origin)" }
        }
        label.check {
            input #{ (prefix) "-two-way" } type="checkbox" name="two_way_editing" checked[typed.two_way_editing.is_some()];
            " Two-way editing of feature layers"
        }
        @if let Some(spaces) = spaces {
            label for={ (prefix) "-space" } { "Our space linked to it" }
            select #{ (prefix) "-space" } name="space" required {
                @for space in spaces { option value=(space.name) selected[typed.space == space.name] { (space.name) } }
            }
        }
    }
}

/// The host's forms on the collaboration page: add a workspace, edit one, invite a guest,
/// import a guest's response file.
pub(super) fn forms(c: &Collaboration, spaces: &[Space], session: &Session) -> Markup {
    html! {
        h2 { "Change" }
        details {
            summary { "Add a workspace" }
            form.stacked method="post" action={ "/collabs/" (c.id) "/workspaces" } {
                (csrf_field(session))
                (workspace_inputs("add", &WorkspaceFields::default(), Some(spaces)))
                p.hint { "Guests take part once you give them a mode in the access table." }
                button #add-workspace type="submit" { "Add workspace" }
            }
        }
        @for w in &c.workspaces {
            details {
                summary #{ "edit-" (w.id) "-summary" } { "Edit workspace " (w.name) }
                @let typed = WorkspaceFields {
                    name: w.name.clone(),
                    description: w.description.clone(),
                    feature_layers: w.config.feature_layers.clone(),
                    two_way_editing: w.config.two_way_editing.then(String::new),
                    space: String::new(),
                };
                form.stacked method="post" action={ "/collabs/" (c.id) "/workspaces/" (w.id) "/edit" } {
                    (csrf_field(session))
                    (workspace_inputs(&format!("edit-{}", w.id), &typed, None))
                    button #{ "save-" (w.id) } type="submit" { "Save workspace" }
                }
                form.button method="post" action={ "/collabs/" (c.id) "/workspaces/" (w.id) "/delete" } {
                    (csrf_field(session))
                    button.danger type="submit" { "Delete workspace " (w.name) }
                }
            }
        }
        details {
            summary #invite-summary { "Invite a guest" }
            form.stacked method="post" action={ "/collabs/" (c.id) "/invite" } {
                (csrf_field(session))
                label for="guest-url" { "The guest instance's URL" }
                input #guest-url type="url" name="guest_url" required placeholder="https://gis.example.org";
                p.hint { "Only the instance at this URL can accept the invitation." }
                fieldset {
                    legend { "Its access" }
                    @for w in &c.workspaces {
                        label for={ "invite-" (w.id) } { (w.name) }
                        select #{ "invite-" (w.id) } name={ "ws_" (w.id) } {
                            @for (value, label) in MODES { option value=(value) { (label) } }
                        }
                    }
                }
                label for="invite-expiry" { "Valid for" }
                select #invite-expiry name="expires_in" {
                    option value="1h" { "1 hour" }
                    option value="24h" selected { "24 hours" }
                    option value="7d" { "7 days" }
                }
                button #invite type="submit" { "Create invitation" }
            }
        }
        details {
            summary #response-summary { "Import a guest's response file" }
            form.stacked method="post" action={ "/collabs/" (c.id) "/response" } {
                (csrf_field(session))
                label for="guest-response-file" { "Response file" }
                input #guest-response-file type="file" accept=".txt,text/plain" data-into="guest-response";
                label for="guest-response" { "Its text (filled from the file, or paste it)" }
                textarea #guest-response name="response" required rows="4" {}
                button #import-response type="submit" { "Import response" }
            }
        }
    }
}
