//! Checks a datastore file as `--datastore` does (sampled order) and as
//! `dittoc --datastore` does (full order), timing each, then times
//! retrievals of contexts taken from its own corpus:
//!
//!     cargo run --release -p ditto-datastore --example check -- FILE VOCAB
//!
//! The fingerprint expected is the file's own (this tool has no tokenizer);
//! VOCAB is the model's vocabulary (151936 for Qwen2.5-Coder).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use ditto_datastore::file::{open, Expect, Order, HEADER_BYTES};
use ditto_datastore::suffix::Query;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(Ok(vocab))) = (args.get(1), args.get(2).map(|v| v.parse::<u32>())) else {
        eprintln!("usage: check FILE VOCAB");
        return ExitCode::from(2);
    };
    let header = match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= HEADER_BYTES => bytes[16..48].to_vec(),
        Ok(_) => vec![0; 32],
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(&header);
    let mut found = None;
    for order in [Order::Sampled, Order::Full] {
        let start = Instant::now();
        let expect = Expect {
            fingerprint: &fingerprint,
            vocab,
            order,
        };
        match open(Path::new(path), expect) {
            Ok(opened) => {
                let seconds = start.elapsed().as_secs_f64();
                println!(
                    "{path}: {} files, {} bytes of source, {} tokens; opened and checked ({order:?} order) in {seconds:.3} s",
                    opened.summary.files,
                    opened.summary.source_bytes,
                    opened.tokens()
                );
                found = Some(opened);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(found) = found else {
        return ExitCode::FAILURE;
    };
    let store = &found.store;
    // Contexts of 32 tokens ending at spread-out positions of the corpus.
    let tokens = store.tokens();
    let query = Query::default();
    let step = (tokens.len() / 1000).max(1);
    let (mut n, mut matched, mut drafted) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    for end in (32..tokens.len()).step_by(step) {
        n += 1;
        if let Some(r) = store.retrieve(&tokens[end - 32..end], &query) {
            matched += 1;
            drafted += r.draft.tokens.len() as u64;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{n} retrievals in {:.1} ms ({:.1} µs each): {matched} matched, {drafted} tokens drafted",
        seconds * 1e3,
        seconds * 1e6 / n.max(1) as f64
    );
    ExitCode::SUCCESS
}
