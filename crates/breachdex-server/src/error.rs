//! [`ApiError`]: every error a client can get, one JSON shape `{"error", "code",
//! "details"}` with a stable `code`; and the extractors wrapped so that their rejections
//! take that shape too ([`AppJson`], [`AppQuery`], [`AppPath`]).

use crate::engine::EngineError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400 `validation_error`: something the client sent is invalid.
    Validation {
        /// One sentence.
        message: String,
        /// The request field at fault, when there is one.
        field: Option<String>,
    },
    /// 400 `cursor_error`: a malformed cursor or one of another request.
    Cursor(String),
    /// 413 `validation_error`: the body is larger than the limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 405 `validation_error`: the route exists, not with this method.
    MethodNotAllowed,
    /// 401 `authentication_error`.
    Unauthenticated(&'static str),
    /// 403 `ip_not_allowed`.
    IpNotAllowed,
    /// 403 `function_not_allowed`.
    FunctionNotAllowed(&'static str),
    /// 400 `validation_error` about one entry of a list field.
    ListItem {
        /// The list field (`emails`).
        field: &'static str,
        /// The entry's position, from 0.
        index: usize,
        /// One sentence.
        message: String,
    },
    /// 403 `limit_exceeded`: a plan limit (watched identities) is reached.
    LimitExceeded {
        /// One sentence.
        message: String,
        /// The limit.
        limit: u64,
    },
    /// 404 `not_found`.
    NotFound(String),
    /// 429 `rate_limited`: the per-minute limit.
    RateLimited {
        /// Seconds until the window resets.
        retry_after: u64,
    },
    /// 429 `quota_exceeded`: the monthly quota.
    QuotaExceeded {
        /// Seconds until the month ends.
        retry_after: u64,
    },
    /// 500 `internal_error`: the detail is logged, never sent.
    Internal(String),
}

impl ApiError {
    /// A 400 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Validation { message: message.into(), field: Some(field.to_string()) }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::ListItem { .. } | ApiError::Cursor(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::IpNotAllowed | ApiError::FunctionNotAllowed(_) | ApiError::LimitExceeded { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. }
            | ApiError::ListItem { .. }
            | ApiError::PayloadTooLarge { .. }
            | ApiError::MethodNotAllowed => "validation_error",
            ApiError::LimitExceeded { .. } => "limit_exceeded",
            ApiError::Cursor(_) => "cursor_error",
            ApiError::Unauthenticated(_) => "authentication_error",
            ApiError::IpNotAllowed => "ip_not_allowed",
            ApiError::FunctionNotAllowed(_) => "function_not_allowed",
            ApiError::NotFound(_) => "not_found",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn message_and_details(&self) -> (String, Value) {
        match self {
            ApiError::Validation { message, field } => {
                (message.clone(), field.as_ref().map_or_else(|| json!({}), |f| json!({ "field": f })))
            }
            ApiError::ListItem { field, index, message } => {
                (message.clone(), json!({ "field": field, "index": index }))
            }
            ApiError::LimitExceeded { message, limit } => (message.clone(), json!({ "limit": limit })),
            ApiError::Cursor(message) => (message.clone(), json!({"field": "cursor"})),
            ApiError::PayloadTooLarge { limit } => {
                (format!("the request body is larger than {limit} bytes"), json!({ "limit_bytes": limit }))
            }
            ApiError::MethodNotAllowed => ("this method is not allowed on this route".into(), json!({})),
            ApiError::Unauthenticated(why) => ((*why).to_string(), json!({})),
            ApiError::IpNotAllowed => ("this key may not be used from this address".into(), json!({})),
            ApiError::FunctionNotAllowed(function) => {
                (format!("this key may not call {function}"), json!({ "function": function }))
            }
            ApiError::NotFound(what) => (what.clone(), json!({})),
            ApiError::RateLimited { retry_after } => (
                format!("the per-minute rate limit is reached; retry in {retry_after} s"),
                json!({ "retry_after": retry_after }),
            ),
            ApiError::QuotaExceeded { retry_after } => (
                "the monthly quota is used up; it resets at the start of the next month (UTC)".into(),
                json!({ "retry_after": retry_after }),
            ),
            ApiError::Internal(_) => ("internal error".into(), json!({})),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e.code {
            "validation_error" => ApiError::Validation { message: e.message, field: e.field.map(str::to_string) },
            "cursor_error" => ApiError::Cursor(e.message),
            _ => ApiError::Internal(e.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail = %detail, "internal error");
        }
        let (message, details) = self.message_and_details();
        let body = json!({ "error": message, "code": self.code(), "details": details });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after } | ApiError::QuotaExceeded { retry_after } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// `Json` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge { limit: crate::BODY_LIMIT }
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::field("content-type", "the body must be JSON (Content-Type: application/json)")
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::field("body", format!("the JSON body does not fit: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::field("body", format!("malformed JSON: {}", e.body_text())),
        other => ApiError::field("body", other.body_text()),
    }
}

/// A JSON request body, checked and read but not yet parsed, so that the handler can
/// parse it into borrowed fields (no allocation per string): `Content-Type` must be
/// `application/json` (or `application/*+json`), the body at most [`crate::BODY_LIMIT`]
/// bytes. Parse it with [`JsonBody::parse`].
#[derive(Debug)]
pub struct JsonBody(pub axum::body::Bytes);

impl JsonBody {
    /// Parses the body into `T`; errors are the same 400s as [`AppJson`]'s.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(|e| {
            if e.is_data() {
                ApiError::field("body", format!("the JSON body does not fit: {e}"))
            } else {
                ApiError::field("body", format!("malformed JSON: {e}"))
            }
        })
    }
}

fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // `type/subtype` before any parameters, compared without case.
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.get(subtype.len() - 5..).is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json")))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::field("content-type", "the body must be JSON (Content-Type: application/json)"));
        }
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(JsonBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge { limit: crate::BODY_LIMIT })
            }
            Err(rejection) => Err(ApiError::field("body", rejection.body_text())),
        }
    }
}

/// `Query` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(AppQuery(v)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::field("query", format!("invalid query parameters: {}", rejection.body_text()))
}

/// `Path` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(AppPath(v)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => {
            ApiError::field("path", format!("invalid path parameter: {}", e.body_text()))
        }
        other => ApiError::Internal(other.body_text()),
    }
}
