//! An output that is one of the command's inputs is refused before anything
//! is written. Two paths are the same file when their canonical paths are
//! equal (for an output that does not exist yet: its directory's canonical
//! path and its name) or when they are the same device and inode
//! (`same-file`), which catches hard links and symbolic links.

use std::path::{Path, PathBuf};

use crate::{directory_of, FileError};

/// `path` with every symbolic link and `.`/`..` resolved; for a path that
/// does not exist, its directory resolved and its name appended.
fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok().or_else(|| {
        let name = path.file_name()?;
        Some(std::fs::canonicalize(directory_of(path)).ok()?.join(name))
    })
}

/// Whether `a` and `b` name the same file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Some(a), Some(b)) = (canonical(a), canonical(b)) {
        if a == b {
            return true;
        }
    }
    same_file::is_same_file(a, b).unwrap_or(false)
}

/// Refuses the outputs of `flag value` if one of them is one of `inputs`.
///
/// `outputs` are the files the flag makes the command write, each with what
/// it is for the message ("the output's weight file"); the flag's own path
/// is given with an empty description. `inputs` are the files the command
/// reads, each with what it is ("the input module", "config.json of the
/// checkpoint"). The error names the flag, the output and the input.
pub fn refuse_overwrite(
    flag: &str,
    value: &Path,
    outputs: &[(&Path, &str)],
    inputs: &[(&Path, &str)],
) -> Result<(), FileError> {
    for &(output, output_is) in outputs {
        for &(input, input_is) in inputs {
            if !same_file(output, input) {
                continue;
            }
            let same = if output == input {
                String::new()
            } else {
                " (the same file)".to_string()
            };
            let problem = if output_is.is_empty() {
                format!("this is {input_is} {}{same}", input.display())
            } else {
                format!(
                    "{output_is} {} is {input_is} {}{same}",
                    output.display(),
                    input.display()
                )
            };
            return Err(FileError::Overwrite {
                flag: flag.to_string(),
                value: value.to_path_buf(),
                problem,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_path_spelled_differently_is_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("m.mlir");
        std::fs::write(&a, "module").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&a, &dir.path().join("sub/../m.mlir")));
        assert!(same_file(&a, &dir.path().join("./m.mlir")));
        assert!(!same_file(&a, &dir.path().join("n.mlir")));
    }

    #[test]
    fn hard_and_symbolic_links_are_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("m.weights");
        std::fs::write(&a, "weights").unwrap();
        let hard = dir.path().join("hard.weights");
        std::fs::hard_link(&a, &hard).unwrap();
        let soft = dir.path().join("soft.weights");
        std::os::unix::fs::symlink(&a, &soft).unwrap();
        assert!(same_file(&hard, &a));
        assert!(same_file(&soft, &a));
        let copy = dir.path().join("copy.weights");
        std::fs::copy(&a, &copy).unwrap();
        assert!(!same_file(&copy, &a));
    }

    #[test]
    fn an_output_in_a_linked_directory_is_found() {
        // out/ is a symbolic link to the input's directory; out/m.mlir does
        // not need to be a link itself.
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("m.mlir"), "module").unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("out")).unwrap();
        assert!(same_file(
            &dir.path().join("out/m.mlir"),
            &real.join("m.mlir")
        ));
    }

    #[test]
    fn a_missing_output_is_not_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("m.mlir");
        std::fs::write(&input, "module").unwrap();
        let output = dir.path().join("q.mlir");
        assert!(refuse_overwrite(
            "-o",
            &output,
            &[(&output, "")],
            &[(&input, "the input module")]
        )
        .is_ok());
        // Neither exists: not the same file unless the same path.
        assert!(!same_file(&dir.path().join("x"), &dir.path().join("y")));
        assert!(same_file(&dir.path().join("x"), &dir.path().join("x")));
    }

    #[test]
    fn the_error_names_the_flag_the_output_and_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("m.weights");
        std::fs::write(&input, "weights").unwrap();
        let module = dir.path().join("out.mlir");
        let weights = dir.path().join("out.weights");
        std::fs::hard_link(&input, &weights).unwrap();
        let error = refuse_overwrite(
            "-o",
            &module,
            &[(&module, ""), (&weights, "the output's weight file")],
            &[(&input, "the input's weight file")],
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("-o "), "{error}");
        assert!(
            error.contains("out.mlir: the output's weight file"),
            "{error}"
        );
        assert!(
            error.contains("out.weights is the input's weight file"),
            "{error}"
        );
        assert!(error.contains("m.weights (the same file)"), "{error}");
        assert!(error.contains("would be overwritten"), "{error}");

        let error = refuse_overwrite(
            "--dump-logits",
            &input,
            &[(&input, "")],
            &[(&input, "the prompt file")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(&format!(
                "--dump-logits {}: this is the prompt file {},",
                input.display(),
                input.display()
            )),
            "{error}"
        );
    }
}
