//! Two small `tokenizer.json`s written by hand: GPT-2 style byte-level BPE
//! (Qwen, SmolLM) and Llama style SentencePiece BPE with byte fallback.

use serde_json::json;

/// GPT-2's byte → printable char table: ids 0..256 are the bytes.
pub fn byte_level_char(byte: u8) -> char {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let b = byte as u32;
    if printable(b) {
        return char::from_u32(b).unwrap();
    }
    let shifted = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + shifted).unwrap()
}

pub const BYTE_LEVEL_EOS: u32 = 258;

/// Byte-level BPE: ids 0..256 = bytes, 256 = "he", 257 = "ll", 258 = `<|eos|>`.
pub fn byte_level() -> String {
    let mut vocab = serde_json::Map::new();
    for b in 0..=255u8 {
        vocab.insert(byte_level_char(b).to_string(), json!(b));
    }
    vocab.insert("he".into(), json!(256));
    vocab.insert("ll".into(), json!(257));
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": BYTE_LEVEL_EOS, "content": "<|eos|>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": ["h e", "l l"]}
    })
    .to_string()
}

/// SentencePiece style: 0 `<unk>`, 1 `<s>`, 2 `</s>`, 3..259 `<0xNN>`,
/// 259 "▁hello", 260 "▁world", 261 "▁".
pub fn sentencepiece() -> String {
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["<unk>", "<s>", "</s>"].iter().enumerate() {
        vocab.insert(t.to_string(), json!(i));
    }
    for b in 0..=255u32 {
        vocab.insert(format!("<0x{b:02X}>"), json!(3 + b));
    }
    vocab.insert("▁hello".into(), json!(259));
    vocab.insert("▁world".into(), json!(260));
    vocab.insert("▁".into(), json!(261));
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": []}
    })
    .to_string()
}
