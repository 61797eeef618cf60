//! `/api/v1`: the REST API for local users. A handler extracts its inputs (the caller is
//! authenticated before it runs), calls one node operation, and shapes the answer.

mod collabs;
mod conflicts;
mod instance;
mod items;
mod peers;
mod spaces;
mod sync;
mod transfer;
mod trust;

use ferry_node::Node;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry API", description = "Administer a Ferry instance: spaces, items, rows, tokens and the change feed."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "instance"), (name = "tokens"), (name = "spaces"), (name = "items"), (name = "rows"), (name = "policy"), (name = "peers"), (name = "collaborations"), (name = "sync"), (name = "conflicts"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// All `/api/v1` routes, with their OpenAPI description.
pub(crate) fn routes() -> OpenApiRouter<Node> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(instance::show_instance))
        .routes(routes!(instance::list_tokens, instance::create_token))
        .routes(routes!(instance::revoke_token))
        .routes(routes!(instance::create_login_link))
        .routes(routes!(spaces::list_spaces, spaces::create_space))
        .routes(routes!(
            spaces::show_space,
            spaces::update_space,
            spaces::delete_space
        ))
        .routes(routes!(spaces::changes))
        .routes(routes!(items::list_items, items::create_item))
        .routes(routes!(
            items::show_item,
            items::update_item,
            items::delete_item
        ))
        .routes(routes!(items::query_rows))
        .routes(routes!(items::apply_edits))
        .routes(routes!(items::accept_schema))
        .routes(routes!(conflicts::list_conflicts))
        .routes(routes!(conflicts::show_conflict))
        .routes(routes!(conflicts::resolve_conflict))
        .routes(routes!(transfer::import_item))
        .routes(routes!(transfer::export_item))
        .routes(routes!(trust::list_policies, trust::add_policy))
        .routes(routes!(trust::remove_policy))
        .routes(routes!(trust::list_audit))
        .routes(routes!(peers::list_peers))
        .routes(routes!(peers::create_request))
        .routes(routes!(peers::import_code))
        .routes(routes!(peers::show_peer, peers::delete))
        .routes(routes!(peers::approve))
        .routes(routes!(peers::accept_response_file))
        .routes(routes!(peers::response_file))
        .routes(routes!(peers::activate))
        .routes(routes!(peers::disable))
        .routes(routes!(peers::enable))
        .routes(routes!(peers::check))
        .routes(routes!(peers::propose_security))
        .routes(routes!(peers::narrow_sends))
        .routes(routes!(peers::approve_security))
        .routes(routes!(peers::reject_security))
        .routes(routes!(peers::refresh_request))
        .routes(routes!(peers::invalidate_request))
        .routes(routes!(collabs::list_collabs, collabs::host::create))
        .routes(routes!(collabs::show_collab, collabs::host::delete))
        .routes(routes!(collabs::host::add_workspace))
        .routes(routes!(
            collabs::host::update_workspace,
            collabs::host::delete_workspace
        ))
        .routes(routes!(collabs::link, collabs::unlink))
        .routes(routes!(collabs::set_share))
        .routes(routes!(collabs::set_delete_policy))
        .routes(routes!(collabs::check))
        .routes(routes!(collabs::set_security))
        .routes(routes!(sync::sync_now))
        .routes(routes!(sync::sync_status))
        .routes(routes!(sync::sync_history))
        .routes(routes!(sync::list_schedules, sync::set_schedule))
        .routes(routes!(collabs::host::set_access))
        .routes(routes!(collabs::host::remove_guest))
        .routes(routes!(
            collabs::host::invite,
            collabs::host::list_invitations
        ))
        .routes(routes!(collabs::host::refresh_invitation))
        .routes(routes!(collabs::host::invalidate_invitation))
        .routes(routes!(collabs::host::import_response))
        .routes(routes!(collabs::guest::preview))
        .routes(routes!(collabs::guest::accept))
        .routes(routes!(collabs::guest::refresh))
        .routes(routes!(collabs::guest::leave))
}
