//! Replays the checked-in fuzz inputs: every file of `fuzz/corpus/<target>/`
//! (the minimized corpora) and `fuzz/regressions/<target>/` (every input
//! that ever crashed a target) through the target's function, as the
//! fuzzer ran it. A target fails by panicking; errors are fine.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ditto_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `dir`, sorted (none when it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` over every input of `kind` (`corpus`, `regressions`) and
/// returns how many there were and the ones that panicked.
fn replay(kind: &str, name: &str, target: ditto_fuzz_targets::Target) -> (usize, Vec<String>) {
    let files = inputs(&fuzz_dir().join(kind).join(name));
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a fuzz input reads");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    (files.len(), failures)
}

#[test]
fn corpora_and_regressions_replay_without_a_panic() {
    let mut failures = Vec::new();
    for &(name, target) in TARGETS {
        let (corpus, mut failed) = replay("corpus", name, target);
        assert!(
            corpus > 0,
            "fuzz/corpus/{name}/ is empty or missing: the replay would test nothing"
        );
        failures.append(&mut failed);
        let (_, mut failed) = replay("regressions", name, target);
        failures.append(&mut failed);
    }
    assert!(
        failures.is_empty(),
        "fuzz inputs that panic:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_input_directory_is_a_target() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/{kind}/{name} belongs to no target of ditto_fuzz_targets::TARGETS"
            );
        }
    }
}

#[test]
fn checkpoint_inputs_split_into_files() {
    let input =
        ditto_fuzz_targets::hf_input(&[b"{}", b"", b"tok", b"", b"", b"index", b"s1", b"s2"]);
    let files = ditto_fuzz_targets::hf_files(&input);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "config.json",
            "tokenizer.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors"
        ]
    );
    assert_eq!(files[4].1, b"s2");
}
