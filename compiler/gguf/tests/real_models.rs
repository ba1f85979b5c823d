//! The real target models (run explicitly, ideally in release mode):
//!
//!     CARGO_TARGET_DIR=/work/target-gguf cargo test --release -p ditto-gguf \
//!         --test real_models -- --ignored --nocapture
//!
//! Files are looked for in ~/.cache/dittoc (or $DITTOC_MODEL_DIR). Every
//! tensor is dequantized and its f32 bytes hashed; the hashes and sampled
//! values come from gguf-py (tests/fixtures/sample_real_models.py).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::fixture;
use ditto_gguf::{tokenizer_config, tokenizer_json, GgmlType, GgufFile};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn model_path(file: &str) -> PathBuf {
    let dir = std::env::var_os("DITTOC_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/dittoc"));
    let p = dir.join(file);
    assert!(p.exists(), "model file {} not found", p.display());
    p
}

/// Dequantizes every tensor, compares it with gguf-py's values, and returns
/// the seconds spent dequantizing and the number of f32 values produced.
fn check_all_tensors(f: &GgufFile, reference: &str) -> (f64, usize) {
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(fixture(reference)).unwrap()).unwrap();
    let exp = exp["tensors"].as_object().unwrap();
    assert_eq!(f.tensors().len(), exp.len());
    let mut seconds = 0.0;
    let mut total = 0;
    for t in f.tensors() {
        let e = &exp[&t.name];
        assert_eq!(
            t.ggml_type.name(),
            e["type"].as_str().unwrap(),
            "{}",
            t.name
        );
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.shape(), shape, "{}", t.name);
        let start = Instant::now();
        let v = f.dequantize(t).unwrap();
        seconds += start.elapsed().as_secs_f64();
        total += v.len();
        if let Some(samples) = e.get("samples") {
            for s in samples.as_array().unwrap() {
                let i = s[0].as_u64().unwrap() as usize;
                let want = s[1].as_f64().unwrap() as f32;
                assert_eq!(v[i].to_bits(), want.to_bits(), "{}[{i}]", t.name);
            }
        }
        let mut h = Sha256::new();
        for x in &v {
            h.update(x.to_le_bytes());
        }
        let hex: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            e["sha256_16"].as_str().unwrap(),
            "{}: values differ from gguf-py",
            t.name
        );
    }
    (seconds, total)
}

#[test]
#[ignore = "needs ~/.cache/dittoc/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"]
fn qwen2_5_coder_0_5b_q4_k_m() {
    let f = GgufFile::open(model_path("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")).unwrap();
    assert_eq!(f.architecture().unwrap(), "qwen2");
    assert_eq!(f.arch_u32("block_count").unwrap(), 24);
    assert_eq!(f.arch_u32("embedding_length").unwrap(), 896);
    assert_eq!(f.arch_u32("feed_forward_length").unwrap(), 4864);
    assert_eq!(f.arch_u32("attention.head_count").unwrap(), 14);
    assert_eq!(f.arch_u32("attention.head_count_kv").unwrap(), 2);
    assert_eq!(f.get_f32("qwen2.rope.freq_base").unwrap(), 1e6);
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        151936
    );
    assert_eq!(
        f.get_tensor("token_embd.weight").unwrap().shape(),
        [151936, 896]
    );
    assert_eq!(f.get_tensor("blk.0.attn_q.bias").unwrap().shape(), [896]);
    assert_eq!(
        f.get_tensor("blk.23.ffn_down.weight").unwrap().shape(),
        [896, 4864]
    );
    let mut types: Vec<GgmlType> = f.tensors().iter().map(|t| t.ggml_type).collect();
    types.sort_by_key(|t| t.id());
    types.dedup();
    use GgmlType::*;
    assert_eq!(types, [F32, Q5_0, Q8_0, Q4_K, Q6_K]);

    let (secs, n) = check_all_tensors(&f, "real_qwen2.5-coder-0.5b-instruct-q4_k_m.json");
    eprintln!(
        "qwen2.5-coder-0.5b Q4_K_M: dequantized {} tensors, {n} values ({:.2} GB f32) in {secs:.2} s ({} rayon threads)",
        f.tensors().len(),
        n as f64 * 4e-9,
        rayon::current_num_threads()
    );

    let cfg = tokenizer_config(&f).unwrap();
    assert_eq!(cfg.bos_token_id, Some(151643));
    assert!(
        cfg.eos_token_ids.contains(&151645),
        "{:?}",
        cfg.eos_token_ids
    ); // <|im_end|>
    assert!(
        cfg.eos_token_ids.contains(&151643),
        "{:?}",
        cfg.eos_token_ids
    ); // <|endoftext|>
    assert!(!cfg.add_bos_token);
    assert!(cfg.chat_template.unwrap().contains("<|im_start|>"));
    let fim = cfg.fim.unwrap();
    assert_eq!(
        (fim.prefix, fim.middle, fim.suffix),
        (151659, 151660, 151661)
    );

    let json = tokenizer_json(&f).unwrap();
    let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
    assert_eq!(tok.get_vocab_size(true), 151936);
    check_tokenizer(&tok, "qwen2.5-coder-0.5b-instruct-q4_k_m");
}

#[test]
#[ignore = "needs ~/.cache/dittoc/SmolLM2-135M-Instruct.Q4_1.gguf"]
fn smollm2_135m_q4_1() {
    let f = GgufFile::open(model_path("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.arch_u32("block_count").unwrap(), 30);
    assert_eq!(f.arch_u32("attention.head_count").unwrap(), 9);
    assert_eq!(f.arch_u32("attention.head_count_kv").unwrap(), 3);
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), "smollm");

    let (secs, n) = check_all_tensors(&f, "real_smollm2-135m-instruct-q4_1.json");
    eprintln!(
        "SmolLM2-135M Q4_1: dequantized {} tensors, {n} values in {secs:.2} s",
        f.tensors().len()
    );

    let cfg = tokenizer_config(&f).unwrap();
    assert_eq!(cfg.fim, None);
    let json = tokenizer_json(&f).unwrap();
    let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
    assert!(cfg
        .eos_token_ids
        .contains(&tok.token_to_id("<|im_end|>").unwrap()));
    check_tokenizer(&tok, "smollm2-135m-instruct-q4_1");
}

/// Compares encodings with reference ids stored in
/// `real_<model>.tokens.json`, when that file exists.
fn check_tokenizer(tok: &tokenizers::Tokenizer, model: &str) {
    let path = fixture(&format!("real_{model}.tokens.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("no {}: tokenizer ids not compared", path.display());
        return;
    };
    let exp: Json = serde_json::from_str(&text).unwrap();
    for case in exp["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, false).unwrap();
        assert_eq!(got.get_ids(), &want[..], "{model}: {text:?}");
        assert_eq!(
            tok.decode(&want, false).unwrap(),
            case["decoded"].as_str().unwrap()
        );
    }
}
