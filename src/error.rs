//! crid's typed error. Every domain module returns `Result<T>`; the gRPC edge
//! (`server/`) converts to `tonic::Status` exactly once, through `From<Error>`.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// A containerd call failed; `op` names the call, the status keeps its code.
    #[error("containerd {op}: {status}")]
    Containerd {
        op: &'static str,
        status: tonic::Status,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn precondition(msg: impl Into<String>) -> Self {
        Error::FailedPrecondition(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    pub fn containerd(op: &'static str, status: tonic::Status) -> Self {
        Error::Containerd { op, status }
    }

    /// True when the error is containerd (or crid) saying the object does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) => true,
            Error::Containerd { status, .. } => status.code() == tonic::Code::NotFound,
            _ => false,
        }
    }

    pub fn is_already_exists(&self) -> bool {
        match self {
            Error::AlreadyExists(_) => true,
            Error::Containerd { status, .. } => status.code() == tonic::Code::AlreadyExists,
            _ => false,
        }
    }

    /// Prefix the message with the step that failed (used by rollbacks).
    pub fn context(self, step: &str) -> Self {
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{step}: {m}")),
            Error::NotFound(m) => Error::NotFound(format!("{step}: {m}")),
            Error::AlreadyExists(m) => Error::AlreadyExists(format!("{step}: {m}")),
            Error::FailedPrecondition(m) => Error::FailedPrecondition(format!("{step}: {m}")),
            Error::Unauthenticated(m) => Error::Unauthenticated(format!("{step}: {m}")),
            Error::DeadlineExceeded(m) => Error::DeadlineExceeded(format!("{step}: {m}")),
            Error::Unavailable(m) => Error::Unavailable(format!("{step}: {m}")),
            Error::Internal(m) => Error::Internal(format!("{step}: {m}")),
            Error::Io { context, source } => Error::Io {
                context: format!("{step}: {context}"),
                source,
            },
            other => Error::Internal(format!("{step}: {other}")),
        }
    }

    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Containerd { status, .. } => match status.code() {
                // containerd being unreachable is "unavailable" to kubelet too.
                Code::Unavailable | Code::Unknown if status.message().contains("transport") => {
                    Code::Unavailable
                }
                c => c,
            },
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Code::NotFound
            }
            Error::Io { .. } | Error::Internal(_) => Code::Internal,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_typed_errors_to_grpc_codes() {
        assert_eq!(
            tonic::Status::from(Error::invalid("metadata.name is empty")).code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            tonic::Status::from(Error::containerd(
                "Containers.Get",
                tonic::Status::not_found("x")
            ))
            .code(),
            tonic::Code::NotFound
        );
        assert!(Error::containerd("Tasks.Get", tonic::Status::not_found("x")).is_not_found());
    }

    #[test]
    fn context_names_the_failed_step() {
        let e = Error::internal("boom").context("CNI ADD");
        assert_eq!(e.to_string(), "internal: CNI ADD: boom");
    }
}
