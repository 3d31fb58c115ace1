//! The one error type of the compose model. Every message names where the
//! problem is: the file (as the user named it), the path of the field inside
//! it (`services.web.ports[0]`), and what is wrong with the value.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComposeError {
    /// A value in a compose file: `compose.yaml: services.web.ports[0]: invalid port "80:80:80:80"`.
    #[error("{file}: {path}: {message}")]
    Field {
        file: String,
        path: String,
        message: String,
    },
    /// A whole file: it cannot be read, or it is not YAML.
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// Not tied to one file: no compose file found, an unknown service named
    /// on the command line, a bad project name.
    #[error("{0}")]
    Project(String),
}

impl ComposeError {
    pub(crate) fn field(file: &str, path: &str, message: impl Into<String>) -> Self {
        ComposeError::Field {
            file: file.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn file(file: &str, message: impl Into<String>) -> Self {
        ComposeError::File {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, ComposeError>;

/// `services.web` + `ports` → `services.web.ports`; an empty parent gives the child alone.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// `services.web.ports` + 0 → `services.web.ports[0]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
