//! The one loader of Hugging Face `tokenizer.json` files: `dittoc import`
//! (a checkpoint's file, and the conversion of a GGUF's tokenizer) and the
//! executable's runtime (its payload's tokenizer section) both load through
//! [`load`].
//!
//! The `tokenizers` crate (0.22) panics instead of failing on some inputs:
//! a `decoder` whose JSON is malformed (`expect("Helper")` in its decoder
//! deserializer) and a `Precompiled` normalizer whose charsmap does not
//! deserialize (`expect("Precompiled")`). Both were found by fuzzing
//! (`fuzz/regressions/hf_tokenizer/`). [`load`] checks the syntax of the
//! whole file and every `Precompiled` normalizer before the crate sees the
//! file, and runs the crate's parser under `catch_unwind`, so that a panic
//! not known here is still an error naming the crate rather than an abort.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;
use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::Tokenizer;

/// Why a `tokenizer.json` was refused: a sentence naming what is wrong,
/// for the caller to put after the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Loads a `tokenizer.json` from its bytes.
pub fn load(json: &[u8]) -> Result<Tokenizer, Refusal> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| Refusal(format!("not a tokenizer: invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Refusal("not a tokenizer: the JSON is not an object".into()));
    }
    if let Some(normalizer) = value.get("normalizer") {
        check_precompiled(normalizer, "normalizer")?;
    }
    match catch_unwind(AssertUnwindSafe(|| Tokenizer::from_bytes(json))) {
        Ok(Ok(tokenizer)) => Ok(tokenizer),
        Ok(Err(e)) => Err(Refusal(format!("not a tokenizer: {e}"))),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Refusal(format!(
                "not a tokenizer: the tokenizers crate failed on it ({message})"
            )))
        }
    }
}

/// Every `Precompiled` normalizer in `normalizer` (at `path`, inside
/// `Sequence`s too) must deserialize as one.
fn check_precompiled(normalizer: &Value, path: &str) -> Result<(), Refusal> {
    let Some(object) = normalizer.as_object() else {
        return Ok(());
    };
    match object.get("type").and_then(Value::as_str) {
        Some("Precompiled") => {
            if let Err(e) = serde_json::from_value::<Precompiled>(normalizer.clone()) {
                return Err(Refusal(format!(
                    "not a tokenizer: `{path}` is not a Precompiled normalizer: {e}"
                )));
            }
        }
        Some("Sequence") => {
            if let Some(list) = object.get("normalizers").and_then(Value::as_array) {
                for (i, inner) in list.iter().enumerate() {
                    check_precompiled(inner, &format!("{path}.normalizers[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(json: &str) -> String {
        match load(json.as_bytes()) {
            Ok(_) => panic!("loaded: {json}"),
            Err(e) => e.0,
        }
    }

    const MODEL: &str =
        r#""model": {"type": "WordLevel", "vocab": {"a": 0, "[UNK]": 1}, "unk_token": "[UNK]"}"#;

    #[test]
    fn a_small_tokenizer_loads() {
        let tokenizer = load(format!("{{{MODEL}}}").as_bytes()).unwrap();
        assert_eq!(tokenizer.token_to_id("a"), Some(0));
    }

    #[test]
    fn a_truncated_decoder_is_an_error() {
        // The crate's decoder deserializer panicked ("Helper") on this.
        assert!(refusal(&format!("{{{MODEL}, \"decoder\": \"le"))
            .starts_with("not a tokenizer: invalid JSON"));
        assert!(refusal("{ \"decoder\": {\"type\": \"ByteLevel\",")
            .starts_with("not a tokenizer: invalid JSON"));
    }

    #[test]
    fn a_bad_precompiled_charsmap_is_an_error() {
        // The crate's normalizer deserializer panicked ("Precompiled") on these.
        let direct = format!(
            r#"{{{MODEL}, "normalizer": {{"type": "Precompiled", "precompiled_charsmap": "AAAA"}}}}"#
        );
        assert!(refusal(&direct).contains("`normalizer` is not a Precompiled normalizer"));
        let nested = format!(
            r#"{{{MODEL}, "normalizer": {{"type": "Sequence", "normalizers": [{{"type": "NFC"}}, {{"type": "Precompiled", "precompiled_charsmap": 7}}]}}}}"#
        );
        assert!(refusal(&nested).contains("`normalizer.normalizers[1]`"));
    }

    #[test]
    fn json_that_is_not_a_tokenizer_is_an_error() {
        assert!(refusal("[1, 2]").contains("not an object"));
        assert!(refusal("{}").starts_with("not a tokenizer"));
    }
}
