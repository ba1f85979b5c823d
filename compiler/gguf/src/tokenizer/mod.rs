//! GGUF tokenizer metadata (`tokenizer.ggml.*`) to a Hugging Face
//! `tokenizer.json` and to dittoc's `tokenizer_config.json`
//! (docs/contracts.md §1).

mod bpe;

use serde::{Deserialize, Serialize};

use crate::error::{GgufError, Result};
use crate::GgufFile;

/// GGUF token types (`tokenizer.ggml.token_type`, llama.cpp's `llama_token_type`).
pub(crate) mod token_type {
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
}

/// The FIM (fill-in-the-middle) token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FimTokens {
    pub prefix: u32,
    pub middle: u32,
    pub suffix: u32,
}

/// `model.tokenizer_config.json` as fixed by docs/contracts.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerConfig {
    /// Beginning-of-sequence token (`tokenizer.ggml.bos_token_id`).
    pub bos_token_id: Option<u32>,
    /// Every id that ends generation: eos, eot and eom ids from the metadata,
    /// then the control tokens `<|endoftext|>`, `<|im_end|>`, `<|eot_id|>`,
    /// `<|end_of_text|>`, `<|eom_id|>`, `<|end|>`, `<end_of_turn>` that exist.
    pub eos_token_ids: Vec<u32>,
    /// Whether a prompt starts with the BOS token. The converted
    /// `tokenizer.json` never adds it by itself: the caller does.
    pub add_bos_token: bool,
    /// `tokenizer.chat_template` (a Jinja template), if present.
    pub chat_template: Option<String>,
    /// FIM token ids, if the model has all three.
    pub fim: Option<FimTokens>,
}

/// The token list and types of a file, shared by both conversions.
pub(crate) struct Vocab<'a> {
    pub tokens: &'a [String],
    pub types: Option<&'a [i32]>,
}

impl<'a> Vocab<'a> {
    pub(crate) fn read(f: &'a GgufFile) -> Result<Vocab<'a>> {
        let tokens = f.get_str_array("tokenizer.ggml.tokens")?;
        if tokens.is_empty() || tokens.len() > i32::MAX as usize {
            return Err(invalid(
                f,
                format!(
                    "tokenizer.ggml.tokens has {} entries (1 to {} are allowed)",
                    tokens.len(),
                    i32::MAX
                ),
            ));
        }
        let types = f.get_opt::<&[i32]>("tokenizer.ggml.token_type")?;
        if let Some(t) = types {
            if t.len() != tokens.len() {
                return Err(invalid(
                    f,
                    format!(
                        "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                        t.len(),
                        tokens.len()
                    ),
                ));
            }
        }
        Ok(Vocab { tokens, types })
    }

    pub(crate) fn token_type(&self, id: usize) -> Option<i32> {
        self.types.and_then(|t| t.get(id).copied())
    }

    /// The id of the first control token spelled `text`.
    fn control_id(&self, text: &str) -> Option<u32> {
        self.tokens
            .iter()
            .enumerate()
            .position(|(i, t)| t == text && self.token_type(i) == Some(token_type::CONTROL))
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The id of the first token spelled `text`, whatever its type.
    fn find(&self, text: &str) -> Option<u32> {
        self.tokens
            .iter()
            .position(|t| t == text)
            .and_then(|i| u32::try_from(i).ok())
    }
}

pub(crate) fn invalid(f: &GgufFile, reason: String) -> GgufError {
    GgufError::InvalidTokenizer {
        path: f.path().to_path_buf(),
        reason,
    }
}

pub(crate) fn unsupported(f: &GgufFile, reason: String) -> GgufError {
    GgufError::UnsupportedTokenizer {
        path: f.path().to_path_buf(),
        reason,
    }
}

/// A special-token id from the metadata, checked against the vocabulary size.
fn special_id(f: &GgufFile, v: &Vocab<'_>, key: &str) -> Result<Option<u32>> {
    match f.get_opt::<u32>(key)? {
        Some(id) if id as usize >= v.tokens.len() => Err(invalid(
            f,
            format!(
                "{key} = {id} is outside the vocabulary of {} tokens (tokenizer.ggml.tokens)",
                v.tokens.len()
            ),
        )),
        other => Ok(other),
    }
}

/// Builds a Hugging Face `tokenizer.json` (as a JSON string) from the file's
/// `tokenizer.ggml.*` metadata.
///
/// Supported: `tokenizer.ggml.model == "gpt2"` (byte-level BPE) with the
/// pre-tokenizers llama.cpp knows as `qwen2`, `llama-bpe`, `smollm`,
/// `gpt-2` and their aliases, and `default` (or no `tokenizer.ggml.pre`).
/// Other models or pre-tokenizers give [`GgufError::UnsupportedTokenizer`].
/// Control tokens (type 3) become special added tokens, user-defined tokens
/// (type 4) non-special added tokens. The result never adds BOS/EOS itself.
pub fn tokenizer_json(f: &GgufFile) -> Result<String> {
    let model = f.get_str("tokenizer.ggml.model")?;
    match model {
        "gpt2" => bpe::tokenizer_json(f),
        other => Err(unsupported(
            f,
            format!(
                "tokenizer.ggml.model `{other}` is not supported (only `gpt2`, byte-level BPE)"
            ),
        )),
    }
}

/// Reads dittoc's tokenizer configuration (BOS, end-of-generation ids, chat
/// template, FIM ids) from the file's metadata.
pub fn tokenizer_config(f: &GgufFile) -> Result<TokenizerConfig> {
    let v = Vocab::read(f)?;
    let model = f.get_str("tokenizer.ggml.model")?;
    let pre = f.get_opt::<&str>("tokenizer.ggml.pre")?;

    let bos_token_id = special_id(f, &v, "tokenizer.ggml.bos_token_id")?;

    let mut eos_token_ids = Vec::new();
    for key in [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ] {
        if let Some(id) = special_id(f, &v, key)? {
            eos_token_ids.push(id);
        }
    }
    for name in [
        "<|endoftext|>",
        "<|im_end|>",
        "<|eot_id|>",
        "<|end_of_text|>",
        "<|eom_id|>",
        "<|end|>",
        "<end_of_turn>",
    ] {
        if let Some(id) = v.control_id(name) {
            eos_token_ids.push(id);
        }
    }
    let mut seen = std::collections::HashSet::new();
    eos_token_ids.retain(|id| seen.insert(*id));

    // llama.cpp's defaults when the key is absent: SentencePiece and the
    // llama3-style BPE pre-tokenizers add BOS, other BPE models do not.
    let default_bos = match model {
        "llama" => true,
        "gpt2" => pre.is_some_and(bpe::adds_bos_by_default),
        _ => false,
    };
    let add_bos_token = f
        .get_opt::<bool>("tokenizer.ggml.add_bos_token")?
        .unwrap_or(default_bos);

    let chat_template = f
        .get_opt::<&str>("tokenizer.chat_template")?
        .map(str::to_string);

    let fim = fim_tokens(f, &v)?;

    Ok(TokenizerConfig {
        bos_token_id,
        eos_token_ids,
        add_bos_token,
        chat_template,
        fim,
    })
}

fn fim_tokens(f: &GgufFile, v: &Vocab<'_>) -> Result<Option<FimTokens>> {
    let key = |new: &str, old: &str| -> Result<Option<u32>> {
        Ok(special_id(f, v, new)?.or(special_id(f, v, old)?))
    };
    let from_keys = (
        key(
            "tokenizer.ggml.fim_pre_token_id",
            "tokenizer.ggml.prefix_token_id",
        )?,
        key(
            "tokenizer.ggml.fim_mid_token_id",
            "tokenizer.ggml.middle_token_id",
        )?,
        key(
            "tokenizer.ggml.fim_suf_token_id",
            "tokenizer.ggml.suffix_token_id",
        )?,
    );
    if let (Some(prefix), Some(middle), Some(suffix)) = from_keys {
        return Ok(Some(FimTokens {
            prefix,
            middle,
            suffix,
        }));
    }
    for [p, m, s] in [
        ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"],
        ["<fim_prefix>", "<fim_middle>", "<fim_suffix>"],
    ] {
        if let (Some(prefix), Some(middle), Some(suffix)) = (v.find(p), v.find(m), v.find(s)) {
            return Ok(Some(FimTokens {
                prefix,
                middle,
                suffix,
            }));
        }
    }
    Ok(None)
}
