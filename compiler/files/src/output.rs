//! Outputs written to a temporary file in the output's own directory and
//! renamed over the output once complete (rename(2) replaces a file
//! atomically within a file system). Until then the old file, if any, is
//! untouched; on any error, and when a [`Staged`] is dropped without
//! [`Staged::commit`], the temporary file is removed. A process killed
//! outright (SIGKILL, or SIGINT with its default action) cannot remove it:
//! the old output is still intact, and `.NAME.XXXXXX.tmp` may be left beside
//! it. (Nothing is synced to disk: this protects against failed and
//! interrupted runs, not a power loss.)
//!
//! A new output gets the mode a newly created file would (0666, or 0777 for
//! executables, less the umask), also when it replaces an older file. An
//! output that is a symbolic link is replaced by the new file; the link's
//! target is left alone.

use std::{
    ffi::OsString,
    fs::{File, Permissions},
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use crate::{directory_of, FileError};

/// An output being written: a temporary file beside `target`, renamed onto
/// it by [`Staged::commit`] and removed if dropped before.
#[derive(Debug)]
pub struct Staged {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl Staged {
    /// A temporary file for the regular file `target`.
    pub fn new(target: &Path) -> Result<Self, FileError> {
        Self::with_mode(target, 0o666)
    }

    /// A temporary file for the executable `target`.
    pub fn executable(target: &Path) -> Result<Self, FileError> {
        Self::with_mode(target, 0o777)
    }

    fn with_mode(target: &Path, mode: u32) -> Result<Self, FileError> {
        let name = target.file_name().ok_or_else(|| {
            FileError::io(
                target,
                "cannot write",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
            )
        })?;
        let mut prefix = OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(directory_of(target))
            .map_err(|e| FileError::io(target, "cannot create a temporary file beside it", e))?;
        Ok(Staged {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The temporary file's path, for writers that open a path themselves
    /// (a linker, safetensors, LLVM).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// The output this will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file, open for writing.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Renames the finished file onto the target.
    pub fn commit(self) -> Result<(), FileError> {
        let Staged { temp, target } = self;
        temp.persist(&target).map(drop).map_err(|e| {
            FileError::io(&target, "cannot move the finished file into place", e.error)
        })
    }
}

/// Writes `bytes` to `target` through a temporary file.
pub fn write(target: &Path, bytes: impl AsRef<[u8]>) -> Result<(), FileError> {
    stage(target, bytes)?.commit()
}

/// Writes `target` with `fill` (which gets the temporary file) and renames
/// it into place if `fill` succeeds; the old file is untouched if it fails.
pub fn write_with(
    target: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let mut staged = Staged::new(target)?;
    fill(staged.file()).map_err(|e| FileError::io(target, "cannot write", e))?;
    staged.commit()
}

/// Copies `from` to `to` through a temporary file beside `to`.
pub fn copy(from: &Path, to: &Path) -> Result<(), FileError> {
    stage_copy(from, to)?.commit()
}

/// `bytes` written to a temporary file for `target`, not yet committed (for
/// a command that replaces several outputs only once all are written).
pub fn stage(target: &Path, bytes: impl AsRef<[u8]>) -> Result<Staged, FileError> {
    let mut staged = Staged::new(target)?;
    staged
        .file()
        .write_all(bytes.as_ref())
        .map_err(|e| FileError::io(target, "cannot write", e))?;
    Ok(staged)
}

/// `from` copied to a temporary file for `to`, not yet committed.
pub fn stage_copy(from: &Path, to: &Path) -> Result<Staged, FileError> {
    let mut source = File::open(from).map_err(|e| FileError::io(from, "cannot read", e))?;
    let mut staged = Staged::new(to)?;
    std::io::copy(&mut source, staged.file()).map_err(|e| FileError::io(to, "cannot write", e))?;
    Ok(staged)
}

/// An intermediate file beside `beside`, named `.NAME.XXXXXX{suffix}`, for a
/// tool that wants a path (a linker's object file); removed when dropped.
pub fn scratch(beside: &Path, suffix: &str) -> Result<tempfile::TempPath, FileError> {
    let mut prefix = OsString::from(".");
    prefix.push(beside.file_name().unwrap_or_default());
    prefix.push(".");
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(suffix)
        .tempfile_in(directory_of(beside))
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(|e| FileError::io(beside, "cannot create a temporary file beside it", e))
}

/// Commits `staged` in order (a module last, after the files it names).
pub fn commit_all(staged: impl IntoIterator<Item = Staged>) -> Result<(), FileError> {
    staged.into_iter().try_for_each(Staged::commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The process's umask, read without changing it.
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn write_replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        write(&out, "old").unwrap();
        write(&out, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        assert_eq!(names(dir.path()), ["out.txt"]);
        assert_eq!(mode(&out), 0o666 & !umask());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, "old contents").unwrap();
        let error = write_with(&out, |file| {
            file.write_all(b"half of the new cont")?;
            Err(std::io::Error::other("the producer failed"))
        })
        .unwrap_err();
        assert!(error.to_string().contains("out.bin"), "{error}");
        assert!(error.to_string().contains("the producer failed"), "{error}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old contents");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    #[test]
    fn a_staged_file_dropped_before_commit_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        std::fs::write(&out, "old").unwrap();
        let mut staged = Staged::executable(&out).unwrap();
        staged.file().write_all(b"new").unwrap();
        let temp = staged.path().to_path_buf();
        assert_eq!(temp.parent(), Some(dir.path()), "beside the output");
        assert!(temp.exists());
        drop(staged);
        assert!(!temp.exists());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(names(dir.path()), ["model"]);
    }

    #[test]
    fn executables_are_executable() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        std::fs::write(&out, "old, not executable").unwrap();
        let mut staged = Staged::executable(&out).unwrap();
        staged.file().write_all(b"#!/bin/sh\n").unwrap();
        staged.commit().unwrap();
        assert_eq!(mode(&out), 0o777 & !umask());
        assert!(mode(&out) & 0o100 != 0);
    }

    #[test]
    fn a_writer_that_replaces_the_temporary_path_is_committed() {
        // What a linker does: unlink the output path and create it anew.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("exe");
        let staged = Staged::executable(&out).unwrap();
        std::fs::remove_file(staged.path()).unwrap();
        std::fs::write(staged.path(), "linked").unwrap();
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "linked");
        assert_eq!(names(dir.path()), ["exe"]);
    }

    #[test]
    fn a_symbolic_link_output_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.txt");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
    }

    #[test]
    fn copy_copies_and_names_a_missing_source() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&from, "tokens").unwrap();
        copy(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "tokens");
        let error = copy(&dir.path().join("missing"), &to).unwrap_err();
        assert!(
            error.to_string().contains("missing: cannot read"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "tokens");
    }

    #[test]
    fn a_scratch_file_is_beside_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = scratch(&dir.path().join("model"), ".o").unwrap();
        assert_eq!(scratch.parent(), Some(dir.path()));
        assert!(scratch.to_string_lossy().ends_with(".o"));
        let path = scratch.to_path_buf();
        assert!(path.exists());
        drop(scratch);
        assert!(!path.exists());
    }

    #[test]
    fn staged_outputs_replace_nothing_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, "old a").unwrap();
        write(&b, "old b").unwrap();
        let staged = vec![stage(&a, "new a").unwrap(), stage(&b, "new b").unwrap()];
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old b");
        commit_all(staged).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("model.mlir")), Path::new("."));
        assert_eq!(directory_of(Path::new("a/model.mlir")), Path::new("a"));
    }

    #[test]
    fn an_output_in_a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("no/such/dir/out.txt");
        let error = write(&out, "x").unwrap_err().to_string();
        assert!(error.contains("no/such/dir/out.txt"), "{error}");
    }
}
