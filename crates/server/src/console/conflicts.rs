//! The conflict queue: concurrent edits two-way editing found on this instance's items, each
//! with both versions of the row; an admin keeps one of them (an edit that reaches every copy).

use super::layout::{Checked, csrf_field, failure_page, page};
use super::session::SignedIn;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::Node;
use ferry_proto::Role;
use ferry_proto::twoway::{ConflictRecord, ConflictResolution, Fields};
use maud::{Markup, html};

/// Conflicts shown on one page.
const SHOWN: usize = 100;

pub(crate) async fn list(
    State(node): State<Node>,
    RawQuery(query): RawQuery,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let status = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "status")
        .map(|(_, value)| value.into_owned())
        .filter(|s| !s.is_empty());
    let found = ferry_node::conflicts::list(&node, &session.caller, status.clone(), SHOWN, 0).await;
    let conflicts = match found {
        Ok(c) => c,
        Err(e) => return failure_page(&node, session, "Conflicts", &e),
    };
    let body = html! {
        h1 { "Conflicts" }
        p.lead { "Concurrent edits that copies sent back to this instance's two-way items. Each keeps both versions of its row; the item's policy chose one, and an admin can keep the other." }
        form.inline method="get" action="/conflicts" {
            label for="conflict-status" { "Status" }
            select #conflict-status name="status" {
                @for (value, label) in [("", "all"), ("open", "open: waiting for an admin"), ("settled", "settled by the policy"), ("resolved", "resolved by an admin")] {
                    option value=(value) selected[status.as_deref().unwrap_or("") == value] { (label) }
                }
            }
            button #filter-conflicts type="submit" { "Show" }
        }
        @if conflicts.is_empty() {
            p #no-conflicts { "No conflicts." }
        } @else {
            table.list #conflicts {
                thead { tr { th { "Found" } th { "Status" } th { "Kind" } th { "Row" } th { "Fields" } th { "Kept" } th { "From" } } }
                tbody {
                    @for c in &conflicts {
                        tr data-conflict=(c.id) {
                            td { a href={ "/conflicts/" (c.id) } { (c.created_at) } }
                            td { (c.status) }
                            td { (c.kind) }
                            td { a href={ "/items/" (c.item_id) } { (c.key.to_string()) } }
                            td { (c.fields.join(", ")) }
                            td { (c.kept) }
                            td { code { (c.their_instance) } }
                        }
                    }
                }
            }
        }
    };
    Html(page(&node, Some(session), "Conflicts", body).into_string()).into_response()
}

pub(crate) async fn show(
    State(node): State<Node>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let conflict = match ferry_node::conflicts::show(&node, &session.caller, id).await {
        Ok(c) => c,
        Err(e) => return failure_page(&node, session, "Conflict", &e),
    };
    let body = html! {
        h1 { "Conflict on row " (conflict.key.to_string()) }
        p.lead { "Kind " code { (conflict.kind) } ", policy " code { (conflict.policy.as_str()) } ", kept: " strong #conflict-kept { (conflict.kept) } ". Status: " strong #conflict-status { (conflict.status) } "." }
        p { a href={ "/items/" (conflict.item_id) } { "The item" } }
        (versions(&conflict))
        @if conflict.status != "resolved" && session.caller.role == Role::Admin {
            div.buttons {
                @for (keep, label) in [("ours", "Keep this instance's version"), ("theirs", "Keep the copy's version")] {
                    form.inline method="post" action={ "/conflicts/" (conflict.id) "/resolve" } {
                        (csrf_field(session))
                        input type="hidden" name="keep" value=(keep);
                        button id={ "keep-" (keep) } type="submit" { (label) }
                    }
                }
            }
        }
        @if let (Some(at), Some(by)) = (&conflict.resolved_at, &conflict.resolved_by) {
            p { "Resolved at " (at) " by " (by) "." }
        }
    };
    Html(page(&node, Some(session), "Conflict", body).into_string()).into_response()
}

/// Both versions side by side, field by field, the fields both changed marked.
fn versions(c: &ConflictRecord) -> Markup {
    let empty = Fields::new();
    let ours = c.ours.as_ref().unwrap_or(&empty);
    let theirs = c.theirs.as_ref().unwrap_or(&empty);
    let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    names.sort();
    names.dedup();
    let shown = |v: Option<&serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
    html! {
        table.list #conflict-versions {
            thead { tr {
                th { "Field" }
                th { "Here (last changed by " (c.our_instance.as_deref().unwrap_or("this instance")) ")" @if c.ours.is_none() { " — deleted" } }
                th { "The copy's edit (from " (c.their_instance) ")" @if c.theirs.is_none() { " — deleted" } }
            } }
            tbody {
                @for name in names {
                    tr.changed[c.fields.contains(name)] {
                        td { (name) @if c.fields.contains(name) { " (both changed)" } }
                        td { (shown(ours.get(name))) }
                        td { (shown(theirs.get(name))) }
                    }
                }
            }
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct ResolveFields {
    #[serde(default)]
    keep: String,
}

pub(crate) async fn resolve(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<ResolveFields>,
) -> Response {
    let session = &signed_in.session;
    let resolution = ConflictResolution {
        keep: fields.keep,
        row: None,
    };
    match ferry_node::conflicts::resolve(&node, &session.caller, id.clone(), resolution).await {
        Ok(_) => Redirect::to(&format!("/conflicts/{id}")).into_response(),
        Err(e) => failure_page(&node, session, "Conflict", &e),
    }
}
