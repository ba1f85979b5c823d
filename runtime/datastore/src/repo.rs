//! A repository as a corpus: its code files, found by walking it as git
//! would (`.gitignore`, `.ignore` and git's excludes honoured, hidden files
//! skipped, symlinks not followed), each read as UTF-8 and tokenized by the
//! caller's function.

use std::path::{Path, PathBuf};

/// The extensions read as code.
pub const CODE_EXTENSIONS: &[&str] = &[
    "c", "cc", "cpp", "cxx", "h", "hh", "hpp", "cs", "go", "java", "kt", "kts", "scala", "rs",
    "py", "pyi", "js", "jsx", "mjs", "ts", "tsx", "rb", "php", "swift", "m", "mm", "lua", "pl",
    "sh", "bash", "zsh", "sql", "r", "jl", "hs", "ml", "mli", "ex", "exs", "erl", "clj", "dart",
    "vue", "svelte", "html", "css", "scss", "toml", "yaml", "yml", "json", "md", "cmake", "mlir",
    "zig", "nim", "v", "sv", "vhd", "f90", "proto", "gradle",
];

/// How much of a repository is read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A larger file is skipped (generated or vendored, most likely).
    pub max_file_bytes: u64,
    /// Reading stops when this many bytes have been read.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 1 << 20,
            max_total_bytes: 64 << 20,
        }
    }
}

/// What a walk read.
#[derive(Debug, Default)]
pub struct Corpus {
    /// One token sequence per file read.
    pub documents: Vec<Vec<u32>>,
    /// The files read, in walk order.
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// Files skipped: too large, not UTF-8, or unreadable.
    pub skipped: usize,
    /// The total byte limit was reached before the walk ended.
    pub truncated: bool,
}

/// Whether `path` names a code file by its extension.
pub fn is_code(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CODE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A file to read, with its size when listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The files of a walk, not read yet.
#[derive(Debug, Default)]
pub struct Listing {
    /// In walk order (each source in turn, a directory's files sorted by path).
    pub files: Vec<Listed>,
    /// Their bytes, as listed.
    pub bytes: u64,
    /// Files skipped: too large, or their entry unreadable.
    pub skipped: usize,
    /// The total byte limit was reached before the walk ended.
    pub truncated: bool,
}

/// The files to read from `sources`: a directory's code files, found by
/// walking it as git would ([`is_code`], `.gitignore` honoured, hidden
/// files skipped, symbolic links not followed), and a file named as a
/// source whatever its extension. A file over `limits.max_file_bytes` is
/// skipped; the listing ends before the files pass `limits.max_total_bytes`.
/// A source that is neither a file nor a directory is an error naming it.
pub fn list_sources(sources: &[PathBuf], limits: Limits) -> Result<Listing, String> {
    let mut listing = Listing::default();
    let add = |listing: &mut Listing, path: &Path, size: u64| -> bool {
        if size > limits.max_file_bytes {
            listing.skipped += 1;
            return true;
        }
        if listing.bytes + size > limits.max_total_bytes {
            listing.truncated = true;
            return false;
        }
        listing.bytes += size;
        listing.files.push(Listed {
            path: path.to_path_buf(),
            bytes: size,
        });
        true
    };
    for source in sources {
        let meta = std::fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
        if meta.is_file() {
            if !add(&mut listing, source, meta.len()) {
                break;
            }
            continue;
        }
        if !meta.is_dir() {
            return Err(format!(
                "{}: neither a file nor a directory",
                source.display()
            ));
        }
        let walker = ignore::WalkBuilder::new(source)
            .follow_links(false)
            .require_git(false)
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walker {
            let Ok(entry) = entry else {
                listing.skipped += 1;
                continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) || !is_code(entry.path()) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            if !add(&mut listing, entry.path(), size) {
                return Ok(listing);
            }
        }
    }
    Ok(listing)
}

/// A listed file's text, or `None` when it cannot be read or is not UTF-8
/// (such a file is skipped).
pub fn read_text(file: &Listed) -> Option<String> {
    std::fs::read_to_string(&file.path).ok()
}

/// Reads the code files under `root` and tokenizes each with `tokenize`.
/// `root` must be a directory.
pub fn read_repository(
    root: &Path,
    limits: Limits,
    mut tokenize: impl FnMut(&str) -> Option<Vec<u32>>,
) -> Result<Corpus, String> {
    if !root.is_dir() {
        return Err(format!("{}: not a directory", root.display()));
    }
    let listing = list_sources(&[root.to_path_buf()], limits)?;
    let mut corpus = Corpus {
        skipped: listing.skipped,
        truncated: listing.truncated,
        ..Corpus::default()
    };
    for file in listing.files {
        let Some(tokens) = read_text(&file).and_then(|text| {
            corpus.bytes += text.len() as u64;
            tokenize(&text)
        }) else {
            corpus.skipped += 1;
            continue;
        };
        corpus.documents.push(tokens);
        corpus.files.push(file.path);
    }
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_as_tokens(text: &str) -> Option<Vec<u32>> {
        Some(text.bytes().map(u32::from).collect())
    }

    #[test]
    fn code_files_are_read_and_ignored_ones_are_not() {
        let dir = std::env::temp_dir().join(format!("ditto-repo-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("build")).unwrap();
        std::fs::write(dir.join(".gitignore"), "build/\n").unwrap();
        std::fs::write(dir.join("src/a.py"), "def f(): pass\n").unwrap();
        std::fs::write(dir.join("src/b.rs"), "fn g() {}\n").unwrap();
        std::fs::write(dir.join("src/image.png"), [0u8, 159, 146, 150]).unwrap();
        std::fs::write(dir.join("build/out.py"), "generated = 1\n").unwrap();
        std::fs::write(dir.join("src/bad.py"), [0xffu8, 0xfe]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&dir, dir.join("src/loop")).unwrap();
        let corpus = read_repository(&dir, Limits::default(), bytes_as_tokens).unwrap();
        let names: Vec<_> = corpus
            .files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["src/a.py", "src/b.rs"]);
        assert_eq!(corpus.documents[1], bytes_as_tokens("fn g() {}\n").unwrap());
        assert_eq!(corpus.skipped, 1);
        let small = Limits {
            max_file_bytes: 1 << 20,
            max_total_bytes: 16,
        };
        let corpus = read_repository(&dir, small, bytes_as_tokens).unwrap();
        assert!(corpus.truncated && corpus.files.len() == 1);
        assert!(
            read_repository(&dir.join("src/a.py"), Limits::default(), bytes_as_tokens)
                .unwrap_err()
                .contains("not a directory")
        );
        // Sources: a file named is taken whatever its extension, then a
        // directory's code files.
        let sources = [
            dir.join("build/out.py"),
            dir.join("src/image.png"),
            dir.join("src"),
        ];
        let listing = list_sources(&sources, Limits::default()).unwrap();
        let names: Vec<_> = listing
            .files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(&dir)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "build/out.py",
                "src/image.png",
                "src/a.py",
                "src/b.rs",
                "src/bad.py"
            ]
        );
        assert_eq!(listing.bytes, 14 + 4 + 14 + 10 + 2);
        assert!(read_text(&listing.files[4]).is_none());
        let tiny = Limits {
            max_file_bytes: 12,
            max_total_bytes: 1 << 20,
        };
        let listing = list_sources(&sources, tiny).unwrap();
        assert_eq!((listing.files.len(), listing.skipped), (3, 2));
        assert!(list_sources(&[dir.join("nothing")], Limits::default())
            .unwrap_err()
            .contains("nothing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
