//! The emitted module verifies and is a fixed point of print → parse → print.

use ditto_import::{emit, Arch, ModelConfig};

fn tiny(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        n_layers: 2,
        d_model: 64,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        ffn: 96,
        vocab: 300,
        max_ctx: 256,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        qkv_bias: arch == Arch::Qwen2,
        tied_embeddings: arch == Arch::Qwen2,
    }
}

fn sidecars() -> emit::Sidecars {
    emit::Sidecars {
        weights: "m.weights".into(),
        tokenizer: "m.tokenizer.json".into(),
        tokenizer_config: "m.tokenizer_config.json".into(),
    }
}

#[test]
fn emitted_modules_verify_and_round_trip() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let text = emit::emit_module(&tiny(arch), &sidecars());
        let printed = ditto_import::print_verified(&text, "emitted")
            .unwrap_or_else(|e| panic!("{arch:?}: {e}\n{text}"));
        let context = ditto_ir::create_context().unwrap();
        let again = ditto_ir::parse_module(&context, &printed, "printed").unwrap();
        assert_eq!(format!("{}\n", again.as_operation()), printed);
    }
}

#[test]
fn every_weight_is_named_once_per_use() {
    let config = tiny(Arch::Qwen2);
    let text = emit::emit_module(&config, &sidecars());
    for (name, _) in config.tensors() {
        assert!(
            text.contains(&format!("name = \"{name}\"")),
            "{name} is never used"
        );
    }
}
