//! Files that a file names — a checkpoint's shards in its index, a module's
//! weight and tokenizer files in its attributes — are resolved inside the
//! directory of the file that names them, so that a downloaded or edited
//! file cannot make the tools read (and embed in an executable) any other
//! file on the machine. Files named on the command line are the user's
//! choice and are not restricted.

use std::{
    fmt,
    path::{Component, Path, PathBuf},
};

/// Whether a name that resolves, through symbolic links, to a file outside
/// the directory is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symlinks {
    /// The name must stay inside the directory; links may not leave it.
    StayInside,
    /// Only the name itself is checked (relative, no `..`); links are
    /// followed wherever they go. For checkpoint shards: the Hugging Face
    /// cache's snapshot directories are links into its `blobs/`.
    Follow,
}

/// Why a name does not name a file inside its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outside {
    /// The name is empty.
    Empty { dir: PathBuf },
    /// An absolute path.
    Absolute { dir: PathBuf },
    /// A `..` component.
    Parent { dir: PathBuf },
    /// Resolves, through a symbolic link, to a file outside the directory.
    Escapes { dir: PathBuf, resolved: PathBuf },
}

impl fmt::Display for Outside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outside::Empty { dir } => {
                write!(f, "is empty: it must name a file in {}", dir.display())
            }
            Outside::Absolute { dir } => write!(
                f,
                "is an absolute path: it must name a file in {}",
                dir.display()
            ),
            Outside::Parent { dir } => write!(
                f,
                "leaves {} through `..`: it must name a file in that directory",
                dir.display()
            ),
            Outside::Escapes { dir, resolved } => write!(
                f,
                "is a symbolic link to {}, outside {}",
                resolved.display(),
                dir.display()
            ),
        }
    }
}

/// `dir.join(name)`, if `name` names a file inside `dir`: relative, without
/// `..`, and (with [`Symlinks::StayInside`]) not resolving through a symbolic
/// link to anything outside `dir`. A name that does not exist passes (opening
/// it reports that).
pub fn resolve_inside(dir: &Path, name: &Path, symlinks: Symlinks) -> Result<PathBuf, Outside> {
    let joined = dir.join(name);
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // Named as an absolute path: "outside ." would say little.
    let shown = || std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if name.as_os_str().is_empty() {
        return Err(Outside::Empty { dir: shown() });
    }
    for component in name.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                return Err(Outside::Absolute { dir: shown() })
            }
            Component::ParentDir => return Err(Outside::Parent { dir: shown() }),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    if symlinks == Symlinks::StayInside {
        if let (Ok(resolved), Ok(root)) =
            (std::fs::canonicalize(&joined), std::fs::canonicalize(dir))
        {
            if !resolved.starts_with(&root) {
                return Err(Outside::Escapes {
                    dir: shown(),
                    resolved,
                });
            }
        }
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("model")).unwrap();
        std::fs::write(dir.path().join("model/m.weights"), "weights").unwrap();
        std::fs::write(dir.path().join("secret"), "not the model's").unwrap();
        dir
    }

    #[test]
    fn a_plain_name_resolves_beside() {
        let dir = model_dir();
        let model = dir.path().join("model");
        for symlinks in [Symlinks::StayInside, Symlinks::Follow] {
            assert_eq!(
                resolve_inside(&model, Path::new("m.weights"), symlinks),
                Ok(model.join("m.weights"))
            );
            assert_eq!(
                resolve_inside(&model, Path::new("./m.weights"), symlinks),
                Ok(model.join("./m.weights"))
            );
            // Not there: opening it will say so.
            assert!(resolve_inside(&model, Path::new("none.weights"), symlinks).is_ok());
        }
        std::fs::create_dir(model.join("sub")).unwrap();
        assert!(resolve_inside(&model, Path::new("sub/x"), Symlinks::StayInside).is_ok());
    }

    #[test]
    fn absolute_and_parent_names_are_refused() {
        let dir = model_dir();
        let model = dir.path().join("model");
        let secret = dir.path().join("secret");
        for symlinks in [Symlinks::StayInside, Symlinks::Follow] {
            let error = resolve_inside(&model, &secret, symlinks).unwrap_err();
            assert!(matches!(error, Outside::Absolute { .. }), "{error:?}");
            assert!(error.to_string().contains("is an absolute path"), "{error}");
            let error = resolve_inside(&model, Path::new("../secret"), symlinks).unwrap_err();
            assert!(matches!(error, Outside::Parent { .. }), "{error:?}");
            assert!(error.to_string().contains("through `..`"), "{error}");
            // Even a `..` that comes back in.
            assert!(resolve_inside(&model, Path::new("../model/m.weights"), symlinks).is_err());
            assert!(matches!(
                resolve_inside(&model, Path::new(""), symlinks),
                Err(Outside::Empty { .. })
            ));
        }
    }

    #[test]
    fn a_link_out_of_the_directory_is_refused_unless_followed() {
        let dir = model_dir();
        let model = dir.path().join("model");
        std::os::unix::fs::symlink(dir.path().join("secret"), model.join("link.weights")).unwrap();
        std::os::unix::fs::symlink(dir.path(), model.join("up")).unwrap();
        for name in ["link.weights", "up/secret"] {
            let error = resolve_inside(&model, Path::new(name), Symlinks::StayInside).unwrap_err();
            assert!(
                matches!(error, Outside::Escapes { .. }),
                "{name}: {error:?}"
            );
        }
        let error = resolve_inside(&model, Path::new("link.weights"), Symlinks::StayInside)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is a symbolic link to"), "{error}");
        assert!(error.contains("secret, outside"), "{error}");
        assert!(resolve_inside(&model, Path::new("link.weights"), Symlinks::Follow).is_ok());
    }

    #[test]
    fn a_link_that_stays_inside_is_accepted() {
        let dir = model_dir();
        let model = dir.path().join("model");
        std::os::unix::fs::symlink("m.weights", model.join("alias.weights")).unwrap();
        assert!(resolve_inside(&model, Path::new("alias.weights"), Symlinks::StayInside).is_ok());
        // The directory itself may be reached through a link.
        std::os::unix::fs::symlink(&model, dir.path().join("linked")).unwrap();
        let linked = dir.path().join("linked");
        assert!(resolve_inside(&linked, Path::new("m.weights"), Symlinks::StayInside).is_ok());
    }

    #[test]
    fn an_empty_directory_is_the_current_one() {
        assert_eq!(
            resolve_inside(Path::new(""), Path::new("m.weights"), Symlinks::Follow),
            Ok(PathBuf::from("m.weights"))
        );
    }
}
