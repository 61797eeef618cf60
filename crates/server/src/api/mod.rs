//! `/api/v1`: the REST API. Handlers parse, call the store on a blocking thread, and shape the
//! answer; rules live in `ferry-core`, persistence in `ferry-store`.

pub(crate) mod collabs;
mod instance;
pub(crate) mod items;
pub(crate) mod peers;
mod spaces;
mod sync;
mod transfer;
mod trust;

use crate::error::{ApiFailure, ApiResult};
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use ferry_proto::ErrorCode;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry API", description = "Administer a Ferry instance: spaces, items, rows, tokens and the change feed."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "instance"), (name = "tokens"), (name = "spaces"), (name = "items"), (name = "rows"), (name = "policy"), (name = "peers"), (name = "collaborations"), (name = "sync"))
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
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(instance::show_instance))
        .routes(routes!(instance::list_tokens, instance::create_token))
        .routes(routes!(instance::revoke_token))
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

pub(crate) fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes
}

/// A fresh 128-bit id, as lowercase hex: the form ids take inside signed tickets.
pub(crate) fn hex_id() -> String {
    hex(&random::<16>())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// The bytes of an id made by [`hex_id`] (zeros for anything else).
pub(crate) fn id_bytes(hex: &str) -> [u8; 16] {
    data_encoding::HEXLOWER
        .decode(hex.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default()
}

pub(crate) fn rfc3339(unix: i64) -> String {
    ferry_core::time::from_unix(unix)
}

/// A JSON body whose every rejection becomes a Ferry error with a stable code.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiFailure> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiFailure {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiFailure::new(
            ErrorCode::UnsupportedContentType,
            "this call takes a JSON body: send 'Content-Type: application/json'",
        ),
        JsonRejection::BytesRejection(r)
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiFailure::new(
                ErrorCode::BodyTooLarge,
                "the request body is larger than this instance accepts (max_body_bytes)",
            )
        }
        other => ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("the JSON body is not valid: {}", other.body_text()),
        ),
    }
}

/// Query parameters as ordered pairs, so that a parameter may repeat (`tag=a&tag=b`).
pub(crate) struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub(crate) fn parse(raw: Option<&str>) -> QueryPairs {
        QueryPairs(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> ApiResult<Option<T>> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiFailure::new(
                        ErrorCode::InvalidRequest,
                        format!("'{name}' must be a number, got '{v}'"),
                    )
                })
            })
            .transpose()
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "yes"))
    }
}
