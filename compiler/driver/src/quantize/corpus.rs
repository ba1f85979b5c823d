//! The calibration text: code (or prose) files gathered from the paths
//! given, up to a byte budget.

use std::path::{Path, PathBuf};

/// The default calibration set: Python's standard library sources on this
/// machine (the even-numbered files in sorted order; the odd ones are left
/// for evaluation), if they are there.
pub fn default_code_set() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3.") && p.join("json").is_dir())
        })
        .collect();
    found.sort();
    found.pop()
}

/// Code files a calibration directory contributes.
const CODE_EXTENSIONS: &[&str] = &[
    "py", "rs", "c", "h", "cc", "cpp", "hpp", "js", "ts", "go", "java", "rb", "sh", "lua",
];

/// What a calibration directory contributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Code files only, and every other one (the rest stays out of
    /// calibration, for evaluation).
    Code,
    /// Every file.
    Prose,
}

/// Files under `path` (itself, if a file), sorted; for a directory, as
/// `kind` says. Symbolic links are followed, each directory read once
/// (`ditto_files::files_under`): a link loop ends the walk, it does not
/// repeat it.
fn calibration_files(path: &Path, kind: Kind) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = ditto_files::files_under(path)
        .map_err(|e| match e {
            ditto_files::FileError::Io { path, source, .. } => {
                format!(
                    "{}: cannot read the calibration set: {source}",
                    path.display()
                )
            }
            other => other.to_string(),
        })?
        .into_iter()
        .filter(|p| {
            kind == Kind::Prose
                || p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| CODE_EXTENSIONS.contains(&e))
        });
    Ok(match kind {
        Kind::Code => files.step_by(2).collect(),
        Kind::Prose => files.collect(),
    })
}

/// The calibration text: the files of `paths`, in order, up to `budget` bytes.
pub(super) fn corpus(paths: &[PathBuf], kind: Kind, budget: usize) -> Result<String, String> {
    let mut text = String::new();
    for path in paths {
        for file in calibration_files(path, kind)? {
            if text.len() >= budget {
                return Ok(text);
            }
            let Ok(content) = std::fs::read_to_string(&file) else {
                continue; // not UTF-8: not text to calibrate on
            };
            let room = budget - text.len();
            let mut cut = content.len().min(room);
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            text.push_str(&content[..cut]);
            text.push_str("\n\n");
        }
    }
    if text.is_empty() {
        return Err(match kind {
            Kind::Code => "the calibration set holds no readable code files",
            Kind::Prose => "the calibration set holds no readable text files",
        }
        .into());
    }
    Ok(text)
}
