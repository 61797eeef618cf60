//! The panel's actions: activate, disable and enable, delete (after a confirmation that says what
//! happens on the other side), security changes proposed and decided, and narrowing the types
//! sent. Each comes back to Peer Manager with the connection selected and what happened.

use super::list::after;
use super::shown::{SecurityFields, Shown, Typed, title_of};
use crate::console::layout::{
    Checked, Confirmation, NoFields, confirmation, failure_page, needs_admin,
};
use crate::console::session::SignedIn;
use axum::extract::{Path, State};
use axum::response::Response;
use ferry_node::Node;
use ferry_proto::{PeerChanged, PeerSends, ProposeSecurity};
use maud::{Markup, html};
use serde::Deserialize;

/// What a change did here, and whether the other instance heard of it.
fn changed(done: &str, changed: &PeerChanged) -> Markup {
    let title = title_of(&changed.connection);
    html! {
        (done) " "
        @if changed.notified {
            strong { (title) } " was told."
        } @else {
            strong { (title) } " could not be told now"
            @if let Some(why) = &changed.notice_error { ": " (why) }
            ". The change stands here."
        }
    }
}

pub(crate) async fn activate(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let result = ferry_node::peers::activate(&node, &signed_in.session.caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |connection| {
        html! { "Active: data now flows with " strong { (title_of(&connection)) } "." }
    })
    .await
}

pub(crate) async fn disable(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let result = ferry_node::peers::disable(&node, &signed_in.session.caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |done| {
        changed("Disabled here: no data flows until it is enabled.", &done)
    })
    .await
}

pub(crate) async fn enable(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let result = ferry_node::peers::enable(&node, &signed_in.session.caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |done| {
        changed("Enabled here.", &done)
    })
    .await
}

/// The confirmation before a delete: what happens here and on the other side.
pub(crate) async fn confirm_delete(
    State(node): State<Node>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    let session = &signed_in.session;
    let detail = match ferry_node::peers::show_peer(&node, &session.caller, id.clone()).await {
        Ok(detail) => detail,
        Err(e) => return failure_page(&node, session, "Delete connection", &e),
    };
    let connection = &detail.connection;
    let title = title_of(connection);
    let consequences = html! {
        li { "Nothing more is sent or received over it, from now on." }
        @if connection.peer.is_some() && matches!(connection.state.as_str(), "approved" | "active") {
            li { strong { (title) } " is told: its side becomes " em { "revoked" } " and it no longer accepts this instance's key for the connection." }
        } @else {
            li { strong { (title) } " has not completed the connection, so there is nobody to tell; its code stops working here." }
        }
        li { "Items already copied stay where they are, on both sides." }
        li { "It cannot be undone: peering again takes a new request." }
    };
    confirmation(
        &node,
        session,
        Confirmation {
            heading: format!("Delete the connection with {title}?"),
            consequences,
            action: format!("/peers/{id}/delete"),
            button_id: "confirm-delete",
            button: "Delete connection",
            cancel: format!("/peers?id={id}"),
        },
    )
}

pub(crate) async fn delete(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let result = ferry_node::peers::delete(&node, &signed_in.session.caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |done| {
        changed("Deleted here.", &done)
    })
    .await
}

pub(crate) async fn propose_security(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<SecurityFields>,
) -> Response {
    let body = ProposeSecurity {
        security: fields.security(),
    };
    let base = Shown {
        typed: Typed {
            security: Some(fields),
            ..Typed::default()
        },
        ..Shown::of(&id)
    };
    let caller = &signed_in.session.caller;
    let result = ferry_node::peers::propose_security(&node, caller, id.clone(), body).await;
    after(&node, &signed_in, base, result, |connection| {
        html! { "Proposed: it takes effect once " strong { (title_of(&connection)) } "'s admin approves it." }
    })
    .await
}

pub(crate) async fn approve_security(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let caller = &signed_in.session.caller;
    let result = ferry_node::peers::approve_security(&node, caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |connection| {
        html! { "Approved: " strong { (title_of(&connection)) } "'s new settings apply now." }
    })
    .await
}

pub(crate) async fn reject_security(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let caller = &signed_in.session.caller;
    let result = ferry_node::peers::reject_security(&node, caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |connection| {
        html! { "Rejected: " strong { (title_of(&connection)) } "'s settings stay as they were." }
    })
    .await
}

/// The types still sent: each ticked box arrives under its own name.
#[derive(Deserialize, Default)]
pub(crate) struct SendsFields {
    send_datasets: Option<String>,
    send_features: Option<String>,
    send_files: Option<String>,
}

pub(crate) async fn narrow_sends(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<SendsFields>,
) -> Response {
    let sends = [
        ("datasets", &fields.send_datasets),
        ("features", &fields.send_features),
        ("files", &fields.send_files),
    ]
    .into_iter()
    .filter(|(_, ticked)| ticked.is_some())
    .map(|(kind, _)| kind.to_string())
    .collect();
    let caller = &signed_in.session.caller;
    let result =
        ferry_node::peers::narrow_sends(&node, caller, id.clone(), PeerSends { sends }).await;
    after(&node, &signed_in, Shown::of(&id), result, |connection| {
        html! { "From now on this side sends " (super::shown::types(&connection.sends)) "." }
    })
    .await
}
