//! The audit log: trust and security events, newest first, filtered by kind and time, a page at
//! a time. Admins only.

use super::layout::{failure_page, needs_admin, page};
use super::session::SignedIn;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use maud::html;
use serde::Deserialize;

/// Entries on one page.
const PAGE: usize = 100;

/// The kinds of event a reader can pick (the part of the event name before its dot).
const KINDS: [(&str, &str); 8] = [
    ("", "every kind"),
    ("peer", "peer connections"),
    ("collab", "collaborations"),
    ("token", "tokens"),
    ("policy", "network policy"),
    ("federation", "refused calls"),
    ("sync", "sync"),
    ("console", "console"),
];

#[derive(Deserialize, Default)]
pub(crate) struct Filter {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    before: Option<i64>,
}

fn query_of(filter: &Filter, before: Option<i64>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("kind", &filter.kind);
    q.append_pair("since", &filter.since);
    if let Some(before) = before {
        q.append_pair("before", &before.to_string());
    }
    q.finish()
}

pub(crate) async fn list(
    State(node): State<Node>,
    signed_in: SignedIn,
    Query(filter): Query<Filter>,
) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    let session = &signed_in.session;
    let asked = format!(
        "newest=true&limit={PAGE}&{}",
        query_of(&filter, filter.before)
    );
    let entries = match ferry_node::trust::list_audit(&node, &session.caller, Some(asked)).await {
        Ok(entries) => entries,
        Err(e) => return failure_page(&node, session, "Audit log", &e),
    };
    let older = (entries.len() == PAGE)
        .then(|| entries.last().map(|e| query_of(&filter, Some(e.seq))))
        .flatten();
    let body = html! {
        h1 { "Audit log" }
        form.inline method="get" action="/audit" {
            label for="audit-kind" { "Kind" }
            select #audit-kind name="kind" {
                @for (value, label) in KINDS {
                    option value=(value) selected[filter.kind == value] { (label) }
                }
            }
            label for="audit-since" { "Since" }
            input #audit-since type="date" name="since" value=(filter.since);
            button type="submit" #filter-audit { "Show" }
        }
        @if entries.is_empty() {
            p.empty { "No entry matches." }
        } @else {
            table.list #audit {
                thead { tr { th { "When" } th { "Who" } th { "Event" } th { "Subject" } th { "Detail" } } }
                tbody {
                    @for entry in &entries {
                        tr data-event=(entry.event) {
                            td { (entry.at) }
                            td { (entry.actor) }
                            td { code { (entry.event) } }
                            td { (entry.subject.as_deref().unwrap_or("")) }
                            td.detail { code { (entry.detail.to_string()) } }
                        }
                    }
                }
            }
        }
        @if let Some(older) = older {
            p { a #older href={ "/audit?" (older) } { "Older entries" } }
        }
    };
    Html(page(&node, Some(session), "Audit log", body).into_string()).into_response()
}
