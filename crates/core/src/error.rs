use ferry_proto::ErrorCode;

/// Why a piece of input was refused. Each variant has one stable wire code ([`CoreError::code`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidMarking(String),
    #[error("{0}")]
    InvalidSchema(String),
    #[error("{0}")]
    SchemaMismatch(String),
    #[error("{0}")]
    InvalidGeometry(String),
    #[error("{0}")]
    MalformedGeojson(String),
    #[error("{0}")]
    MalformedCsv(String),
    #[error("{0}")]
    MalformedNdjson(String),
    #[error("{0}")]
    DuplicateKey(String),
    #[error("{0}")]
    RowNotFound(String),
}

impl CoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            CoreError::InvalidMarking(_) => ErrorCode::InvalidMarking,
            CoreError::InvalidSchema(_) => ErrorCode::InvalidSchema,
            CoreError::SchemaMismatch(_) => ErrorCode::SchemaMismatch,
            CoreError::InvalidGeometry(_) => ErrorCode::InvalidGeometry,
            CoreError::MalformedGeojson(_) => ErrorCode::MalformedGeojson,
            CoreError::MalformedCsv(_) => ErrorCode::MalformedCsv,
            CoreError::MalformedNdjson(_) => ErrorCode::MalformedNdjson,
            CoreError::DuplicateKey(_) => ErrorCode::DuplicateKey,
            CoreError::RowNotFound(_) => ErrorCode::RowNotFound,
        }
    }

    /// Prefixes the message with where the problem is ("feature 17: ...").
    pub fn at(self, place: impl std::fmt::Display) -> CoreError {
        let wrap = |m: String| format!("{place}: {m}");
        match self {
            CoreError::InvalidRequest(m) => CoreError::InvalidRequest(wrap(m)),
            CoreError::InvalidMarking(m) => CoreError::InvalidMarking(wrap(m)),
            CoreError::InvalidSchema(m) => CoreError::InvalidSchema(wrap(m)),
            CoreError::SchemaMismatch(m) => CoreError::SchemaMismatch(wrap(m)),
            CoreError::InvalidGeometry(m) => CoreError::InvalidGeometry(wrap(m)),
            CoreError::MalformedGeojson(m) => CoreError::MalformedGeojson(wrap(m)),
            CoreError::MalformedCsv(m) => CoreError::MalformedCsv(wrap(m)),
            CoreError::MalformedNdjson(m) => CoreError::MalformedNdjson(wrap(m)),
            CoreError::DuplicateKey(m) => CoreError::DuplicateKey(wrap(m)),
            CoreError::RowNotFound(m) => CoreError::RowNotFound(wrap(m)),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
