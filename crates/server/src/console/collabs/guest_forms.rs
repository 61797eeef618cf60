//! The guest's forms on a collaboration's page: what happens to received items when a
//! workspace ends, and syncing a linked workspace now.

use crate::console::layout::csrf_field;
use ferry_node::sessions::Session;
use ferry_proto::Collaboration;
use maud::{Markup, html};

/// The guest's forms on the collaboration page.
pub(super) fn forms(c: &Collaboration, session: &Session) -> Markup {
    html! {
        h2 { "Our settings" }
        form.inline method="post" action={ "/collabs/" (c.id) "/delete-policy" } {
            (csrf_field(session))
            label for="delete-policy-choice" { "When a workspace ends for us, received items" }
            select #delete-policy-choice name="delete_policy" {
                option value="keep" selected[c.delete_policy == "keep"] { "stay here" }
                option value="delete" selected[c.delete_policy == "delete"] { "are deleted here" }
            }
            button #save-delete-policy type="submit" { "Save" }
        }
        p.hint { "Each linked workspace syncs on our schedule: set it, or run it now, on the " a href="/sync" { "Sync page" } "." }
        div.buttons {
            @for w in c.workspaces.iter().filter(|w| w.linked_space.is_some()) {
                form.button method="post" action="/sync/now" {
                    (csrf_field(session))
                    input type="hidden" name="link" value={ "collab:" (c.id) ":" (w.id) };
                    button.secondary type="submit" { "Sync " (w.name) " now" }
                }
            }
        }
    }
}
