//! `tokenizer.ggml.model == "gpt2"`: byte-level BPE.
//!
//! The pre-tokenizer is chosen by `tokenizer.ggml.pre` the way llama.cpp's
//! llama-vocab.cpp does. Where llama.cpp rewrites a regex for its own engine
//! (case-insensitive groups spelled out, a trailing `\s+` dropped), the
//! original Hugging Face pattern is used here, since the result is run by
//! the `tokenizers` crate (fancy-regex) like the original tokenizer.json.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{json, Map, Value as Json};

use super::{invalid, token_type, unsupported, Vocab};
use crate::error::Result;
use crate::GgufFile;

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How one `tokenizer.ggml.pre` family tokenizes.
struct Pre {
    /// Regexes applied one after the other, each splitting every piece
    /// further with matches kept as pieces (HF `Split`, behavior `Isolated`).
    regexes: &'static [&'static str],
    /// Apply Unicode NFC first (Qwen2's tokenizer.json does).
    nfc: bool,
    /// A word that is itself a vocabulary entry is not merged further.
    ignore_merges: bool,
    /// llama.cpp adds BOS by default for this family.
    add_bos: bool,
}

fn pre_tokenizer(name: &str) -> Option<Pre> {
    let pre = |regexes, nfc, ignore_merges, add_bos| {
        Some(Pre {
            regexes,
            nfc,
            ignore_merges,
            add_bos,
        })
    };
    match name {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" => pre(&[LLAMA3], false, true, true),
        "dbrx" | "smaug-bpe" | "chatglm-bpe" | "glm4" => pre(&[LLAMA3], false, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "megrez" | "stablelm2" | "hunyuan" => {
            pre(&[QWEN2], true, false, false)
        }
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            pre(&[r"\p{N}", GPT2], false, false, false)
        }
        "gpt2" | "gpt-2" | "phi-2" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling"
        | "exaone4" | "jina-es" | "jina-de" | "jina-v2-es" | "jina-v2-de" | "gigachat"
        | "a.x-4.0" | "mellum" => pre(&[GPT2], false, false, false),
        "default" => pre(
            &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
            false,
            false,
            false,
        ),
        _ => None,
    }
}

/// Whether llama.cpp adds BOS by default for pre-tokenizer `name`.
pub(crate) fn adds_bos_by_default(name: &str) -> bool {
    pre_tokenizer(name).is_some_and(|p| p.add_bos)
}

pub(crate) fn tokenizer_json(f: &GgufFile) -> Result<String> {
    let pre_name = f
        .get_opt::<&str>("tokenizer.ggml.pre")?
        .unwrap_or("default");
    let pre = pre_tokenizer(pre_name).ok_or_else(|| {
        unsupported(
            f,
            format!(
                "tokenizer.ggml.pre `{pre_name}` is not a known byte-level BPE pre-tokenizer \
                 (known: qwen2, llama-bpe, smollm, gpt-2, default and their llama.cpp aliases)"
            ),
        )
    })?;
    let v = Vocab::read(f)?;
    let merges = f.get_str_array("tokenizer.ggml.merges")?;

    // Vocabulary: as llama.cpp, an empty token becomes `[EMPTY_<id>]` and a
    // repeated spelling maps to its last id.
    let spellings: Vec<Cow<'_, str>> = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.is_empty() {
                Cow::Owned(format!("[EMPTY_{i}]"))
            } else {
                Cow::Borrowed(t.as_str())
            }
        })
        .collect();
    let mut vocab = Map::with_capacity(spellings.len());
    for (i, s) in spellings.iter().enumerate() {
        vocab.insert(s.to_string(), json!(i));
    }
    let known: HashSet<&str> = spellings.iter().map(|s| s.as_ref()).collect();

    let mut json_merges = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        // Split at the first space after the first character (llama.cpp).
        let cut = m
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ' ')
            .map(|(k, _)| k);
        let parts = cut.and_then(|k| Some((m.get(..k)?, m.get(k + 1..)?)));
        let Some((a, b)) = parts else {
            return Err(invalid(
                f,
                format!("tokenizer.ggml.merges[{i}] {m:?} is not two tokens separated by a space"),
            ));
        };
        for part in [a, b, &format!("{a}{b}")] {
            if !known.contains(part) {
                return Err(invalid(
                    f,
                    format!(
                        "tokenizer.ggml.merges[{i}] {m:?} uses {part:?}, which is not in the \
                         vocabulary (tokenizer.ggml.tokens)"
                    ),
                ));
            }
        }
        json_merges.push(json!([a, b]));
    }

    let mut added = Vec::new();
    for (i, s) in spellings.iter().enumerate() {
        let special = match v.token_type(i) {
            Some(token_type::CONTROL) => true,
            Some(token_type::USER_DEFINED) => false,
            _ => continue,
        };
        added.push(json!({
            "id": i,
            "content": s,
            "single_word": false,
            "lstrip": false,
            "rstrip": false,
            "normalized": false,
            "special": special,
        }));
    }

    let mut pretokenizers: Vec<Json> = pre
        .regexes
        .iter()
        .map(|r| {
            json!({
                "type": "Split",
                "pattern": {"Regex": r},
                "behavior": "Isolated",
                "invert": false,
            })
        })
        .collect();
    let byte_level = json!({
        "type": "ByteLevel",
        "add_prefix_space": false,
        "trim_offsets": false,
        "use_regex": false,
    });
    pretokenizers.push(byte_level.clone());

    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": if pre.nfc { json!({"type": "NFC"}) } else { Json::Null },
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pretokenizers},
        "post_processor": byte_level,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": true,
            "trim_offsets": true,
            "use_regex": true,
        },
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": pre.ignore_merges,
            "vocab": vocab,
            "merges": json_merges,
        },
    });
    Ok(tokenizer.to_string())
}
