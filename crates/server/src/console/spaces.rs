//! Spaces: the list, each with a badge for every link it has (a peer connection, a
//! collaboration workspace); create; a space's page with its items, rename and describe; delete
//! behind a confirmation that says what goes with it. Everyone signed in reads; admins change.

use super::layout::{
    Checked, Confirmation, NoFields, PAGE_ROWS, confirmation, csrf_field, failure, failure_page,
    page, page_of, same_origin,
};
use super::links::link_badges;
use super::session::SignedIn;
use crate::error::ApiFailure;
use axum::Json;
use axum::body::Body;
use axum::extract::RawQuery;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::Node;
use ferry_node::NodeError;
use ferry_node::sessions::Session;
use ferry_proto::ErrorCode;
use ferry_proto::{Item, NewSpace, Role, Space, SpacePatch};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct SpaceFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

fn is_admin(session: &Session) -> bool {
    session.caller.role == Role::Admin
}

async fn render_list(
    node: &Node,
    session: &Session,
    typed: &SpaceFields,
    said: Option<Markup>,
    status: StatusCode,
) -> Response {
    let spaces = match ferry_node::spaces::list_spaces(node, &session.caller).await {
        Ok(spaces) => spaces,
        Err(e) => return failure_page(node, session, "Spaces", &e),
    };
    let body = html! {
        h1 { "Spaces" }
        @if let Some(said) = said { (said) }
        @if is_admin(session) {
            form.inline method="post" action="/spaces" {
                (csrf_field(session))
                label for="space-name" { "Name" }
                input #space-name type="text" name="name" required value=(typed.name)
                    placeholder="letters, digits, . _ -";
                label for="space-description" { "Description" }
                input #space-description type="text" name="description" value=(typed.description);
                button #create-space type="submit" { "Create space" }
            }
        }
        @if spaces.is_empty() {
            p.empty { "No space yet." }
        } @else {
            table.list #spaces {
                thead { tr { th { "Name" } th { "Items" } th { "Linked to" } th { "Description" } } }
                tbody {
                    @for space in &spaces {
                        tr data-space=(space.name) {
                            td { a href={ "/spaces/" (space.name) } { (space.name) } }
                            td { (space.item_count) }
                            td { (link_badges(&space.links)) }
                            td { (space.description) }
                        }
                    }
                }
            }
        }
    };
    (
        status,
        Html(page(node, Some(session), "Spaces", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn list(State(node): State<Node>, signed_in: SignedIn) -> Response {
    let typed = SpaceFields::default();
    render_list(&node, &signed_in.session, &typed, None, StatusCode::OK).await
}

pub(crate) async fn create(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<SpaceFields>,
) -> Response {
    let session = &signed_in.session;
    let new = NewSpace {
        name: fields.name.trim().to_string(),
        description: fields.description.clone(),
    };
    match ferry_node::spaces::create_space(&node, &session.caller, new).await {
        Ok(space) => Redirect::to(&format!("/spaces/{}", space.name)).into_response(),
        Err(e) => {
            let said = failure(&e.0.message, e.0.code.as_str());
            let status = crate::status_of(e.0.code);
            render_list(&node, session, &fields, Some(said), status).await
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ItemsPage {
    page: Option<usize>,
}

async fn render_space(
    node: &Node,
    session: &Session,
    name: &str,
    page_number: usize,
    said: Option<Markup>,
    status: StatusCode,
) -> Response {
    let caller = &session.caller;
    let space = match ferry_node::spaces::show_space(node, caller, name.to_string()).await {
        Ok(space) => space,
        Err(e) => return failure_page(node, session, "Space", &e),
    };
    // A page at a time: a space may hold tens of thousands of items.
    let total = usize::try_from(space.item_count).unwrap_or(0);
    let (shown, pager) = page_of(total, page_number, |n| {
        format!("/spaces/{}?page={n}", space.name)
    });
    let query = format!(
        "space={}&offset={}&limit={PAGE_ROWS}",
        space.name, shown.start
    );
    let rows = match ferry_node::items::list_items(node, caller, Some(query)).await {
        Ok(items) => items,
        Err(e) => return failure_page(node, session, "Space", &e),
    };
    let body = html! {
        h1 { "Space " (space.name) }
        p.lead { (space.description) }
        @if !space.links.is_empty() { p.links { (link_badges(&space.links)) } }
        @if let Some(said) = said { (said) }
        @if session.caller.role != Role::Viewer { (upload(&space, session)) }
        (items_table(&rows, &space))
        (pager)
        @if is_admin(session) { (space_forms(&space, session)) }
    };
    (
        status,
        Html(page(node, Some(session), &space.name, body).into_string()),
    )
        .into_response()
}

/// Drop a file (or choose one) to import it into the space, with a progress bar; `console.js`
/// sends it as the body of `/spaces/{name}/upload`, as the CLI sends an import.
fn upload(space: &Space, session: &Session) -> Markup {
    html! {
        section.upload #upload data-upload={ "/spaces/" (space.name) "/upload" } data-csrf=(session.csrf) {
            h2 { "Add an item" }
            div.dropzone #dropzone {
                "Drop a file here: GeoJSON becomes a feature layer, CSV or NDJSON a dataset, anything else a file. Or "
                label for="upload-file" { "choose one" }
                input #upload-file type="file";
            }
            progress #upload-progress max="100" value="0" hidden {}
            p #upload-status role="status" {}
        }
    }
}

fn items_table(items: &[Item], space: &Space) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No item yet." }
        } @else {
            table.list #items {
                thead { tr {
                    th { "Title" } th { "Kind" } th { "Rows" } th { "Markings" }
                    th { "Here as" } th { "From" } th { "Last change" }
                } }
                tbody {
                    @for item in items {
                        tr data-item=(item.id) {
                            td { a href={ "/items/" (item.id) } { (item.title) } }
                            td { (item.kind.as_str()) }
                            td { (item.row_count) }
                            td { (item.markings.join(", ")) }
                            td {
                                (if item.reference { "reference" } else { "data" })
                                @if item.stale.is_some() { " " span.warning { "(stale)" } }
                            }
                            td.from {
                                @match &item.received {
                                    Some(received) => { "received over " (super::links::via(&received.links, Some(space))) }
                                    None => "made here",
                                }
                            }
                            td { (item.updated_at) }
                        }
                    }
                }
            }
        }
    }
}

fn space_forms(space: &Space, session: &Session) -> Markup {
    html! {
        details {
            summary { "Rename or describe" }
            form.stacked method="post" action={ "/spaces/" (space.name) } {
                (csrf_field(session))
                label for="rename-name" { "Name" }
                input #rename-name type="text" name="name" required value=(space.name);
                label for="rename-description" { "Description" }
                input #rename-description type="text" name="description" value=(space.description);
                button #save-space type="submit" { "Save" }
            }
        }
        p { a.button.danger #delete-space href={ "/spaces/" (space.name) "/delete" } { "Delete space" } }
    }
}

pub(crate) async fn show(
    State(node): State<Node>,
    Path(name): Path<String>,
    Query(list): Query<ItemsPage>,
    signed_in: SignedIn,
) -> Response {
    let page_number = list.page.unwrap_or(1);
    render_space(
        &node,
        &signed_in.session,
        &name,
        page_number,
        None,
        StatusCode::OK,
    )
    .await
}

pub(crate) async fn update(
    State(node): State<Node>,
    Path(name): Path<String>,
    Checked { signed_in, fields }: Checked<SpaceFields>,
) -> Response {
    let session = &signed_in.session;
    let patch = SpacePatch {
        name: Some(fields.name.trim().to_string()),
        description: Some(fields.description),
    };
    match ferry_node::spaces::update_space(&node, &session.caller, name.clone(), patch).await {
        Ok(space) => Redirect::to(&format!("/spaces/{}", space.name)).into_response(),
        Err(e) => {
            let said = failure(&e.0.message, e.0.code.as_str());
            let status = crate::status_of(e.0.code);
            render_space(&node, session, &name, 1, Some(said), status).await
        }
    }
}

/// An upload from the space's page: the file is the body, as in `POST /api/v1/items/import`;
/// the session's CSRF token comes in `x-csrf-token`, since the body is not a form. Answers
/// JSON (the item, or the error with its code) for the page's script.
pub(crate) async fn upload_item(
    State(node): State<Node>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    signed_in: Result<SignedIn, Response>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The page's script reads JSON: a session that ended is said so, not redirected.
    let Ok(signed_in) = signed_in else {
        let ended = NodeError::new(
            ErrorCode::Unauthenticated,
            "the session ended: sign in again, then upload",
        );
        return ApiFailure(ended).into_response();
    };
    let session = &signed_in.session;
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !same_origin(&headers) || !session.csrf_matches(token) {
        let refused = NodeError::new(
            ErrorCode::Forbidden,
            "this upload did not come from this session's pages; reload the page",
        );
        return ApiFailure(refused).into_response();
    }
    // The space is the page's: a `space` the request names is dropped.
    let import = {
        let mut import = form_urlencoded::Serializer::new(String::new());
        import.append_pair("space", &name);
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if key != "space" {
                import.append_pair(&key, &value);
            }
        }
        import.finish()
    };
    let (request, body) = crate::transfers::import_of(Some(import), &headers, body);
    match ferry_node::transfer::import_item(&node, &session.caller, request, body).await {
        Ok(item) => (StatusCode::CREATED, Json(item)).into_response(),
        Err(e) => ApiFailure(e).into_response(),
    }
}

pub(crate) async fn confirm_delete(
    State(node): State<Node>,
    Path(name): Path<String>,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let space = match ferry_node::spaces::show_space(&node, &session.caller, name).await {
        Ok(space) => space,
        Err(e) => return failure_page(&node, session, "Delete space", &e),
    };
    let consequences = html! {
        @if space.item_count > 0 {
            li { "Its " (space.item_count) " items are deleted with it, and their data on this instance." }
        } @else {
            li { "It holds no item." }
        }
        @if !space.links.is_empty() {
            li { "It is linked: " (link_badges(&space.links)) ". A linked space cannot be deleted; end its links first." }
        }
        li { "It cannot be undone." }
    };
    confirmation(
        &node,
        session,
        Confirmation {
            heading: format!("Delete the space {}?", space.name),
            consequences,
            action: format!("/spaces/{}/delete", space.name),
            button_id: "confirm-delete",
            button: "Delete space",
            cancel: format!("/spaces/{}", space.name),
        },
    )
}

pub(crate) async fn delete(
    State(node): State<Node>,
    Path(name): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    // The confirmation page said what goes with it: its items.
    let force = Some("force=true".to_string());
    match ferry_node::spaces::delete_space(&node, &session.caller, name.clone(), force).await {
        Ok(()) => {
            let said = html! { div.notice role="status" { "The space " strong { (name) } " is deleted." } };
            let typed = SpaceFields::default();
            render_list(&node, session, &typed, Some(said), StatusCode::OK).await
        }
        Err(e) => {
            let said = failure(&e.0.message, e.0.code.as_str());
            let status = crate::status_of(e.0.code);
            render_space(&node, session, &name, 1, Some(said), status).await
        }
    }
}
