//! A directory walk that terminates: symbolic links to directories are
//! followed (a calibration set may be assembled from links), but each
//! directory is read once, recognized by its device and inode, so a link to
//! an ancestor (a loop) or two links to one directory add nothing.

use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::FileError;

/// Every regular file under `root` (or `root` itself, if it is a file),
/// sorted by path. Entries that are neither files nor directories (dangling
/// links, sockets) are skipped; a directory that cannot be read is an error
/// naming it.
pub fn files_under(root: &Path) -> Result<Vec<PathBuf>, FileError> {
    let meta = std::fs::metadata(root).map_err(|e| FileError::io(root, "cannot read", e))?;
    if !meta.is_dir() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), meta)];
    while let Some((dir, meta)) = stack.pop() {
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| FileError::io(&dir, "cannot read the directory", e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => stack.push((path, meta)),
                Ok(meta) if meta.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn files_in_nested_directories_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("z.py"), "").unwrap();
        std::fs::write(dir.path().join("a/b/c.py"), "").unwrap();
        std::fs::write(dir.path().join("a/y.rs"), "").unwrap();
        let files = files_under(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a/b/c.py", "a/y.rs", "z.py"]);
    }

    #[test]
    fn a_symlink_loop_ends_and_each_file_comes_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("set");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.py"), "").unwrap();
        symlink(&root, root.join("sub/loop")).unwrap(); // back to the top
        symlink("..", root.join("sub/up")).unwrap(); // to its parent
        symlink(root.join("sub"), root.join("again")).unwrap(); // a second way in
        symlink(root.join("missing"), root.join("dangling")).unwrap();
        let files = files_under(&root).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with("a.py"));
    }

    #[test]
    fn a_linked_directory_outside_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other/b.py"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("set")).unwrap();
        symlink(dir.path().join("other"), dir.path().join("set/linked")).unwrap();
        let files = files_under(&dir.path().join("set")).unwrap();
        assert_eq!(files, [dir.path().join("set/linked/b.py")]);
    }

    #[test]
    fn a_file_is_itself_and_a_missing_root_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.py");
        std::fs::write(&file, "").unwrap();
        assert_eq!(files_under(&file).unwrap(), [file]);
        let error = files_under(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("none: cannot read"), "{error}");
    }
}
