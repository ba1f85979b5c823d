//! Tokenizer loading, prompt encoding and streaming detokenization: a
//! character split across tokens is printed whole, once.

mod common;

use common::tiny_tokenizer;
use ditto_rt::tokenizer::{Tokenizer, TokenizerConfig};

/// Pushes ids one at a time; returns the pieces printed (finish included).
fn stream(tokenizer: &Tokenizer, ids: &[u32]) -> Vec<String> {
    let mut text = tokenizer.stream();
    let mut pieces: Vec<String> = ids.iter().filter_map(|&id| text.push(id)).collect();
    let rest = text.finish();
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[test]
fn byte_level_multibyte_characters_stream_whole() {
    let tokenizer = Tokenizer::from_json(tiny_tokenizer::byte_level().as_bytes()).unwrap();
    let text = "hello wörld → 你好 🦀!";
    let ids = tokenizer.encode(text).unwrap();
    assert!(
        ids.contains(&256) && ids.contains(&257),
        "merges apply: {ids:?}"
    );
    // Every non-ASCII byte is its own token here, so characters are split.
    assert!(ids.len() > text.chars().count());
    assert_eq!(tokenizer.decode(&ids), text);

    let pieces = stream(&tokenizer, &ids);
    assert_eq!(pieces.concat(), text);
    for piece in &pieces {
        assert!(
            !piece.contains(char::REPLACEMENT_CHARACTER),
            "half a character printed: {pieces:?}"
        );
    }
    // The crab (4 bytes, 4 tokens) comes out as one piece.
    assert!(pieces.iter().any(|p| p == "🦀"), "{pieces:?}");
}

#[test]
fn sentencepiece_spaces_and_byte_fallback_stream_right() {
    let tokenizer = Tokenizer::from_json(tiny_tokenizer::sentencepiece().as_bytes()).unwrap();
    // "▁hello ▁world ▁ <0xC3> <0xA9> ▁world"
    let ids = [259, 260, 261, 3 + 0xC3, 3 + 0xA9, 260];
    assert_eq!(tokenizer.decode(&ids), "hello world é world");
    let pieces = stream(&tokenizer, &ids);
    assert_eq!(pieces.concat(), "hello world é world");
    assert_eq!(pieces[0], "hello");
    assert_eq!(pieces[1], " world");
    assert!(pieces.contains(&"é".to_string()), "{pieces:?}");
}

#[test]
fn an_incomplete_character_at_the_end_is_flushed_as_replacement() {
    let tokenizer = Tokenizer::from_json(tiny_tokenizer::byte_level().as_bytes()).unwrap();
    let mut text = tokenizer.stream();
    assert_eq!(text.push(b'a' as u32).as_deref(), Some("a"));
    assert_eq!(text.push(0xE2), None); // first byte of a 3-byte character
    assert_eq!(text.finish(), "\u{FFFD}");
}

#[test]
fn bos_only_when_the_config_asks() {
    let config = |json: &str| TokenizerConfig::from_json(json.as_bytes()).unwrap();
    assert_eq!(
        config(r#"{"bos_token_id": 1, "eos_token_ids": [2], "add_bos_token": true}"#).bos(),
        Some(1)
    );
    assert_eq!(
        config(r#"{"bos_token_id": 1, "eos_token_ids": [2], "add_bos_token": false}"#).bos(),
        None
    );
    assert_eq!(
        config(r#"{"bos_token_id": null, "eos_token_ids": [2], "add_bos_token": true}"#).bos(),
        None
    );
    let full = config(
        r#"{"bos_token_id": null, "eos_token_ids": [151643, 151645], "add_bos_token": false,
            "chat_template": "{{ messages }}", "fim": {"prefix": 151659, "middle": 151660, "suffix": 151661}}"#,
    );
    assert_eq!(full.eos_token_ids, [151643, 151645]);
    assert_eq!(full.fim.unwrap().middle, 151660);
}

#[test]
fn bad_tokenizers_are_clean_errors() {
    let err = Tokenizer::from_json(b"{\"model\": 3}").err().unwrap();
    assert!(
        err.to_string()
            .starts_with("bad tokenizer: tokenizer section"),
        "{err}"
    );
    let err = TokenizerConfig::from_json(b"[1, 2]").unwrap_err();
    assert!(
        err.to_string().contains("tokenizer_config section"),
        "{err}"
    );
}
