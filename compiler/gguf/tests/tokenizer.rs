//! Tokenizer conversion: the tokenizer.json built from GGUF metadata must
//! tokenize exactly like the original Hugging Face tokenizer.json it was
//! made from (both loaded with the `tokenizers` crate), and like the Python
//! `tokenizers` package did when the fixtures were written.

mod common;

use common::{fixture, temp_file, Builder};
use ditto_gguf::{tokenizer_config, tokenizer_json, FimTokens, GgufError, GgufFile};
use serde_json::Value as Json;
use tokenizers::Tokenizer;

/// Extra strings beyond those in the fixture's expected.json.
const MORE: &[&str] = &[
    "fn main() {\n    println!(\"{}\", 1_000_000);\n}\n",
    "if (x) {\r\n\treturn y;\r\n}",
    "ÀÉÎÕÜ ß ﬁ Ⅻ ½ ² ٣ 𝔘𝔫𝔦",
    "'S 'T 'RE 'VE 'M 'LL 'D 'ſ",
    "<|endoftext|><|endoftext|>x<|im_end|>",
    "  <tool_call> x </tool_call>  ",
];

fn check(pre: &str) -> (GgufFile, Tokenizer) {
    let f = GgufFile::open(fixture(&format!("tok_{pre}.gguf"))).unwrap();
    let json = tokenizer_json(&f).unwrap();
    let converted = Tokenizer::from_bytes(json.as_bytes()).unwrap();
    let original = Tokenizer::from_file(fixture(&format!("tok_{pre}.tokenizer.json"))).unwrap();

    let exp: Json = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("tok_{pre}.expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        converted.get_vocab_size(true),
        exp["n_tokens"].as_u64().unwrap() as usize
    );
    let cases = exp["cases"].as_array().unwrap();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect();
        let got = converted.encode(text, false).unwrap();
        let orig = original.encode(text, false).unwrap();
        assert_eq!(
            orig.get_ids(),
            &want[..],
            "{pre}: original vs python on {text:?}"
        );
        assert_eq!(got.get_ids(), &want[..], "{pre}: converted on {text:?}");
        // Decoding gives the text back (NFC-normalized for qwen2).
        let decoded = converted.decode(got.get_ids(), false).unwrap();
        let decoded_orig = original.decode(orig.get_ids(), false).unwrap();
        assert_eq!(decoded, decoded_orig, "{pre}: decode {text:?}");
    }
    for text in MORE {
        let got = converted.encode(*text, false).unwrap();
        let orig = original.encode(*text, false).unwrap();
        assert_eq!(got.get_ids(), orig.get_ids(), "{pre}: {text:?}");
    }
    // Never adds BOS/EOS itself, even when asked for special tokens.
    let a = converted.encode("hello", true).unwrap();
    let b = converted.encode("hello", false).unwrap();
    assert_eq!(a.get_ids(), b.get_ids());
    (f, converted)
}

#[test]
fn qwen2_tokenizes_like_the_original() {
    let (f, tok) = check("qwen2");
    let cfg = tokenizer_config(&f).unwrap();
    let id = |s: &str| tok.token_to_id(s).unwrap();
    assert_eq!(cfg.bos_token_id, Some(id("<|endoftext|>")));
    assert_eq!(
        cfg.eos_token_ids,
        vec![id("<|im_end|>"), id("<|endoftext|>")]
    );
    assert!(!cfg.add_bos_token);
    assert!(cfg.chat_template.unwrap().contains("<|im_start|>"));
    assert_eq!(
        cfg.fim,
        Some(FimTokens {
            prefix: id("<|fim_prefix|>"),
            middle: id("<|fim_middle|>"),
            suffix: id("<|fim_suffix|>"),
        })
    );
    // Padding ids exist and decode to their [PAD<i>] spelling.
    let n = tok.get_vocab_size(true) as u32;
    assert_eq!(tok.id_to_token(n - 1).unwrap(), format!("[PAD{}]", n - 1));
}

#[test]
fn smollm_tokenizes_like_the_original() {
    let (f, tok) = check("smollm");
    let cfg = tokenizer_config(&f).unwrap();
    let id = |s: &str| tok.token_to_id(s).unwrap();
    assert_eq!(cfg.bos_token_id, Some(id("<|im_start|>")));
    assert_eq!(
        cfg.eos_token_ids,
        vec![id("<|im_end|>"), id("<|endoftext|>")]
    );
    assert!(
        !cfg.add_bos_token,
        "default for gpt2 models without the key"
    );
    assert_eq!(cfg.chat_template, None);
    assert_eq!(cfg.fim, None);
}

#[test]
fn llama_bpe_tokenizes_like_the_original() {
    let (f, tok) = check("llama-bpe");
    let cfg = tokenizer_config(&f).unwrap();
    let id = |s: &str| tok.token_to_id(s).unwrap();
    assert_eq!(cfg.bos_token_id, Some(id("<|im_start|>")));
    // eos key, eot key, then named control tokens (deduplicated).
    assert_eq!(
        cfg.eos_token_ids,
        vec![id("<|endoftext|>"), id("<|im_end|>")]
    );
    assert!(cfg.add_bos_token, "llama.cpp's default for llama-bpe");
    // From the fim_*_token_id keys, which the fixture deliberately swaps.
    assert_eq!(
        cfg.fim,
        Some(FimTokens {
            prefix: id("<|fim_suffix|>"),
            middle: id("<|fim_middle|>"),
            suffix: id("<|fim_prefix|>"),
        })
    );
    let json: Json = serde_json::from_str(&tokenizer_json(&f).unwrap()).unwrap();
    assert_eq!(json["model"]["ignore_merges"], Json::Bool(true));
}

#[test]
fn config_serializes_per_contract() {
    let f = GgufFile::open(fixture("tok_smollm.gguf")).unwrap();
    let cfg = tokenizer_config(&f).unwrap();
    let j: Json = serde_json::to_value(&cfg).unwrap();
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in [
        "bos_token_id",
        "eos_token_ids",
        "add_bos_token",
        "chat_template",
        "fim",
    ] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert_eq!(j["fim"], Json::Null);
    assert_eq!(j["chat_template"], Json::Null);
}

fn tokens_array(tokens: &[&str]) -> Vec<u8> {
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend((tokens.len() as u64).to_le_bytes());
    for t in tokens {
        v.extend(common::gguf_str(t));
    }
    v
}

#[test]
fn unsupported_and_invalid_tokenizers_are_errors() {
    // SentencePiece ("llama") and unknown pre-tokenizers are refused clearly.
    let bytes = Builder::default()
        .kv_str("tokenizer.ggml.model", "llama")
        .kv_raw("tokenizer.ggml.tokens", 9, &tokens_array(&["<unk>", "a"]))
        .build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let e = tokenizer_json(&f).unwrap_err();
    assert!(matches!(e, GgufError::UnsupportedTokenizer { .. }), "{e:?}");
    assert!(e.to_string().contains(&tmp.path().display().to_string()));

    let bytes = Builder::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "no-such-pre")
        .kv_raw("tokenizer.ggml.tokens", 9, &tokens_array(&["a", "b", "ab"]))
        .kv_raw("tokenizer.ggml.merges", 9, &tokens_array(&["a b"]))
        .build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let e = tokenizer_json(&f).unwrap_err();
    assert!(e.to_string().contains("no-such-pre"), "{e}");

    // A merge of tokens that are not in the vocabulary.
    let bytes = Builder::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "qwen2")
        .kv_raw("tokenizer.ggml.tokens", 9, &tokens_array(&["a", "b"]))
        .kv_raw("tokenizer.ggml.merges", 9, &tokens_array(&["a c"]))
        .build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let e = tokenizer_json(&f).unwrap_err();
    assert!(matches!(e, GgufError::InvalidTokenizer { .. }), "{e:?}");

    // A special id outside the vocabulary; a missing token list.
    let bytes = Builder::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_raw("tokenizer.ggml.tokens", 9, &tokens_array(&["a", "b"]))
        .kv_u32("tokenizer.ggml.eos_token_id", 7)
        .build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let e = tokenizer_config(&f).unwrap_err();
    assert!(e.to_string().contains("eos_token_id"), "{e}");
    let f = GgufFile::open(fixture("metadata.gguf")).unwrap();
    assert!(matches!(
        tokenizer_json(&f),
        Err(GgufError::MissingKey { .. })
    ));
    assert!(matches!(
        tokenizer_config(&f),
        Err(GgufError::MissingKey { .. })
    ));
}

#[test]
fn empty_and_repeated_tokens_still_load() {
    // As llama.cpp: an empty token is renamed `[EMPTY_<id>]`; a repeated
    // spelling maps to its last id.
    let bytes = Builder::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "gpt-2")
        .kv_raw(
            "tokenizer.ggml.tokens",
            9,
            &tokens_array(&["a", "", "b", "ab", "a"]),
        )
        .kv_raw("tokenizer.ggml.merges", 9, &tokens_array(&["a b"]))
        .build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let tok = Tokenizer::from_bytes(tokenizer_json(&f).unwrap().as_bytes()).unwrap();
    assert_eq!(tok.token_to_id("[EMPTY_1]"), Some(1));
    assert_eq!(tok.token_to_id("a"), Some(4));
    assert_eq!(tok.encode("ab", false).unwrap().get_ids(), &[3]);
    let cfg = tokenizer_config(&f).unwrap();
    assert_eq!(cfg.bos_token_id, None);
    assert!(cfg.eos_token_ids.is_empty());
}
