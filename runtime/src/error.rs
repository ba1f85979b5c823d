//! The one error type of the runtime. Every failure a user can cause ends
//! here, as a message on stderr and a non-zero exit code, never a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The executable carries no payload trailer.
    #[error("{}: this executable has no model payload (was it built by dittoc?)", .path.display())]
    NoPayload { path: PathBuf },

    /// The payload is there but broken: trailer, manifest or a section.
    #[error("{}: bad model payload: {problem}", .path.display())]
    BadPayload { path: PathBuf, problem: String },

    /// The tokenizer or tokenizer_config section cannot be used.
    #[error("bad tokenizer: {0}")]
    BadTokenizer(String),

    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),

    /// A datastore file (`--datastore`) cannot be used: missing, damaged,
    /// or built for another tokenizer.
    #[error("{0}")]
    Datastore(String),

    /// Reading or writing a file (or stdout) failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The executable itself is wrongly put together (linked BLIS, entry
    /// points) or the system refuses threads.
    #[error("{0}")]
    Setup(String),

    /// Memory for the caches or buffers could not be had.
    #[error("out of memory: cannot allocate {bytes} bytes for the {what}")]
    OutOfMemory { what: &'static str, bytes: usize },
}

impl Error {
    /// 2 for a bad command line, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<ditto_files::FileError> for Error {
    fn from(e: ditto_files::FileError) -> Self {
        match e {
            ditto_files::FileError::Io {
                path,
                action,
                source,
            } => Error::io(format!("{}: {action}", path.display()), source),
            overwrite @ ditto_files::FileError::Overwrite { .. } => {
                Error::Usage(overwrite.to_string())
            }
        }
    }
}
