//! The overview: who this instance is.

use super::layout::page;
use super::session::SignedIn;
use axum::extract::State;
use axum::response::Html;
use ferry_node::Node;
use maud::html;

/// The overview: who this instance is.
pub(crate) async fn home(State(node): State<Node>, signed_in: SignedIn) -> Html<String> {
    let info = &node.info;
    let body = html! {
        h1 { "Overview" }
        dl.facts {
            dt { "Title" } dd { (info.title) }
            dt { "Instance id" } dd id="instance-id" { (info.instance_id) }
            dt { "Public URL" } dd { (info.public_url) }
            dt { "Key fingerprint" } dd id="fingerprint" { (info.fingerprint) }
        }
    };
    Html(page(&node, Some(&signed_in.session), "Overview", body).into_string())
}
