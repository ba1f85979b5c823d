//! The whole program after the C boundary (`entry::main_with`): a payload
//! file written per contracts.md §2, the fake model, captured stdout/stderr.

mod common;

use std::path::{Path, PathBuf};

use common::fake_model::{self, WEIGHTS};
use common::payload_file::{model_json, with_payload, write, Sections};
use common::tiny_tokenizer;
use ditto_rt::app::Console;
use ditto_rt::entry::main_with;

/// The model's vocabulary: exactly the tiny byte-level tokenizer's.
const VOCAB: usize = 259;
const EOS: u32 = tiny_tokenizer::BYTE_LEVEL_EOS;

struct Fixture {
    dir: tempfile::TempDir,
    payload: PathBuf,
}

fn fixture_with(tokenizer: &str, tokenizer_config: &str, max_ctx: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("model");
    let sections = Sections {
        weights: WEIGHTS,
        tokenizer: tokenizer.as_bytes(),
        tokenizer_config: tokenizer_config.as_bytes(),
    };
    write(
        &payload,
        &with_payload(b"\x7fELF fake image", &sections, model_json(VOCAB, max_ctx)),
    );
    Fixture { dir, payload }
}

fn fixture(add_bos: bool) -> Fixture {
    let config =
        format!(r#"{{"bos_token_id": 1, "eos_token_ids": [{EOS}], "add_bos_token": {add_bos}}}"#);
    fixture_with(&tiny_tokenizer::byte_level(), &config, 64)
}

/// Runs `model ARGS...`; returns (exit code, stdout, stderr).
fn run(payload: &Path, args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        out_is_terminal: false,
    };
    let argv = std::iter::once("model")
        .chain(args.iter().copied())
        .map(Into::into)
        .collect();
    let code = main_with(
        argv,
        payload,
        fake_model::entry_points_for(payload),
        &mut console,
    );
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn ids_line(ids: &[u32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" ")
        + "\n"
}

/// The greedy continuation, cut before the first end-of-text id.
fn expected(prompt: &[u32], n: usize) -> Vec<u32> {
    fake_model::greedy(prompt, n, VOCAB)
        .into_iter()
        .take_while(|&t| t != EOS)
        .collect()
}

fn read_npy(path: &Path) -> (String, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + header_len].to_vec()).unwrap();
    let data = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, data)
}

#[test]
fn token_ids_in_ids_out_with_stats_on_stderr() {
    let f = fixture(true);
    let (code, out, err) = run(&f.payload, &["--tokens", "3,5,7", "-n", "5", "--ids"]);
    assert_eq!(code, 0, "{err}");
    let want = expected(&[3, 5, 7], 5);
    assert_eq!(want.len(), 5);
    assert_eq!(out, ids_line(&want));
    assert!(err.contains("prefill: 3 tokens in "), "{err}");
    assert!(
        err.contains("decode: 4 tokens in ") && err.contains("tok/s)"),
        "{err}"
    );
}

#[test]
fn text_prompt_gets_bos_and_text_streams_out() {
    let f = fixture(true);
    let (code, out, err) = run(&f.payload, &["-p", "hello", "-n", "12"]);
    assert_eq!(code, 0, "{err}");
    // "hello" = "he" "ll" "o" in the tiny vocabulary, after BOS 1.
    let prompt = [1, 256, 257, b'o' as u32];
    let ids = expected(&prompt, 12);
    let reference = tokenizers::Tokenizer::from_bytes(tiny_tokenizer::byte_level()).unwrap();
    assert_eq!(out, reference.decode(&ids, false).unwrap());
    assert!(err.contains("prefill: 4 tokens"), "{err}");

    // Without add_bos_token the prompt is the text's tokens alone.
    let f = fixture(false);
    let (code, out, _) = run(&f.payload, &["-p", "hello", "-n", "3", "--ids"]);
    assert_eq!(code, 0);
    assert_eq!(out, ids_line(&expected(&[256, 257, b'o' as u32], 3)));
}

#[test]
fn prompt_from_a_file() {
    let f = fixture(false);
    let path = f.dir.path().join("prompt.txt");
    std::fs::write(&path, "hello").unwrap();
    let (code, out, err) = run(
        &f.payload,
        &["-f", path.to_str().unwrap(), "-n", "3", "--ids"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, ids_line(&expected(&[256, 257, b'o' as u32], 3)));
}

#[test]
fn token_ids_from_a_file() {
    let f = fixture(true);
    let path = f.dir.path().join("ids.txt");
    std::fs::write(&path, "3, 5\n7\n").unwrap();
    let (code, out, err) = run(
        &f.payload,
        &["--tokens-file", path.to_str().unwrap(), "-n", "5", "--ids"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, ids_line(&expected(&[3, 5, 7], 5)));

    std::fs::write(&path, "3 x5").unwrap();
    fails(
        &f.payload,
        &["--tokens-file", path.to_str().unwrap()],
        2,
        "\"x5\" is not a token id",
    );
    fails(
        &f.payload,
        &["--tokens-file", "/nonexistent/ids.txt"],
        1,
        "/nonexistent/ids.txt",
    );
}

#[test]
fn generation_stops_right_before_a_stop_string() {
    let f = fixture(false);
    let (code, full, err) = run(&f.payload, &["-p", "hello", "-n", "24"]);
    assert_eq!(code, 0, "{err}");
    // A stop string from the middle of the full continuation, spanning tokens.
    let chars: Vec<(usize, char)> = full.char_indices().collect();
    assert!(chars.len() >= 8, "continuation too short: {full:?}");
    let (from, to) = (chars[3].0, chars[6].0);
    let stop = &full[from..to];
    let at = full.find(stop).unwrap();
    let escaped = stop
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t");
    let (code, out, err) = run(
        &f.payload,
        &[
            "-p",
            "hello",
            "-n",
            "24",
            "--stop",
            "zzz-never",
            "--stop",
            &escaped,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, full[..at]);
    // Generation ended there: fewer decode steps than the full run.
    let decoded = |err: &str| -> usize {
        let line = err.lines().find(|l| l.starts_with("decode: ")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(decoded(&err) < 23, "{err}");

    fails(&f.payload, &["-p", "x", "--stop", ""], 2, "cannot be empty");
    fails(
        &f.payload,
        &["-p", "x", "--stop", "a\\q"],
        2,
        "unknown escape",
    );
    fails(
        &f.payload,
        &["--tokens", "1", "--ids", "--stop", "a"],
        2,
        "cannot be used with",
    );
}

#[test]
fn sampling_is_seeded() {
    let f = fixture(false);
    let args = [
        "--tokens", "3,5", "-n", "20", "--ids", "--temp", "5", "--top-k", "0", "--top-p", "1",
    ];
    let with_seed = |seed: &str| {
        let mut a = args.to_vec();
        a.extend(["--seed", seed]);
        run(&f.payload, &a)
    };
    let (c1, o1, _) = with_seed("9");
    let (_, o2, _) = with_seed("9");
    let (_, o3, _) = with_seed("10");
    assert_eq!(c1, 0);
    assert_eq!(o1, o2);
    assert_ne!(o1, o3);
}

#[test]
fn dump_logits_via_prefill_and_decode() {
    let f = fixture(true);
    let prompt = [3u32, 5, 7, 200];
    let want: Vec<f32> = fake_model::predicted_after(&prompt, VOCAB)
        .iter()
        .flat_map(|&n| fake_model::logits_row(n, VOCAB))
        .collect();
    let mut dumps = Vec::new();
    for via in ["prefill", "decode"] {
        let path = f.dir.path().join(format!("{via}.npy"));
        let (code, out, err) = run(
            &f.payload,
            &[
                "--tokens",
                "3,5,7,200",
                "--dump-logits",
                path.to_str().unwrap(),
                "--logits-via",
                via,
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "", "no generation without -n");
        let (header, data) = read_npy(&path);
        assert!(
            header.contains("'descr': '<f4'") && header.contains("'shape': (4, 259)"),
            "{header}"
        );
        assert_eq!(data, want, "via {via}");
        dumps.push(std::fs::read(&path).unwrap());
    }
    assert_eq!(dumps[0], dumps[1]);

    // With -n, generation continues after the dump.
    let path = f.dir.path().join("both.npy");
    let (code, out, _) = run(
        &f.payload,
        &[
            "--tokens",
            "3,5,7,200",
            "--dump-logits",
            path.to_str().unwrap(),
            "-n",
            "3",
            "--ids",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, ids_line(&expected(&prompt, 3)));
    assert_eq!(read_npy(&path).1, want);
}

#[test]
fn help_and_version_exit_zero() {
    let f = fixture(true);
    let (code, out, _) = run(&f.payload, &["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--tokens",
        "--top-p",
        "--dump-logits",
        "--logits-via",
        "--threads",
        "--ctx",
        "--ids",
        "--activations",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}: {out}");
    }
    let (code, out, _) = run(&f.payload, &["--version"]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    // Help needs no payload.
    let (code, _, _) = run(Path::new("/nonexistent"), &["--help"]);
    assert_eq!(code, 0);
}

/// Runs, expects `code`, and checks that stderr names the problem.
fn fails(payload: &Path, args: &[&str], code: i32, needle: &str) {
    let (got, out, err) = run(payload, args);
    assert_eq!(got, code, "{args:?}: stderr {err}");
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out, "");
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    let f = fixture(true);
    let p = &f.payload;
    fails(p, &["-n", "3"], 2, "--prompt");
    fails(p, &["-p", "x", "--tokens", "1"], 2, "cannot be used with");
    fails(p, &["--tokens", "1,x"], 2, "invalid value");
    fails(p, &["--tokens", "1", "--temp", "-1"], 2, "");
    fails(p, &["--tokens", "1", "--top-p", "0"], 2, "top-p");
    fails(p, &["--tokens", "1", "--threads", "0"], 2, "threads");
    fails(p, &["--tokens", "1", "--logits-via", "magic"], 2, "magic");
    fails(p, &["--tokens", "1", "--activations", "int4"], 2, "int4");
    fails(
        p,
        &["--tokens", "1,2,3", "-n", "10", "--ctx", "8"],
        2,
        "needs 13 positions, more than the context of 8 tokens",
    );
    fails(
        p,
        &["--tokens", "1", "--ctx", "65"],
        2,
        "maximum context of 64",
    );
    fails(p, &["--tokens", "1,259"], 2, "token id 259 is out of range");
    let (code, _, err) = run(p, &["--tokens", "1,2,3", "-n", "61"]);
    assert_eq!(code, 0, "61 + 3 = 64 fits: {err}");
    let f = fixture(false);
    fails(&f.payload, &["-p", ""], 2, "the prompt is empty");
}

#[test]
fn bad_payloads_and_files_exit_1_with_a_message() {
    let f = fixture(true);
    let plain = f.dir.path().join("plain");
    std::fs::write(&plain, vec![7u8; 5000]).unwrap();
    fails(
        &plain,
        &["--tokens", "1"],
        1,
        "this executable has no model payload (was it built by dittoc?)",
    );
    fails(
        &f.payload,
        &["-f", "/nonexistent/prompt.txt"],
        1,
        "/nonexistent/prompt.txt",
    );
    let dump = "/nonexistent/dir/x.npy";
    fails(
        &f.payload,
        &["--tokens", "1", "--dump-logits", dump],
        1,
        dump,
    );

    let f = fixture_with(
        "{\"not\": \"a tokenizer\"}",
        r#"{"bos_token_id": null, "eos_token_ids": []}"#,
        64,
    );
    fails(&f.payload, &["-p", "hi"], 1, "bad tokenizer");
    // Ids in, ids out needs no tokenizer.
    let (code, out, _) = run(&f.payload, &["--tokens", "3,5", "-n", "2", "--ids"]);
    assert_eq!(code, 0);
    assert_eq!(out, ids_line(&fake_model::greedy(&[3, 5], 2, VOCAB)));

    let f = fixture_with(&tiny_tokenizer::byte_level(), "[]", 64);
    fails(&f.payload, &["--tokens", "1"], 1, "tokenizer_config");
}

#[test]
fn a_payload_of_another_shape_is_refused() {
    let fx = fixture(false);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        out_is_terminal: false,
    };
    // The code "compiled" for a context of 32; the payload says 64.
    let entry = fake_model::entry_points(&fake_model::config(VOCAB, 32));
    let argv = ["model", "--tokens", "5,6", "-n", "2", "--ids"]
        .into_iter()
        .map(Into::into)
        .collect();
    let code = main_with(argv, &fx.payload, entry, &mut console);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the payload's manifest says model.max_ctx = 64, but this executable's code was compiled for 32"),
        "{err}"
    );
    assert!(out.is_empty());
}
