//! The runtime as dittoc uses it: a C "model" linked with
//! `cc model.c libditto_rt.a -lm -lpthread -ldl`, the payload appended to
//! the executable, run as a process. Shows that the static library is
//! self-contained (BLIS included) and that /proc/self/exe is found.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::fake_model::greedy;
use common::payload_file::{model_json, with_payload, Sections};
use common::tiny_tokenizer;

const VOCAB: usize = 32;

/// The `libditto_rt.a` cargo built for this test run: the newest one in
/// the deps folder next to this test executable.
fn static_library() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let newest = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("libditto_rt-") && name.ends_with(".a")
        })
        .max_by_key(|e| e.metadata().unwrap().modified().unwrap());
    newest
        .expect("cargo builds libditto_rt.a (crate-type staticlib) before the tests")
        .path()
}

fn link(dir: &Path) -> PathBuf {
    let exe = dir.join("model");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_model.c");
    let out = Command::new("cc")
        .arg("-O1")
        .arg(&source)
        .arg(static_library())
        .args(["-lm", "-lpthread", "-ldl", "-o"])
        .arg(&exe)
        .output()
        .expect("a C compiler `cc` on PATH");
    assert!(
        out.status.success(),
        "link failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn identity_weights() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(VOCAB * VOCAB * 4);
    for i in 0..VOCAB {
        for j in 0..VOCAB {
            bytes.extend_from_slice(&(if i == j { 1.0f32 } else { 0.0 }).to_le_bytes());
        }
    }
    bytes
}

fn run(exe: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(exe).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_linked_executable_runs_its_appended_payload() {
    let dir = tempfile::tempdir().unwrap();
    let exe = link(dir.path());

    // Before the payload is appended: a clean error, exit 1.
    let (code, out, err) = run(&exe, &["--tokens", "1"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("this executable has no model payload (was it built by dittoc?)"),
        "{err}"
    );
    let (code, out, _) = run(&exe, &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage:"), "{out}");

    let image = std::fs::read(&exe).unwrap();
    let weights = identity_weights();
    let tokenizer = tiny_tokenizer::byte_level();
    let sections = Sections {
        weights: &weights,
        tokenizer: tokenizer.as_bytes(),
        tokenizer_config: br#"{"bos_token_id": null, "eos_token_ids": [], "add_bos_token": false}"#,
    };
    std::fs::write(
        &exe,
        with_payload(&image, &sections, model_json(VOCAB, 128)),
    )
    .unwrap();

    for threads in ["1", "2"] {
        let (code, out, err) = run(
            &exe,
            &[
                "--tokens",
                "3,5,7",
                "-n",
                "20",
                "--ids",
                "--threads",
                threads,
            ],
        );
        assert_eq!(code, 0, "{err}");
        let want: Vec<String> = greedy(&[3, 5, 7], 20, VOCAB)
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(out, want.join(" ") + "\n");
        assert!(
            err.contains("prefill: 3 tokens in ") && err.contains("decode: 19 tokens in "),
            "{err}"
        );
    }

    // Text prompt through the payload's tokenizer: "he" "ll" "o" are ids
    // 256, 257, 111, beyond this model's vocabulary of 32.
    let (code, _, err) = run(&exe, &["-p", "hello"]);
    assert_eq!(code, 2);
    assert!(err.contains("token id 256 is out of range"), "{err}");
}

#[test]
fn the_static_library_bundles_blis() {
    let lib = static_library();
    let Ok(out) = Command::new("nm").arg("--defined-only").arg(&lib).output() else {
        eprintln!("nm not found: skipping the symbol listing (the link test covers it)");
        return;
    };
    let symbols = String::from_utf8_lossy(&out.stdout);
    for symbol in [
        "bli_sgemv",
        "bli_sgemm",
        "ditto_rt_main",
        "ditto_rt_sgemv",
        "ditto_rt_sgemm",
    ] {
        assert!(
            symbols
                .lines()
                .any(|l| l.ends_with(&format!(" T {symbol}"))),
            "{} does not define {symbol}",
            lib.display()
        );
    }
}
