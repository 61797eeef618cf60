//! An item's page: its metadata, schema and markings, the links of its space that carry it, its
//! rows a page at a time with the API's filters, and downloads. Everyone signed in reads.

use super::layout::{Checked, csrf_field, failure, failure_page, page};
use super::links::{link_badges, via};
use super::session::SignedIn;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::Node;
use ferry_node::sessions::Session;
use ferry_proto::{ErrorCode, Item, ItemKind, ItemPatch, Role, RowPage, SyncAs};
use maud::{Markup, html};

/// Rows shown on one page of an item.
const ROWS_SHOWN: usize = 50;

/// The filters a person can set on the rows (those of `GET /api/v1/items/{id}/rows`).
#[derive(Default)]
struct Filters {
    filter: String,
    bbox: String,
    after: String,
}

impl Filters {
    fn read(query: Option<&str>) -> Filters {
        let mut filters = Filters::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "where" => filters.filter = value.into_owned(),
                "bbox" => filters.bbox = value.into_owned(),
                "after" => filters.after = value.into_owned(),
                _ => {}
            }
        }
        filters
    }

    /// The query for the node, `after` a cursor or from the start.
    fn query(&self, after: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &ROWS_SHOWN.to_string());
        for (name, value) in [
            ("where", &self.filter),
            ("bbox", &self.bbox),
            ("after", &after.to_string()),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }
}

pub(crate) async fn show(
    State(node): State<Node>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let caller = &session.caller;
    let item = match ferry_node::items::show_item(&node, caller, id.clone()).await {
        Ok(item) => item,
        Err(e) => return failure_page(&node, session, "Item", &e),
    };
    let space = ferry_node::spaces::show_space(&node, caller, item.space_id.to_string()).await;
    let filters = Filters::read(query.as_deref());
    let rows = if item.kind == ItemKind::File {
        None
    } else {
        let query = filters.query(&filters.after);
        Some(ferry_node::items::query_rows(&node, caller, id, Some(query)).await)
    };
    let body = html! {
        h1 { (item.title) }
        @if !item.description.is_empty() { p.lead { (item.description) } }
        @if let Some(why) = &item.stale { p.warning { "Its latest version was refused here: " (why) } }
        (facts(&item, space.as_ref().ok()))
        (downloads(&item))
        @if item.received.is_none() && session.caller.role != Role::Viewer {
            (share_form(&item, session))
            @if item.kind != ItemKind::File { (two_way_form(&item, session)) }
        }
        @if let Some(schema) = &item.schema {
            h2 { "Schema" }
            table.list #schema {
                thead { tr { th { "Field" } th { "Type" } } }
                tbody {
                    @for field in &schema.fields {
                        tr {
                            td { (field.name) @if schema.primary_key.as_deref() == Some(field.name.as_str()) { " (key)" } }
                            td { (field.field_type.as_str()) }
                        }
                    }
                }
            }
        }
        @if item.kind == ItemKind::FeatureLayer && item.row_count > 0 && !ferry_node::map::drawable(&item) {
            h2 { "Map" }
            p.hint #no-map { "The map draws layers in longitude and latitude (EPSG:4326); this layer is in " (item.crs.as_deref().unwrap_or("another CRS")) ". Export it to see it in a GIS." }
        }
        @if ferry_node::map::drawable(&item) && item.row_count > 0 {
            h2 { "Map" }
            div.map-frame {
                @let basemap = node.info.basemap.as_ref().map(|b| b.url.as_str());
                @if basemap.is_some() { div #basemap .basemap aria-hidden="true" {} }
                canvas #map .over-basemap[basemap.is_some()] data-tiles={ "/items/" (item.id) "/tiles" }
                    data-basemap=[basemap] width="960" height="480"
                    tabindex="0" aria-label={ "Map of " (item.title) ": drag to pan, wheel or + and − to zoom, click a feature for its properties" } {}
                div.map-buttons {
                    button #zoom-in type="button" aria-label="Zoom in" { "+" }
                    button #zoom-out type="button" aria-label="Zoom out" { "−" }
                }
            }
            p.hint #map-status role="status" {}
            dl.facts #feature-properties {}
        }
        @match rows {
            Some(Ok(page)) => (rows_section(&item, &filters, &page)),
            Some(Err(e)) => { h2 { "Rows" } (filter_form(&item, &filters)) (failure(&e.0.message, e.0.code.as_str())) }
            None => {}
        }
    };
    Html(page(&node, Some(session), &item.title, body).into_string()).into_response()
}

fn facts(item: &Item, space: Option<&ferry_proto::Space>) -> Markup {
    html! {
        dl.facts #item-facts {
            dt { "Kind" } dd { (item.kind.as_str()) }
            dt { "Space" } dd {
                @if let Some(space) = space { a href={ "/spaces/" (space.name) } { (space.name) } }
            }
            dt { "Rows" } dd #row-count { (item.row_count) }
            @if let Some(geometry) = &item.geometry_type { dt { "Geometry" } dd { (geometry.as_str()) } }
            @if let Some(crs) = &item.crs { dt { "CRS" } dd { (crs) } }
            dt { "Markings" } dd #markings { @if item.markings.is_empty() { "none" } @else { (item.markings.join(", ")) } }
            dt { "Here as" } dd #held-as {
                @if item.reference { "a reference: its rows are read from its origin when asked" } @else { "data held here" }
            }
            dt { "Links send it as" } dd { (item.sync_as.as_str()) }
            dt { "Version" } dd { (item.version) }
            dt { "Owner" } dd { (item.owner) }
            dt { "Created" } dd { (item.created_at) }
            dt { "Last change" } dd { (item.updated_at) }
            dt { "Came from" } dd #item-origin {
                @match &item.received {
                    Some(received) => {
                        "instance " code { (received.origin_instance) } " (its item " code { (received.origin_item) } "), over "
                        (via(&received.links, space))
                    }
                    None => "made here",
                }
            }
            dt { "Edits" } dd #item-edits {
                @match (&item.received, item.two_way) {
                    (Some(_), Some(t)) => {
                        "two-way (" (t.conflict_policy.as_str()) "): edits here go back to its origin at the next run, if a link straight to the origin carries its type both ways"
                    }
                    (Some(_), None) => "read-only here: a received item changes only at its origin, and the next sync brings its changes",
                    (None, Some(t)) => {
                        "made here, and two-way: copies that may edit send their edits here, where concurrent ones become conflicts (" (t.conflict_policy.as_str()) ")"
                    }
                    (None, None) => "made here: its owner's instance",
                }
            }
            dt { "Links that carry it" } dd #item-links {
                @match space {
                    Some(space) if !space.links.is_empty() => (link_badges(&space.links)),
                    _ => "none: its space is not linked",
                }
            }
        }
    }
}

/// How the item's owner lets links send it: as their setting says, or always as a copy or a
/// reference (datasets and layers).
fn share_form(item: &Item, session: &Session) -> Markup {
    let choices: &[(&str, &str)] = if item.kind == ItemKind::File {
        &[("link", "as each link says"), ("copy", "always as a copy")]
    } else {
        &[
            ("link", "as each link says"),
            ("copy", "always as a copy"),
            ("reference", "always as a reference"),
        ]
    };
    html! {
        form.inline method="post" action={ "/items/" (item.id) "/share" } {
            (csrf_field(session))
            label for="sync-as" { "Links send it" }
            select #sync-as name="sync_as" {
                @for (value, label) in choices {
                    option value=(value) selected[item.sync_as.as_str() == *value] { (label) }
                }
            }
            button #save-share type="submit" { "Save" }
        }
    }
}

/// Two-way editing, for the item's owner: off, or on with a conflict policy.
fn two_way_form(item: &Item, session: &Session) -> Markup {
    let current = item
        .two_way
        .map(|t| t.conflict_policy.as_str())
        .unwrap_or("off");
    let choices = [
        ("off", "off: copies are read-only"),
        ("origin_wins", "on: this instance's value wins a conflict"),
        ("latest_wins", "on: the later edit wins a conflict"),
        ("manual", "on: an admin decides each conflict"),
    ];
    html! {
        form.inline method="post" action={ "/items/" (item.id) "/two-way" } {
            (csrf_field(session))
            label for="two-way" { "Two-way editing" }
            select #two-way name="two_way" {
                @for (value, label) in choices {
                    option value=(value) selected[current == value] { (label) }
                }
            }
            button #save-two-way type="submit" { "Save" }
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct TwoWayFields {
    #[serde(default)]
    two_way: String,
}

/// Turns two-way editing on with a policy, or off.
pub(crate) async fn set_two_way(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<TwoWayFields>,
) -> Response {
    let session = &signed_in.session;
    let patch = match fields.two_way.as_str() {
        "off" => ItemPatch {
            two_way: Some(false),
            ..ItemPatch::default()
        },
        other => match ferry_proto::twoway::ConflictPolicy::parse(other) {
            Some(policy) => ItemPatch {
                two_way: Some(true),
                conflict_policy: Some(policy),
                ..ItemPatch::default()
            },
            None => {
                let error = ferry_node::NodeError::new(
                    ErrorCode::InvalidRequest,
                    format!("'{other}' is not off, origin_wins, latest_wins or manual"),
                );
                return failure_page(&node, session, "Item", &error);
            }
        },
    };
    match ferry_node::items::update_item(&node, &session.caller, id.clone(), patch).await {
        Ok(_) => Redirect::to(&format!("/items/{id}")).into_response(),
        Err(e) => failure_page(&node, session, "Item", &e),
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct ShareFields {
    #[serde(default)]
    sync_as: String,
}

pub(crate) async fn share(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<ShareFields>,
) -> Response {
    let session = &signed_in.session;
    let Some(sync_as) = SyncAs::parse(&fields.sync_as) else {
        let error = ferry_node::NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "'{}' is not a way to share: use link, copy or reference",
                fields.sync_as
            ),
        );
        return failure_page(&node, session, "Item", &error);
    };
    let patch = ItemPatch {
        sync_as: Some(sync_as),
        ..ItemPatch::default()
    };
    match ferry_node::items::update_item(&node, &session.caller, id.clone(), patch).await {
        Ok(_) => Redirect::to(&format!("/items/{id}")).into_response(),
        Err(e) => failure_page(&node, session, "Item", &e),
    }
}

fn downloads(item: &Item) -> Markup {
    let formats: &[(&str, &str)] = match item.kind {
        ItemKind::FeatureLayer => &[("geojson", "GeoJSON"), ("csv", "CSV"), ("ndjson", "NDJSON")],
        ItemKind::Dataset => &[("csv", "CSV"), ("ndjson", "NDJSON")],
        ItemKind::File => &[],
    };
    html! {
        div.buttons #downloads {
            @if item.kind == ItemKind::File {
                a.button href={ "/items/" (item.id) "/export" } download { "Download file" }
            }
            @for (format, label) in formats {
                a.button href={ "/items/" (item.id) "/export?format=" (format) } download { "Export " (label) }
            }
        }
    }
}

fn filter_form(item: &Item, filters: &Filters) -> Markup {
    html! {
        form.inline method="get" action={ "/items/" (item.id) } {
            label for="rows-where" { "Where" }
            input #rows-where type="text" name="where" value=(filters.filter) placeholder="field:value";
            @if item.kind == ItemKind::FeatureLayer {
                label for="rows-bbox" { "Inside" }
                input #rows-bbox type="text" name="bbox" value=(filters.bbox) placeholder="min_x,min_y,max_x,max_y";
            }
            button #filter-rows type="submit" { "Filter" }
        }
    }
}

fn rows_section(item: &Item, filters: &Filters, page: &RowPage) -> Markup {
    let fields: Vec<&str> = item
        .schema
        .iter()
        .flat_map(|s| s.fields.iter().map(|f| f.name.as_str()))
        .collect();
    let next = page.next.as_ref().map(|cursor| {
        let query = filters
            .query(cursor)
            .replace(&format!("limit={ROWS_SHOWN}&"), "");
        format!("/items/{}?{query}", item.id)
    });
    html! {
        h2 { "Rows" }
        (filter_form(item, filters))
        @if page.rows.is_empty() {
            p.empty { "No row matches." }
        } @else {
            div.scroll {
                table.list #rows {
                    thead { tr {
                        th { "Key" }
                        @for field in &fields { th { (field) } }
                        @if item.kind == ItemKind::FeatureLayer { th { "Geometry" } }
                    } }
                    tbody {
                        @for row in &page.rows {
                            tr {
                                td { (cell(&row.key)) }
                                @for field in &fields { td { (cell(&row.values[*field])) } }
                                @if item.kind == ItemKind::FeatureLayer {
                                    td { (row.geometry.as_ref().and_then(|g| g["type"].as_str()).unwrap_or("none")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next { nav.pager { a rel="next" href=(next) { "Next rows ›" } } }
    }
}

/// A value as a person reads it: text as itself, null as empty, the rest as JSON.
fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The features of a feature layer that touch one map tile, with their properties: what the
/// item page's map draws, a tile at a time, never the whole layer.
pub(crate) async fn tile(
    State(node): State<Node>,
    Path((id, z, x, y)): Path<(String, u32, u32, u32)>,
    signed_in: SignedIn,
) -> Response {
    let caller = &signed_in.session.caller;
    match ferry_node::map::tile(&node, caller, &id, (z, x, y)).await {
        Ok(tile) => axum::Json(tile).into_response(),
        Err(e) => crate::error::ApiFailure(e).into_response(),
    }
}

/// An item's content, downloaded with the session (GeoJSON, CSV, NDJSON, or a file's bytes).
pub(crate) async fn export(
    State(node): State<Node>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    match ferry_node::transfer::export_item(&node, &session.caller, id, query, None).await {
        Ok(export) => crate::transfers::export_response(export),
        Err(e) => failure_page(&node, session, "Export", &e),
    }
}
