//! Deeply nested JSON in a payload (its manifest, tokenizer or
//! tokenizer_config section) is no stack overflow: every JSON reader here is
//! serde_json's, whose recursion limit (128 levels) stays on, and which skips
//! the values of unknown keys without recursion.

mod common;

use std::path::Path;

use common::fake_model::{self, WEIGHTS};
use common::payload_file::{append_manifest, model_json, with_payload, write, Sections};
use ditto_rt::app::Console;
use ditto_rt::entry::main_with;

const DEPTH: usize = 100_000;

fn deep_array() -> String {
    format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH))
}

/// Runs `model --tokens 1 -n 1`; returns (exit code, stderr).
fn run(payload: &Path) -> (i32, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        out_is_terminal: false,
    };
    let argv = ["model", "-p", "hi", "-n", "1"].map(Into::into).to_vec();
    let code = main_with(
        argv,
        payload,
        fake_model::entry_points_for(payload),
        &mut console,
    );
    (code, String::from_utf8(err).unwrap())
}

fn fails_with(bytes: &[u8], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    write(&path, bytes);
    let (code, err) = run(&path);
    assert_eq!(code, 1, "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// `json` (an object) with a key `x` whose value nests `DEPTH` arrays deep.
fn with_deep_key(json: &str) -> String {
    let inner = json.trim_start().strip_prefix('{').expect("an object");
    format!("{{\"x\": {}, {inner}", deep_array())
}

/// A payload whose manifest is `edit(manifest)`.
fn with_manifest(bytes: &[u8], edit: impl Fn(&str) -> String) -> Vec<u8> {
    // The manifest is the JSON before the trailer's length and magic.
    let end = bytes.len() - 16;
    let len = u64::from_le_bytes(bytes[end..end + 8].try_into().unwrap()) as usize;
    let manifest = std::str::from_utf8(&bytes[end - len..end]).unwrap();
    let mut edited = bytes[..end - len].to_vec();
    append_manifest(&mut edited, edit(manifest).as_bytes());
    edited
}

const CONFIG: &str = r#"{"bos_token_id": null, "eos_token_ids": [2]}"#;

#[test]
fn deep_values_of_unknown_keys_are_skipped_without_recursion() {
    // serde_json skips an ignored value iteratively: a deep one under an
    // unknown key of the manifest or of tokenizer_config costs no stack.
    let tokenizer = common::tiny_tokenizer::byte_level();
    let config = with_deep_key(CONFIG);
    let sections = Sections {
        weights: WEIGHTS,
        tokenizer: tokenizer.as_bytes(),
        tokenizer_config: config.as_bytes(),
    };
    let bytes = with_payload(b"\x7fELF image", &sections, model_json(259, 64));
    let bytes = with_manifest(&bytes, with_deep_key);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    write(&path, &bytes);
    let (code, err) = run(&path);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_deep_tokenizer_is_a_bad_tokenizer() {
    // Normalizers nest (a Sequence of Sequences …): 100,000 of them hit
    // serde_json's recursion limit in the loader's syntax check (ditto-tokenizer-json).
    let mut tokenizer: serde_json::Value =
        serde_json::from_str(&common::tiny_tokenizer::byte_level()).unwrap();
    tokenizer["normalizer"] = "DEEP".into();
    let deep = format!(
        "{}{}",
        r#"{"type": "Sequence", "normalizers": ["#.repeat(DEPTH),
        "]}".repeat(DEPTH)
    );
    let tokenizer = tokenizer.to_string().replace("\"DEEP\"", &deep);
    let sections = Sections {
        weights: WEIGHTS,
        tokenizer: tokenizer.as_bytes(),
        tokenizer_config: CONFIG.as_bytes(),
    };
    fails_with(
        &with_payload(b"\x7fELF image", &sections, model_json(259, 64)),
        &["bad tokenizer: tokenizer section: not a tokenizer: invalid JSON: recursion limit exceeded"],
    );
}
