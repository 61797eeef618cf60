//! Collaborations: the list, one collaboration's page (`page.rs`), the host's actions
//! (`host.rs`) and the guest's (`guest.rs`). Admins only: a collaboration's participants and
//! invitations are an admin's business (the node refuses other roles).

mod guest;
mod guest_forms;
mod host;
mod host_forms;
mod page;
mod parts;

pub(crate) use guest::{
    accept, accept_form, confirm_leave, leave, link, preview, set_delete_policy, unlink,
};
pub(crate) use host::{
    add_workspace, confirm_delete, create, create_form, delete, delete_workspace, import_response,
    invalidate_invitation, invite, refresh_invitation, remove_guest, set_access, update_workspace,
};

use crate::console::session::SignedIn;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_node::Node;
use page::Said;

pub(crate) async fn list(State(node): State<Node>, signed_in: SignedIn) -> Response {
    page::render_list(&node, &signed_in.session, Said::default(), StatusCode::OK).await
}

pub(crate) async fn show(
    State(node): State<Node>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Response {
    page::render(
        &node,
        &signed_in.session,
        &id,
        Said::default(),
        StatusCode::OK,
    )
    .await
}
