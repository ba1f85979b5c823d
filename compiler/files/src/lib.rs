//! Files the tools read and write, handled so that no run can hurt its
//! inputs (issue 16, "Outputs that cannot hurt inputs"). Every writer of the
//! compiler and the runtime goes through this crate:
//!
//! | module | what |
//! |---|---|
//! | [`output`] | every output written to a temporary file beside it and renamed into place ([`Staged`], [`write`], [`write_with`], [`copy`]): a failed or interrupted run leaves the old file as it was |
//! | [`overlap`] | an output that is one of the inputs is refused before anything is written ([`refuse_overwrite`]): same canonical path, or same device and inode (hard and symbolic links) |
//! | [`inside`] | a file named by a file (a shard index, a module's sidecar attributes) resolved inside its directory ([`resolve_inside`]) |
//! | [`walk`] | a directory walk that follows symbolic links but reads each directory once, so a link loop ends ([`files_under`]) |
//!
//! No MLIR here: the runtime links this crate too.

use std::path::{Path, PathBuf};

pub mod inside;
pub mod output;
pub mod overlap;
pub mod walk;

pub use inside::{resolve_inside, Outside, Symlinks};
pub use output::{commit_all, copy, scratch, stage, stage_copy, write, write_with, Staged};
pub use overlap::{refuse_overwrite, same_file};
pub use walk::files_under;

/// A file operation that failed, naming the file and the flag concerned.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading, writing or renaming `path` failed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// An output of the command line is one of its inputs.
    #[error("{flag} {}: {problem}, which would be overwritten (choose another output path)", value.display())]
    Overwrite {
        /// The flag that names the output (`-o`, `--dump-logits`).
        flag: String,
        /// The flag's value.
        value: PathBuf,
        /// Which output is which input.
        problem: String,
    },
}

impl FileError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        FileError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// The directory a file named by `path` is in (`.` for a bare file name).
pub fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}
