//! API errors: one JSON shape, `{"error": {"code", "message"}}`, with the status mapped in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vuoro_engine::{Conflict, EngineError};

/// Every error code the API answers with, each with its HTTP status (docs/api.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Malformed,
    Unauthenticated,
    Forbidden,
    OriginNotAllowed,
    NotFound,
    MethodNotAllowed,
    Conflict(Conflict),
    TooLarge,
    UnsupportedMediaType,
    Invalid,
    /// A change that must name the version it changes (`If-Match`) did not.
    PreconditionRequired,
    RateLimited,
    Unavailable,
    NoSpeech,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Malformed => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::OriginNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict(_) => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable | ErrorCode::NoSpeech => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict(c) => c.as_str(),
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Invalid => "invalid",
            ErrorCode::PreconditionRequired => "precondition_required",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NoSpeech => "no_speech",
        }
    }

    /// The code for an answer of `status` that names none (the router's own rejections).
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::CONFLICT => ErrorCode::Conflict(Conflict::Conflict),
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::Invalid,
            StatusCode::PRECONDITION_REQUIRED => ErrorCode::PreconditionRequired,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
            s if s.is_server_error() => ErrorCode::Unavailable,
            _ => ErrorCode::Malformed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
    pub fn malformed(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Malformed, m)
    }
    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "Sign in first (or your session has expired).",
        )
    }
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, m)
    }
    pub fn invalid(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Invalid, m)
    }
    pub fn rate_limited() -> ApiError {
        ApiError::new(
            ErrorCode::RateLimited,
            "Too many requests; try again in a while.",
        )
    }
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, m)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::Invalid(m) => ApiError::invalid(m),
            EngineError::Conflict { code, message } => {
                ApiError::new(ErrorCode::Conflict(code), message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({"error": {"code": self.code.as_str(), "message": self.message}});
        (self.code.status(), Json(body)).into_response()
    }
}

/// JSON bodies: a body that does not parse is 400 `malformed` with serde's explanation, never axum's text.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::malformed(format!("cannot read body: {e}")))?;
        let src: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(src).map(JsonBody).map_err(|e| {
            // A word outside its list (a priority, a position) is well formed but invalid, like an
            // unknown service.
            if e.classify() == serde_json::error::Category::Data
                && e.to_string().starts_with("unknown variant")
            {
                ApiError::invalid(format!("invalid value: {e}"))
            } else {
                ApiError::malformed(format!("invalid JSON body: {e}"))
            }
        })
    }
}

/// The body of a request that takes none: empty, or an empty JSON object. Anything else is refused
/// before the request does anything.
pub struct NoBody;

impl<'de> serde::Deserialize<'de> for NoBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NoBody, D::Error> {
        let fields = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        if fields.is_empty() {
            Ok(NoBody)
        } else {
            Err(serde::de::Error::custom("this request takes no fields"))
        }
    }
}
