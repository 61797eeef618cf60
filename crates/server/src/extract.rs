//! Request bodies as handlers take them: every rejection is a Ferry error with a stable code.

use crate::error::ApiFailure;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use ferry_proto::ErrorCode;
use serde::de::DeserializeOwned;

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
