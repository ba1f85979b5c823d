//! What the `gguf_tokenizer` target leaves out (too slow to fuzz): every
//! GGUF of the checked-in corpora whose tokenizer `ditto_gguf` converts
//! must give a `tokenizer.json` the executable's runtime loads. Ignored by
//! default (it compiles each tokenizer's regexes: about a minute); run it
//! with `cargo test --release -p ditto-fuzz-targets -- --ignored`.

use std::path::Path;

#[test]
#[ignore = "slow: compiles the regexes of every converted tokenizer of the corpora"]
fn converted_tokenizers_load() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut failures = Vec::new();
    let mut converted = 0;
    for kind in ["corpus", "regressions"] {
        for target in ["gguf", "gguf_tokenizer"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                let data = std::fs::read(&path).expect("a fuzz input reads");
                match ditto_fuzz_targets::gguf_tokenizer_loads(&data) {
                    None => {}
                    Some(Ok(())) => converted += 1,
                    Some(Err(e)) => failures.push(format!("{}: {e}", path.display())),
                }
            }
        }
    }
    assert!(
        converted > 0,
        "no GGUF of the corpora has a tokenizer that converts"
    );
    assert!(
        failures.is_empty(),
        "converted tokenizers the runtime does not load:\n{}",
        failures.join("\n")
    );
}
