//! The emitted module verifies, is a fixed point of print → parse → print,
//! reads every weight, and prints as snapshotted.

use ditto_import::{emit, Arch, ModelConfig};
use ditto_ir::melior::ir::{
    attribute::StringAttribute, block::BlockLike, operation::OperationLike, RegionLike,
};

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
        let printed = ditto_import::emit_verified(&tiny(arch), &sidecars(), "emitted")
            .unwrap_or_else(|e| panic!("{arch:?}: {e}"));
        let context = ditto_ir::create_context().unwrap();
        let again = ditto_ir::parse_module(&context, &printed, "printed").unwrap();
        assert_eq!(format!("{}\n", again.as_operation()), printed);
    }
}

/// The `name`s of the `ditto.weight` ops under `op`, in order.
fn weight_names<'c: 'a, 'a>(op: &impl OperationLike<'c, 'a>, names: &mut Vec<String>) {
    if op.name().as_string_ref().as_str() == Ok("ditto.weight") {
        let name = op.attribute("name").expect("a weight has a name");
        let name = StringAttribute::try_from(name).expect("a string name");
        names.push(ditto_ir::string_value(name));
    }
    for region in op.regions() {
        let mut block = region.first_block();
        while let Some(b) = block {
            let mut inner = b.first_operation();
            while let Some(o) = inner {
                weight_names(&o, names);
                inner = o.next_in_block();
            }
            block = b.next_in_region();
        }
    }
}

#[test]
fn every_weight_is_read() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let config = tiny(arch);
        let printed = ditto_import::emit_verified(&config, &sidecars(), "emitted").unwrap();
        let context = ditto_ir::create_context().unwrap();
        let module = ditto_ir::parse_module(&context, &printed, "printed").unwrap();
        let mut names = Vec::new();
        weight_names(&module.as_operation(), &mut names);
        for (name, _) in config.tensors() {
            assert!(names.contains(&name), "{arch:?}: {name} is never read");
        }
        for name in &names {
            assert!(
                config.tensors().iter().any(|(n, _)| n == name),
                "{arch:?}: {name} is not a tensor of the model"
            );
        }
    }
}

/// The smallest model with every feature: two heads sharing one KV head, a
/// bias (qwen2) or an untied LM head (llama).
fn small(arch: Arch) -> ModelConfig {
    ModelConfig {
        n_layers: 1,
        d_model: 8,
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 4,
        ffn: 12,
        vocab: 10,
        max_ctx: 16,
        ..tiny(arch)
    }
}

#[test]
fn emitted_modules_print_as_snapshotted() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let printed = ditto_import::emit_verified(&small(arch), &sidecars(), "emitted").unwrap();
        insta::assert_snapshot!(arch.name(), printed);
    }
}
