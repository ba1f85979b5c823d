//! Readers bounded by what the file holds: a checkpoint or GGUF file with a
//! wrong, absurd or unsupported value is an error that names the file once
//! and the key or tensor in the file's own words; nothing panics, nothing is
//! sized by a value before it is bounded, and nothing is written.
//!
//! The models are written here byte by byte (a tiny qwen2 or llama: width 8,
//! 2 heads of 4, 1 KV head, FFN 8, 2 layers, 16 tokens), so each test
//! changes exactly one thing of a file that imports.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

const D: usize = 8;
const HEADS: usize = 2;
const KV_HEADS: usize = 1;
const HEAD_DIM: usize = 4;
const FFN: usize = 8;
const LAYERS: usize = 2;
const VOCAB: usize = 16;

/// Canonical tensor names and shapes of the tiny model (row-major).
fn tensors(bias: bool, tied: bool) -> Vec<(String, Vec<usize>)> {
    let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    let mut out = vec![("token_embd.weight".to_string(), vec![VOCAB, D])];
    for l in 0..LAYERS {
        let mut layer = vec![
            ("attn_norm.weight", vec![D]),
            ("attn_q.weight", vec![q, D]),
            ("attn_k.weight", vec![kv, D]),
            ("attn_v.weight", vec![kv, D]),
            ("attn_output.weight", vec![D, q]),
            ("ffn_norm.weight", vec![D]),
            ("ffn_gate.weight", vec![FFN, D]),
            ("ffn_up.weight", vec![FFN, D]),
            ("ffn_down.weight", vec![D, FFN]),
        ];
        if bias {
            layer.extend([
                ("attn_q.bias", vec![q]),
                ("attn_k.bias", vec![kv]),
                ("attn_v.bias", vec![kv]),
            ]);
        }
        out.extend(
            layer
                .into_iter()
                .map(|(name, shape)| (format!("blk.{l}.{name}"), shape)),
        );
    }
    out.push(("output_norm.weight".into(), vec![D]));
    if !tied {
        out.push(("output.weight".into(), vec![VOCAB, D]));
    }
    out
}

fn hf_name(canonical: &str) -> String {
    let fixed = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ];
    if let Some((_, hf)) = fixed.iter().find(|(c, _)| *c == canonical) {
        return hf.to_string();
    }
    let rest = canonical.strip_prefix("blk.").unwrap();
    let (layer, tensor) = rest.split_once('.').unwrap();
    let hf = match tensor {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_q.bias" => "self_attn.q_proj.bias",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_k.bias" => "self_attn.k_proj.bias",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_v.bias" => "self_attn.v_proj.bias",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        other => panic!("{other}"),
    };
    format!("model.layers.{layer}.{hf}")
}

fn values(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ((i % 7) as f32 * 0.01 + 0.5).to_le_bytes())
        .collect()
}

/// A safetensors file of F32 tensors.
fn safetensors(tensors: &[(String, Vec<usize>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend(values(n));
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).unwrap();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

/// The 16 tokens: 14 letters, then `<|endoftext|>` and `<|im_end|>` as
/// added tokens.
fn tokenizer_json(added_id: usize) -> Value {
    let vocab: serde_json::Map<String, Value> = "abcdefghijklmn"
        .chars()
        .enumerate()
        .map(|(i, c)| (c.to_string(), json!(i)))
        .collect();
    let added = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [added(14, "<|endoftext|>"), added(added_id, "<|im_end|>")],
        "normalizer": null,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "a"},
    })
}

fn hf_config() -> Value {
    json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_act": "silu",
        "hidden_size": D,
        "intermediate_size": FFN,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "num_hidden_layers": LAYERS,
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6,
        "rope_scaling": null,
        "rope_theta": 1000000.0,
        "sliding_window": null,
        "use_sliding_window": false,
        "tie_word_embeddings": true,
        "vocab_size": VOCAB,
    })
}

/// A tiny qwen2 checkpoint directory, each file given as JSON or bytes.
struct Hf {
    config: Value,
    tensors: Vec<(String, Vec<usize>)>,
    tokenizer: Vec<u8>,
    tokenizer_config: Value,
    generation_config: Value,
}

impl Hf {
    fn new() -> Hf {
        Hf {
            config: hf_config(),
            tensors: tensors(true, true)
                .into_iter()
                .map(|(n, s)| (hf_name(&n), s))
                .collect(),
            tokenizer: serde_json::to_vec(&tokenizer_json(15)).unwrap(),
            tokenizer_config: json!({"eos_token": "<|im_end|>", "add_bos_token": false}),
            generation_config: json!({"eos_token_id": [15, 14]}),
        }
    }

    fn set(mut self, key: &str, value: Value) -> Hf {
        self.config[key] = value;
        self
    }

    fn write(&self, dir: &Path) -> PathBuf {
        let model = dir.join("hf");
        std::fs::create_dir_all(&model).unwrap();
        let json = |name: &str, v: &Value| {
            std::fs::write(model.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap()
        };
        json("config.json", &self.config);
        json("tokenizer_config.json", &self.tokenizer_config);
        json("generation_config.json", &self.generation_config);
        std::fs::write(model.join("tokenizer.json"), &self.tokenizer).unwrap();
        std::fs::write(model.join("model.safetensors"), safetensors(&self.tensors)).unwrap();
        model
    }
}

/// GGUF metadata values, as far as these tests write them.
#[derive(Clone)]
enum Kv {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

fn gguf_str(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s.as_bytes());
    v
}

/// A tiny qwen2 or llama GGUF file: metadata in order, F32 tensors (dims in
/// GGUF order: the row-major shape reversed).
struct Gguf {
    kv: Vec<(String, Kv)>,
    tensors: Vec<(String, Vec<u64>)>,
}

impl Gguf {
    fn new(arch: &str) -> Gguf {
        let tokens: Vec<String> = "abcdefghijklmn"
            .chars()
            .map(String::from)
            .chain(["<|endoftext|>".into(), "<|im_end|>".into()])
            .collect();
        let a = |k: &str| format!("{arch}.{k}");
        let kv = vec![
            ("general.architecture".into(), Kv::Str(arch.into())),
            (a("block_count"), Kv::U32(LAYERS as u32)),
            (a("context_length"), Kv::U32(64)),
            (a("embedding_length"), Kv::U32(D as u32)),
            (a("feed_forward_length"), Kv::U32(FFN as u32)),
            (a("attention.head_count"), Kv::U32(HEADS as u32)),
            (a("attention.head_count_kv"), Kv::U32(KV_HEADS as u32)),
            (a("rope.freq_base"), Kv::F32(1e6)),
            (a("attention.layer_norm_rms_epsilon"), Kv::F32(1e-6)),
            ("tokenizer.ggml.model".into(), Kv::Str("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Kv::Str("qwen2".into())),
            ("tokenizer.ggml.tokens".into(), Kv::Strs(tokens)),
            (
                "tokenizer.ggml.token_type".into(),
                Kv::I32s([vec![1; 14], vec![3, 3]].concat()),
            ),
            ("tokenizer.ggml.merges".into(), Kv::Strs(vec![])),
            ("tokenizer.ggml.eos_token_id".into(), Kv::U32(15)),
        ];
        let tensors = tensors(arch == "qwen2", arch == "qwen2")
            .into_iter()
            .map(|(name, shape)| (name, shape.iter().rev().map(|&d| d as u64).collect()))
            .collect();
        Gguf { kv, tensors }
    }

    fn set(mut self, key: &str, value: Kv) -> Gguf {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.kv.push((key.into(), value)),
        }
        self
    }

    fn dims(mut self, tensor: &str, dims: &[u64]) -> Gguf {
        let t = self.tensors.iter_mut().find(|(n, _)| n == tensor).unwrap();
        t.1 = dims.to_vec();
        self
    }

    fn add_tensor(mut self, tensor: &str, dims: &[u64]) -> Gguf {
        self.tensors.push((tensor.into(), dims.to_vec()));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kv.len() as u64).to_le_bytes());
        for (key, value) in &self.kv {
            out.extend(gguf_str(key));
            match value {
                Kv::U32(v) => out.extend([&4u32.to_le_bytes()[..], &v.to_le_bytes()].concat()),
                Kv::I32(v) => out.extend([&5u32.to_le_bytes()[..], &v.to_le_bytes()].concat()),
                Kv::U64(v) => out.extend([&10u32.to_le_bytes()[..], &v.to_le_bytes()].concat()),
                Kv::F32(v) => out.extend([&6u32.to_le_bytes()[..], &v.to_le_bytes()].concat()),
                Kv::Str(s) => out.extend([&8u32.to_le_bytes()[..], &gguf_str(s)].concat()),
                Kv::Strs(list) => {
                    out.extend(9u32.to_le_bytes());
                    out.extend(8u32.to_le_bytes());
                    out.extend((list.len() as u64).to_le_bytes());
                    for s in list {
                        out.extend(gguf_str(s));
                    }
                }
                Kv::I32s(list) => {
                    out.extend(9u32.to_le_bytes());
                    out.extend(5u32.to_le_bytes());
                    out.extend((list.len() as u64).to_le_bytes());
                    for v in list {
                        out.extend(v.to_le_bytes());
                    }
                }
            }
        }
        let mut data = Vec::new();
        for (name, dims) in &self.tensors {
            while !data.len().is_multiple_of(32) {
                data.push(0);
            }
            out.extend(gguf_str(name));
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(0u32.to_le_bytes()); // F32
            out.extend((data.len() as u64).to_le_bytes());
            let n: u64 = dims.iter().product();
            data.extend(values(n as usize));
        }
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(data);
        out
    }

    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("model.gguf");
        std::fs::write(&path, self.bytes()).unwrap();
        path
    }
}

/// Imports `source` into `dir/out.mlir` expecting an error: it must name
/// `file` exactly once, at its start, and contain each of `wanted`; no
/// output may be left.
fn refused(source: &Path, file: &Path, wanted: &[&str]) -> String {
    let dir = source.parent().unwrap();
    let out = dir.join("out.mlir");
    let e = match ditto_import::import(source, &out) {
        Ok(_) => panic!("{}: imported without error", source.display()),
        Err(e) => e.to_string(),
    };
    let name = file.display().to_string();
    assert!(
        e.starts_with(&format!("{name}: ")),
        "names another file: {e}"
    );
    assert_eq!(e.matches(&name).count(), 1, "names the file twice: {e}");
    for w in wanted {
        assert!(e.contains(w), "expected {w:?} in: {e}");
    }
    for leftover in ["out.mlir", "out.weights", "out.tokenizer.json"] {
        assert!(!dir.join(leftover).exists(), "{leftover} written");
    }
    e
}

fn hf_refused(hf: Hf, file: &str, wanted: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let model = hf.write(dir.path());
    refused(&model, &model.join(file), wanted)
}

fn config_refused(key: &str, value: Value, wanted: &[&str]) -> String {
    hf_refused(Hf::new().set(key, value), "config.json", wanted)
}

fn gguf_refused(gguf: Gguf, wanted: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = gguf.write(dir.path());
    refused(&path, &path, wanted)
}

#[test]
fn the_tiny_models_import() {
    let dir = tempfile::tempdir().unwrap();
    let model = Hf::new().write(dir.path());
    let imported = ditto_import::import(&model, &dir.path().join("hf.mlir")).unwrap();
    assert_eq!(imported.config.n_layers, LAYERS);
    for arch in ["qwen2", "llama"] {
        let dir = tempfile::tempdir().unwrap();
        let path = Gguf::new(arch).write(dir.path());
        let imported = ditto_import::import(&path, &dir.path().join("g.mlir")).unwrap();
        assert_eq!(imported.config.vocab, VOCAB);
    }
}

#[test]
fn config_values_of_the_wrong_type() {
    config_refused(
        "rope_theta",
        json!("1e6"),
        &["`rope_theta` is the string \"1e6\", expected a number"],
    );
    config_refused(
        "rms_norm_eps",
        json!([1e-6]),
        &["`rms_norm_eps` is an array, expected a number"],
    );
    config_refused(
        "hidden_size",
        json!(8.0),
        &["`hidden_size` is the number 8.0, expected an integer"],
    );
    config_refused(
        "num_attention_heads",
        json!("2"),
        &["`num_attention_heads` is the string \"2\", expected an integer"],
    );
    config_refused(
        "tie_word_embeddings",
        json!("yes"),
        &["`tie_word_embeddings` is the string \"yes\", expected true or false"],
    );
    config_refused(
        "model_type",
        json!(2),
        &["`model_type` is the number 2, expected a string"],
    );
    config_refused(
        "architectures",
        json!("Qwen2ForCausalLM"),
        &["`architectures` is the string \"Qwen2ForCausalLM\", expected a list"],
    );
    let dir = tempfile::tempdir().unwrap();
    let model = Hf::new().write(dir.path());
    std::fs::write(model.join("config.json"), "[1, 2]").unwrap();
    refused(
        &model,
        &model.join("config.json"),
        &["is an array, not a JSON object"],
    );
}

#[test]
fn config_values_out_of_range_name_the_key() {
    for (key, value, wanted) in [
        (
            "max_position_embeddings",
            json!(-1),
            "`max_position_embeddings` = -1 is not between 1 and 16777216",
        ),
        (
            "num_hidden_layers",
            json!(1_000_000_000_000u64),
            "`num_hidden_layers` = 1000000000000 is not between 1 and 4096",
        ),
        (
            "num_hidden_layers",
            json!(u64::MAX),
            "`num_hidden_layers` = 18446744073709551615 is not between 1 and 4096",
        ),
        (
            "hidden_size",
            json!(0),
            "`hidden_size` = 0 is not between 1 and 131072",
        ),
        (
            "vocab_size",
            json!(0),
            "`vocab_size` = 0 is not between 1 and 2147483647",
        ),
        (
            "intermediate_size",
            json!(1u64 << 40),
            "`intermediate_size` = 1099511627776 is not between 1 and 1048576",
        ),
        (
            "num_key_value_heads",
            json!(-2),
            "`num_key_value_heads` = -2 is not between 1 and 4096",
        ),
        (
            "num_key_value_heads",
            json!(3),
            "`num_attention_heads` = 2 is not a multiple of `num_key_value_heads` = 3",
        ),
        ("head_dim", json!(3), "`head_dim` = 3 is odd"),
        (
            "rope_theta",
            json!(-1.0),
            "`rope_theta` = -1 is not a positive number",
        ),
        (
            "rms_norm_eps",
            json!(0),
            "`rms_norm_eps` = 0 is not a positive number below 1",
        ),
        (
            "hidden_size",
            json!(9),
            "`hidden_size` = 9 is not a multiple of `num_attention_heads` = 2 (and there is no \
             `head_dim`)",
        ),
    ] {
        config_refused(key, value, &[wanted]);
    }
}

#[test]
fn a_layer_count_the_tensors_do_not_have() {
    config_refused(
        "num_hidden_layers",
        json!(3),
        &["`num_hidden_layers` = 3, but there is no tensor \
             `model.layers.2.input_layernorm.weight` (the checkpoint's tensors are of 2 layers)"],
    );
    // 4096 layers (the bound): refused by the tensors, not by memory.
    config_refused(
        "num_hidden_layers",
        json!(4096),
        &["no tensor `model.layers.4095.input_layernorm.weight`"],
    );
    config_refused(
        "num_hidden_layers",
        json!(1),
        &[
            "tensor `model.layers.1.",
            "is of layer 1, but `num_hidden_layers` = 1",
        ],
    );
}

#[test]
fn unsupported_features_are_named() {
    config_refused(
        "hidden_act",
        json!("gelu"),
        &["`hidden_act` = `gelu` is not supported"],
    );
    config_refused(
        "rope_scaling",
        json!({"type": "linear", "factor": 2.0}),
        &["`rope_scaling` = {", "RoPE scaling is not supported"],
    );
    config_refused(
        "use_sliding_window",
        json!(true),
        &["`use_sliding_window` = true: sliding-window attention is not supported"],
    );
    config_refused(
        "architectures",
        json!(["Qwen2ForSequenceClassification"]),
        &["unsupported architecture `Qwen2ForSequenceClassification` (architectures)"],
    );
    config_refused(
        "model_type",
        json!("gpt_neox"),
        &["unknown architecture `gpt_neox` (model_type)"],
    );
    let mut hf = Hf::new();
    hf.config.as_object_mut().unwrap().remove("model_type");
    hf_refused(hf, "config.json", &["missing `model_type`"]);
    // A llama block with MLP biases, or with an output-projection bias.
    let mut hf = Hf::new()
        .set("model_type", json!("llama"))
        .set("architectures", json!(["LlamaForCausalLM"]));
    hf.tensors.retain(|(n, _)| !n.ends_with(".bias"));
    let llama = |hf: &Hf| Hf {
        config: hf.config.clone(),
        tensors: hf.tensors.clone(),
        tokenizer: hf.tokenizer.clone(),
        tokenizer_config: hf.tokenizer_config.clone(),
        generation_config: hf.generation_config.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let model = llama(&hf).write(dir.path());
    ditto_import::import(&model, &dir.path().join("ok.mlir")).unwrap();
    hf_refused(
        llama(&hf).set("mlp_bias", json!(true)),
        "config.json",
        &["`mlp_bias` = true: MLP biases are not supported"],
    );
    let mut biased = llama(&hf).set("attention_bias", json!(true));
    biased.tensors.extend(
        tensors(true, true)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".bias"))
            .map(|(n, s)| (hf_name(&n), s)),
    );
    biased
        .tensors
        .push(("model.layers.0.self_attn.o_proj.bias".into(), vec![D]));
    hf_refused(
        biased,
        "config.json",
        &["tensor `model.layers.0.self_attn.o_proj.bias` is not one of a llama block's"],
    );
}

#[test]
fn a_tokenizer_json_that_is_not_a_tokenizer() {
    for text in [
        &b"{\"hello\": 1}"[..],
        b"[]",
        b"not json",
        b"{\"model\": {\"vocab\": 3}}",
    ] {
        let mut hf = Hf::new();
        hf.tokenizer = text.to_vec();
        hf_refused(hf, "tokenizer.json", &["not a tokenizer"]);
    }
}

#[test]
fn token_ids_beyond_the_vocabulary() {
    let mut hf = Hf::new();
    hf.tokenizer = serde_json::to_vec(&tokenizer_json(16)).unwrap();
    hf.generation_config = json!({"eos_token_id": 14});
    hf_refused(
        hf,
        "tokenizer.json",
        &["added token `<|im_end|>` has id 16, outside the model's vocabulary of 16"],
    );
    // An id the library would not give it: numbered after the vocabulary.
    let mut hf = Hf::new();
    let mut json = tokenizer_json(15);
    json["added_tokens"][1]["id"] = json!(13);
    hf.tokenizer = serde_json::to_vec(&json).unwrap();
    hf_refused(
        hf,
        "tokenizer.json",
        &["added token `<|im_end|>` has id 13, but the tokenizer gives it 15"],
    );
    for id in [json!(16), json!([14, 99]), json!("15"), json!(-1)] {
        let mut hf = Hf::new();
        hf.generation_config = json!({ "eos_token_id": id });
        hf_refused(
            hf,
            "generation_config.json",
            &[
                "`eos_token_id` holds",
                "not a token id below the model's vocabulary of 16",
            ],
        );
    }
    let mut hf = Hf::new();
    hf.tokenizer_config = json!({"eos_token": {"content": "<|im_start|>"}});
    hf_refused(
        hf,
        "tokenizer_config.json",
        &["`eos_token` is `<|im_start|>`, which is not a token of tokenizer.json"],
    );
    let mut hf = Hf::new();
    hf.tokenizer_config = json!({"add_bos_token": "no"});
    hf_refused(
        hf,
        "tokenizer_config.json",
        &["`add_bos_token` is the string \"no\", expected true or false"],
    );
}

#[test]
fn gguf_values_out_of_range_name_the_key() {
    for (key, value, wanted) in [
        (
            "qwen2.block_count",
            Kv::U32(u32::MAX),
            "`qwen2.block_count` = 4294967295 is not between 1 and 4096",
        ),
        (
            "qwen2.block_count",
            Kv::U64(u64::MAX),
            "`qwen2.block_count` = 18446744073709551615 is not between 1 and 4096",
        ),
        (
            "qwen2.context_length",
            Kv::I32(-1),
            "`qwen2.context_length` = -1 is not between 1 and 16777216",
        ),
        (
            "qwen2.embedding_length",
            Kv::U32(0),
            "`qwen2.embedding_length` = 0 is not between 1 and 131072",
        ),
        (
            "qwen2.rope.freq_base",
            Kv::Str("1e6".into()),
            "`qwen2.rope.freq_base` has type string, expected a number",
        ),
        (
            "qwen2.attention.head_count",
            Kv::F32(2.0),
            "`qwen2.attention.head_count` has type f32, expected an integer",
        ),
        (
            "qwen2.attention.head_count_kv",
            Kv::U32(3),
            "`qwen2.attention.head_count` = 2 is not a multiple of \
             `qwen2.attention.head_count_kv` = 3",
        ),
        (
            "qwen2.attention.layer_norm_rms_epsilon",
            Kv::F32(-1.0),
            "`qwen2.attention.layer_norm_rms_epsilon` = -1 is not a positive number below 1",
        ),
        (
            "qwen2.vocab_size",
            Kv::U32(17),
            "`qwen2.vocab_size` = 17, but tensor `token_embd.weight` has 16 rows",
        ),
    ] {
        gguf_refused(Gguf::new("qwen2").set(key, value), &[wanted]);
    }
}

#[test]
fn gguf_layer_counts_and_shapes_the_tensors_do_not_have() {
    gguf_refused(
        Gguf::new("qwen2").set("qwen2.block_count", Kv::U32(3)),
        &[
            "`qwen2.block_count` = 3, but there is no tensor `blk.2.attn_norm.weight` (the \
           file's tensors are of 2 layers)",
        ],
    );
    gguf_refused(
        Gguf::new("qwen2").set("qwen2.block_count", Kv::U32(1)),
        &[
            "tensor `blk.1.",
            "is of layer 1, but `qwen2.block_count` = 1",
        ],
    );
    // A 0-dimensional embedding (its first extent was read as the
    // vocabulary: a panic).
    gguf_refused(
        Gguf::new("qwen2").dims("token_embd.weight", &[]),
        &["tensor `token_embd.weight` has 0 dimensions"],
    );
    gguf_refused(
        Gguf::new("qwen2").dims("token_embd.weight", &[(VOCAB * D) as u64]),
        &["tensor `token_embd.weight` has shape [128], expected [vocabulary of 1 to"],
    );
    gguf_refused(
        Gguf::new("qwen2").dims("token_embd.weight", &[4, 32]),
        &["tensor `token_embd.weight` has shape [32, 4], expected"],
    );
    gguf_refused(
        Gguf::new("qwen2").dims("blk.1.ffn_up.weight", &[D as u64, 4]),
        &["tensor `blk.1.ffn_up.weight` has shape [4, 8], expected [8, 8] from the metadata"],
    );
    // A file cut short: named once (it used to be named twice).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let bytes = Gguf::new("qwen2").bytes();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    refused(&path, &path, &["data [", "lies outside the file"]);
}

#[test]
fn gguf_unsupported_features_are_named() {
    gguf_refused(
        Gguf::new("qwen2").set("general.architecture", Kv::Str("gemma".into())),
        &["unknown architecture `gemma` (general.architecture)"],
    );
    gguf_refused(
        Gguf::new("qwen2").set("qwen2.rope.scaling.type", Kv::Str("yarn".into())),
        &["`qwen2.rope.scaling.type` = `yarn`: RoPE scaling is not supported"],
    );
    gguf_refused(
        Gguf::new("llama").set("llama.expert_count", Kv::U32(8)),
        &["`llama.expert_count` = 8: mixtures of experts are not supported"],
    );
    gguf_refused(
        Gguf::new("llama").add_tensor("rope_freqs.weight", &[2]),
        &["tensor `rope_freqs.weight`", "is not supported"],
    );
    gguf_refused(
        Gguf::new("llama").set("llama.rope.dimension_count", Kv::U32(2)),
        &["`llama.rope.dimension_count` = 2 differs from the head width 4"],
    );
    gguf_refused(
        Gguf::new("qwen2").add_tensor("blk.0.attn_output.bias", &[D as u64]),
        &["tensor `blk.0.attn_output.bias` is not one of a qwen2 block's"],
    );
}

#[test]
fn gguf_token_ids_beyond_the_vocabulary() {
    let mut tokens: Vec<String> = "abcdefghijklmnop".chars().map(String::from).collect();
    tokens.extend(["<|endoftext|>".into(), "<|im_end|>".into()]);
    gguf_refused(
        Gguf::new("qwen2")
            .set("tokenizer.ggml.tokens", Kv::Strs(tokens))
            .set("tokenizer.ggml.token_type", Kv::I32s(vec![1; 18])),
        &["`tokenizer.ggml.tokens` has 18 tokens, but tensor `token_embd.weight` has only 16 rows"],
    );
    gguf_refused(
        Gguf::new("qwen2").set("tokenizer.ggml.bos_token_id", Kv::U32(16)),
        &["tokenizer.ggml.bos_token_id = 16 is outside the vocabulary of 16 tokens"],
    );
    gguf_refused(
        Gguf::new("qwen2").set("tokenizer.ggml.merges", Kv::Strs(vec!["a z".into()])),
        &["tokenizer.ggml.merges[0] \"a z\" uses \"z\", which is not in the vocabulary"],
    );
}

/// Every reader step of a GGUF import but the module: metadata, tensors
/// (each produced), tokenizer.
fn read_gguf(path: &Path) -> Result<(), ditto_import::ImportError> {
    use ditto_import::gguf;
    let file = ditto_gguf::GgufFile::open(path)?;
    let config = gguf::read_config(&file)?;
    gguf::duplicate_head(&file)?;
    for t in gguf::tensors(&file, &config, "token_embd.weight")? {
        (t.produce)()?;
    }
    ditto_gguf::tokenizer_json(&file)?;
    gguf::tokenizer_config(&file, &config)?;
    Ok(())
}

/// The same for a checkpoint directory.
fn read_hf(dir: &Path) -> Result<(), ditto_import::ImportError> {
    let checkpoint = ditto_import::hf::Checkpoint::open(dir)?;
    checkpoint.tokenizer_config()?;
    for t in checkpoint.tensors()? {
        (t.produce)()?;
    }
    Ok(())
}

/// A small xorshift generator, so that the corruption is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn corrupted_gguf_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let name = path.display().to_string();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for arch in ["qwen2", "llama"] {
        let original = Gguf::new(arch).bytes();
        std::fs::write(&path, &original).unwrap();
        read_gguf(&path).unwrap();
        // The header, metadata and tensor directory are the first ~1300
        // bytes: corrupt there mostly.
        let hot = original.len().min(1400);
        for _ in 0..1500 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.next() % 3 {
                let at = if rng.next().is_multiple_of(5) {
                    rng.next() as usize % bytes.len()
                } else {
                    rng.next() as usize % hot
                };
                bytes[at] = match rng.next() % 4 {
                    0 => 0xFF,
                    1 => 0,
                    _ => rng.next() as u8,
                };
            }
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = read_gguf(&path) {
                let e = e.to_string();
                assert!(e.starts_with(&name), "{e}");
                assert_eq!(e.matches(&name).count(), 1, "{e}");
            }
        }
    }
}

#[test]
fn every_config_key_with_every_kind_of_wrong_value() {
    let dir = tempfile::tempdir().unwrap();
    let model = Hf::new().write(dir.path());
    let config_path = model.join("config.json");
    let name = config_path.display().to_string();
    read_hf(&model).unwrap();
    let keys: Vec<String> = hf_config().as_object().unwrap().keys().cloned().collect();
    let wrong = [
        json!(null),
        json!("x"),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(1_000_000_000_000u64),
        json!(u64::MAX),
        json!(-1e300),
        json!([]),
        json!({}),
        json!(true),
    ];
    let mut accepted = Vec::new();
    for key in keys.iter().chain([&"head_dim".to_string()]) {
        for value in &wrong {
            let mut config = hf_config();
            config[key.as_str()] = value.clone();
            std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
            match read_hf(&model) {
                Ok(()) => accepted.push(format!("{key} = {value}")),
                Err(e) => {
                    let e = e.to_string();
                    assert_eq!(e.matches(&model.display().to_string()).count(), 1, "{e}");
                    // config.json's own errors name their key.
                    if e.starts_with(&name) {
                        assert!(
                            e.contains(&format!("`{key}`")) || e.contains("architecture"),
                            "{key} = {value}: {e}"
                        );
                    }
                }
            }
        }
    }
    // What is left is what a model may say: a list of classes that names
    // none (model_type decides), any positive RoPE base, the window of a
    // sliding window that is off, and `null` where transformers takes it
    // for "not set"; `tie_word_embeddings` = true is this model's own value.
    let sliding = ["null", "\"x\"", "-1", "0", "1.5", "1000000000000"]
        .into_iter()
        .chain(["18446744073709551615", "-1e+300", "[]", "{}", "true"])
        .map(|v| format!("sliding_window = {v}"));
    let expected: Vec<String> = [
        "architectures = null",
        "architectures = []",
        "rope_scaling = null",
        "rope_theta = 1.5",
        "rope_theta = 1000000000000",
        "rope_theta = 18446744073709551615",
    ]
    .into_iter()
    .map(String::from)
    .chain(sliding)
    .chain(
        [
            "tie_word_embeddings = true",
            "use_sliding_window = null",
            "head_dim = null",
        ]
        .map(String::from),
    )
    .collect();
    assert_eq!(accepted, expected);
}

#[test]
fn every_gguf_key_with_every_kind_of_wrong_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let name = path.display().to_string();
    let keys: Vec<String> = Gguf::new("qwen2").kv.into_iter().map(|(k, _)| k).collect();
    let wrong = [
        Kv::Str("x".into()),
        Kv::I32(-1),
        Kv::U32(0),
        Kv::U64(u64::MAX),
        Kv::F32(1.5),
        Kv::Strs(vec![]),
    ];
    let mut accepted = Vec::new();
    for key in &keys {
        for (i, value) in wrong.iter().enumerate() {
            Gguf::new("qwen2").set(key, value.clone()).write(dir.path());
            match read_gguf(&path) {
                Ok(()) => accepted.push(format!("{key} #{i}")),
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.starts_with(&name), "{e}");
                    assert_eq!(e.matches(&name).count(), 1, "{e}");
                    assert!(e.contains(key.as_str()), "{key} #{i}: {e}");
                }
            }
        }
    }
    // What is left is what a model may say: any positive RoPE base, no
    // merges, token 0 as the end of text.
    assert_eq!(
        accepted,
        [
            "qwen2.rope.freq_base #3",
            "qwen2.rope.freq_base #4",
            "tokenizer.ggml.merges #5",
            "tokenizer.ggml.eos_token_id #2"
        ]
    );
}

#[test]
fn absent_and_null_keys_are_transformers_defaults_or_errors() {
    // Keys transformers defaults when absent: the tensors decide, and the
    // message says which default shaped them.
    let mut hf = Hf::new();
    hf.config
        .as_object_mut()
        .unwrap()
        .remove("num_key_value_heads");
    hf_refused(
        hf,
        "model.safetensors",
        &[
            "tensor `model.layers.0.self_attn.k_proj.weight` has shape [4, 8], expected [8, 8] \
             from config.json (no `num_key_value_heads`: taken as `num_attention_heads` = 2; \
             no `head_dim`: taken as `hidden_size` / `num_attention_heads` = 4)",
        ],
    );
    hf_refused(
        Hf::new().set("num_key_value_heads", Value::Null),
        "model.safetensors",
        &["no `num_key_value_heads`: taken as `num_attention_heads` = 2"],
    );
    // A null that transformers would fail on.
    for (key, wanted) in [
        ("rope_theta", "`rope_theta` is null, expected a number"),
        ("rms_norm_eps", "`rms_norm_eps` is null, expected a number"),
        (
            "max_position_embeddings",
            "`max_position_embeddings` is null, expected an integer",
        ),
        ("hidden_act", "`hidden_act` is null, expected a string"),
        (
            "num_hidden_layers",
            "`num_hidden_layers` is null, expected an integer",
        ),
    ] {
        config_refused(key, Value::Null, &[wanted]);
    }
    // An absent context is the class's default.
    let dir = tempfile::tempdir().unwrap();
    let mut hf = Hf::new();
    hf.config
        .as_object_mut()
        .unwrap()
        .remove("max_position_embeddings");
    let model = hf.write(dir.path());
    let imported = ditto_import::import(&model, &dir.path().join("m.mlir")).unwrap();
    assert_eq!(imported.config.max_ctx, 32768);
}

#[test]
fn json_errors_show_where() {
    // Python writes an infinite float as `Infinity`, which is not JSON.
    let dir = tempfile::tempdir().unwrap();
    let model = Hf::new().write(dir.path());
    let text = serde_json::to_string_pretty(&hf_config())
        .unwrap()
        .replace("\"rope_theta\": 1000000.0", "\"rope_theta\": Infinity");
    std::fs::write(model.join("config.json"), text).unwrap();
    refused(
        &model,
        &model.join("config.json"),
        &[
            "invalid JSON: expected value at line",
            "(here: `\"rope_theta\": I`)",
        ],
    );
    let mut hf = Hf::new();
    hf.tokenizer_config = json!({"bos_token_id": "x"});
    hf_refused(
        hf,
        "tokenizer_config.json",
        &["`bos_token_id` holds the string \"x\", not a token id below the model's vocabulary"],
    );
}
