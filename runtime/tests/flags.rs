//! Every flag error of the executable names the flag and the value the user
//! gave, exits with code 2, and panics nowhere: negative numbers (which clap
//! took for flags: "unexpected argument '-1'"), values out of range, NaN and
//! infinities, absurd thread counts and contexts.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;

use common::fake_model::{self, WEIGHTS};
use common::payload_file::{model_json, with_payload, write, Sections};
use common::tiny_tokenizer;
use ditto_rt::app::Console;
use ditto_rt::cli::{Args, MAX_THREADS};
use ditto_rt::entry::main_with;

const VOCAB: usize = 259;
const MAX_CTX: usize = 64;

fn payload(dir: &Path) -> PathBuf {
    let payload = dir.join("model");
    let config = format!(
        r#"{{"bos_token_id": 1, "eos_token_ids": [{}], "add_bos_token": true}}"#,
        tiny_tokenizer::BYTE_LEVEL_EOS
    );
    let tokenizer = tiny_tokenizer::byte_level();
    let sections = Sections {
        weights: WEIGHTS,
        tokenizer: tokenizer.as_bytes(),
        tokenizer_config: config.as_bytes(),
    };
    write(
        &payload,
        &with_payload(b"\x7fELF fake image", &sections, model_json(VOCAB, MAX_CTX)),
    );
    payload
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

/// Expects exit code `code` and every one of `needles` in stderr.
fn fails(payload: &Path, args: &[&str], code: i32, needles: &[&str]) {
    let (got, out, err) = run(payload, args);
    assert_eq!(got, code, "{args:?}: stderr {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{args:?}: stderr {err:?} lacks {needle:?}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("unexpected argument"), "{err}");
    assert_eq!(out, "");
}

#[test]
fn negative_numbers_are_values_of_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = &payload(dir.path());
    for (flag, shown) in [
        // As written: clap alone names `-n` by its long form.
        ("-n", "'-n <N>'"),
        ("--max-new-tokens", "'--max-new-tokens <N>'"),
        ("--top-k", "'--top-k <K>'"),
        ("--seed", "'--seed <SEED>'"),
        ("--threads", "'--threads <N>'"),
        ("--ctx", "'--ctx <TOKENS>'"),
        ("--calib-samples", "'--calib-samples <ROWS>'"),
        ("--tokens", "'--tokens <ID,ID,...>'"),
    ] {
        let args = if flag == "--tokens" {
            vec!["--tokens", "-1"]
        } else {
            vec!["--tokens", "1", flag, "-1"]
        };
        fails(
            p,
            &args,
            2,
            &[
                &format!("invalid value '-1' for {shown}"),
                "-1 is out of range: expected a whole number from",
            ],
        );
    }
    fails(
        p,
        &["--tokens", "1", "--temp", "-1"],
        2,
        &["invalid value '-1' for '--temp <TEMP>'", "0 or more"],
    );
    fails(
        p,
        &["--tokens", "1", "--top-p", "-0.5"],
        2,
        &["invalid value '-0.5' for '--top-p <P>'", "(0, 1]"],
    );
}

#[test]
fn numbers_out_of_range_name_the_flag_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = &payload(dir.path());
    let huge = "99999999999999999999999";
    for (args, needles) in [
        (
            vec!["-n", huge],
            vec!["invalid value '99999999999999999999999' for '-n <N>'"],
        ),
        (
            vec!["-n", "4294967296"],
            vec!["4294967296 is out of range: expected a whole number from 0 to 4294967295"],
        ),
        (vec!["-n", "x"], vec!["invalid value 'x' for '-n <N>'"]),
        (
            vec!["--max-new-tokens=x"],
            vec!["invalid value 'x' for '--max-new-tokens <N>'"],
        ),
        (
            vec!["--threads", "0"],
            vec!["invalid value '0' for '--threads <N>'", "from 1 to 1024"],
        ),
        (
            vec!["--threads", "1025"],
            vec!["invalid value '1025' for '--threads <N>'"],
        ),
        (
            vec!["--threads", "65536"],
            vec!["invalid value '65536' for '--threads <N>'"],
        ),
        (
            vec!["--ctx", "0"],
            vec!["invalid value '0' for '--ctx <TOKENS>'"],
        ),
        (
            vec!["--ctx", huge],
            vec!["invalid value '99999999999999999999999' for '--ctx <TOKENS>'"],
        ),
        (
            vec!["--seed", huge],
            vec!["invalid value '99999999999999999999999' for '--seed <SEED>'"],
        ),
        (vec!["--top-k", huge], vec!["for '--top-k <K>'"]),
        (
            vec!["--calib-samples", "0"],
            vec!["invalid value '0' for '--calib-samples <ROWS>'"],
        ),
        (
            vec!["--temp", "nan"],
            vec!["invalid value 'nan' for '--temp <TEMP>'", "finite"],
        ),
        (
            vec!["--temp", "inf"],
            vec!["invalid value 'inf' for '--temp <TEMP>'"],
        ),
        (
            vec!["--temp", "warm"],
            vec!["invalid value 'warm' for '--temp <TEMP>'"],
        ),
        (
            vec!["--top-p", "NaN"],
            vec!["invalid value 'NaN' for '--top-p <P>'"],
        ),
        (
            vec!["--top-p", "1.5"],
            vec!["invalid value '1.5' for '--top-p <P>'"],
        ),
        (
            vec!["--tokens", "1,4294967296"],
            vec!["invalid value '4294967296' for '--tokens <ID,ID,...>'"],
        ),
    ] {
        let mut all = vec!["--tokens", "1"];
        if args[0] == "--tokens" {
            all.clear();
        }
        all.extend(args);
        fails(p, &all, 2, &needles);
    }
}

#[test]
fn flags_checked_against_the_model_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = &payload(dir.path());
    // The windows of --perplexity and --calibrate used to be cut to the
    // model's context without a word.
    for mode in [&["--perplexity"][..], &["--calibrate", "c.safetensors"]] {
        let mut args = vec!["--tokens", "1,2,3", "--ctx", "65"];
        args.extend(mode);
        fails(
            p,
            &args,
            2,
            &["--ctx 65 is more than the model's maximum context of 64 tokens"],
        );
    }
    fails(
        p,
        &["--tokens", "1,2,3", "--perplexity", "--ctx", "1"],
        2,
        &["--perplexity needs windows (--ctx) of at least 2 tokens"],
    );
    // A window that fits still runs.
    let (code, out, err) = run(p, &["--tokens", "1,2,3", "--perplexity", "--ctx", "64"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().parse::<f64>().is_ok(), "{out}");
}

#[test]
fn files_named_by_flags_are_named_with_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = &payload(dir.path());
    fails(
        p,
        &["-f", "/nonexistent/prompt.txt"],
        1,
        &["-f /nonexistent/prompt.txt: cannot read the prompt"],
    );
    fails(
        p,
        &["--tokens-file", "/nonexistent/ids.txt"],
        1,
        &["--tokens-file /nonexistent/ids.txt: cannot read"],
    );
    // Said before the run, not by the temporary file beside it.
    for flag in ["--dump-logits", "--calibrate"] {
        fails(
            p,
            &["--tokens", "1", flag, "/nonexistent/dir/x"],
            1,
            &[&format!(
                "{flag} /nonexistent/dir/x: no directory /nonexistent/dir"
            )],
        );
    }
}

#[test]
fn values_at_the_limits_are_accepted() {
    for args in [
        vec!["-n", "0"],
        vec!["-n", "4294967295"],
        vec!["--threads", "1"],
        vec!["--threads", &*MAX_THREADS.to_string()],
        vec!["--ctx", "4294967295"],
        vec!["--seed", "18446744073709551615"],
        vec!["--temp", "0"],
        vec!["--temp", "1e30"],
        vec!["--top-p", "1"],
        vec!["--top-k", "0"],
        vec!["--calib-samples", "1"],
    ] {
        let argv = ["model", "--tokens", "0,4294967295"]
            .into_iter()
            .chain(args.iter().copied());
        if let Err(e) = Args::try_parse_from(argv) {
            panic!("{args:?}: {e}");
        }
    }
}
