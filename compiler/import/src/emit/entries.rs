//! The entry points (`@ditto_decode`, `@ditto_prefill`, `@ditto_lm_head`),
//! the weights they read, and the calls of the layer functions.

use ditto_ir::melior::{
    ir::{r#type::IntegerType, Module, Type},
    Context,
};

use super::{func::*, layer::*, Mode};
use crate::config::ModelConfig;

/// `%w = "ditto.weight"() {name = ...}` for a tensor of the model, built
/// with the dialect's typed builder.
pub(super) fn weight<'c, 'a>(f: &mut Func<'c, 'a>, name: &str, shape: &[usize]) -> Buf<'c, 'a> {
    let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let ty = f.memref(&shape);
    let op = ditto_dialects::ditto::weight(f.context, name, ty, f.location());
    Buf {
        value: f.append_value(op),
        ty,
    }
}

/// The per-layer weights as call operands, in the order of
/// [`ModelConfig::layer_tensors`].
pub(super) fn layer_weights<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    layer: usize,
) -> Vec<Buf<'c, 'a>> {
    cfg.layer_tensors()
        .into_iter()
        .map(|(name, shape)| weight(f, &format!("blk.{layer}.{name}"), &shape))
        .collect()
}

/// The KV caches, as the entries and the layers take them.
#[derive(Clone, Copy)]
pub(super) struct Caches<'c, 'a> {
    pub(super) k: Buf<'c, 'a>,
    pub(super) v: Buf<'c, 'a>,
}

/// `func.call @callee(x, caches, layer, pos, weights...)` for every layer.
pub(super) fn call_layers<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    callee: &str,
    x: Buf<'c, 'a>,
    caches: Caches<'c, 'a>,
) {
    for layer in 0..cfg.n_layers {
        let weights = layer_weights(f, cfg, layer);
        let l = f.index(layer);
        let mut operands = vec![x.value, caches.k.value, caches.v.value, l, f.pos()];
        operands.extend(weights.iter().map(|w| w.value));
        f.call(callee, &operands);
    }
}

/// `(%weights: memref<?xi8>, %k_cache, %v_cache, ...)`: the arguments every
/// entry with a KV cache starts with.
fn cached_entry_arguments<'c>(context: &'c Context, cfg: &ModelConfig) -> Vec<Type<'c>> {
    let cache = cache_type(context, cfg).into();
    vec![blob_type(context).into(), cache, cache]
}

pub(super) fn entry_decode<'c>(context: &'c Context, module: &Module<'c>, cfg: &ModelConfig) {
    let index = Type::index(context);
    let logits_type = memref_of(Type::float32(context), &[cfg.vocab as i64]);
    // (%weights, %k_cache, %v_cache, %token: index, %pos: index, %logits)
    let mut arguments = cached_entry_arguments(context, cfg);
    arguments.extend([index, index, logits_type.into()]);
    let mut f = Func::new(
        context,
        module,
        "ditto_decode",
        Visibility::Entry,
        &arguments,
        Mode::Decode,
    );
    let caches = Caches {
        k: f.buffer_argument(1),
        v: f.buffer_argument(2),
    };
    let token = f.argument(3);
    f.pos = Some(f.argument(4));
    let logits = f.buffer_argument(5);
    let embedding = weight(&mut f, "token_embd.weight", &[cfg.vocab, cfg.d_model]);
    let x = f.buffer(&[cfg.d_model]);
    // x[i] = token_embd[token, i]
    f.generic(&["i"], &[], &[], &[(x, &ix(&["i"]))], |f, _| {
        let i = f.linalg_index(0);
        f.load(embedding, &[token, i])
    });
    call_layers(&mut f, cfg, "decode_layer", x, caches);
    let norm = weight(&mut f, "output_norm.weight", &[cfg.d_model]);
    let xn = f.buffer(&[cfg.d_model]);
    rmsnorm(&mut f, cfg, x, norm, xn);
    let lm_head = if cfg.tied_embeddings {
        embedding
    } else {
        weight(&mut f, "output.weight", &[cfg.vocab, cfg.d_model])
    };
    linear(&mut f, xn, lm_head, None, logits);
    f.finish();
}

pub(super) fn entry_prefill<'c>(context: &'c Context, module: &Module<'c>, cfg: &ModelConfig) {
    let index = Type::index(context);
    let tokens_type = memref_of(IntegerType::new(context, 32).into(), &[dynamic()]);
    let hidden_type = memref_of(Type::float32(context), &[dynamic(), cfg.d_model as i64]);
    // (%weights, %k_cache, %v_cache, %tokens: memref<?xi32>, %pos: index, %hidden)
    let mut arguments = cached_entry_arguments(context, cfg);
    arguments.extend([tokens_type.into(), index, hidden_type.into()]);
    let mut f = Func::new(
        context,
        module,
        "ditto_prefill",
        Visibility::Entry,
        &arguments,
        Mode::Prefill,
    );
    let caches = Caches {
        k: f.buffer_argument(1),
        v: f.buffer_argument(2),
    };
    let tokens = f.buffer_argument(3);
    f.pos = Some(f.argument(4));
    let hidden = f.buffer_argument(5);
    let rows = f.rows_of(tokens);
    f.rows = Some(rows);
    let embedding = weight(&mut f, "token_embd.weight", &[cfg.vocab, cfg.d_model]);
    let x = f.buffer(&[cfg.d_model]);
    // x[t, i] = token_embd[tokens[t], i]
    f.generic(&["t", "i"], &[], &[], &[(x, &ix(&["t", "i"]))], |f, _| {
        let t = f.linalg_index(0);
        let i = f.linalg_index(1);
        let id = f.load(tokens, &[t]);
        let row = f.cast("arith.index_cast", id, Type::index(f.context));
        f.load(embedding, &[row, i])
    });
    call_layers(&mut f, cfg, "prefill_layer", x, caches);
    let norm = weight(&mut f, "output_norm.weight", &[cfg.d_model]);
    rmsnorm(&mut f, cfg, x, norm, hidden);
    f.finish();
}

pub(super) fn entry_lm_head<'c>(context: &'c Context, module: &Module<'c>, cfg: &ModelConfig) {
    let hidden_type = memref_of(Type::float32(context), &[dynamic(), cfg.d_model as i64]);
    let logits_type = memref_of(Type::float32(context), &[dynamic(), cfg.vocab as i64]);
    // (%weights, %hidden, %logits)
    let arguments = [
        blob_type(context).into(),
        hidden_type.into(),
        logits_type.into(),
    ];
    let mut f = Func::new(
        context,
        module,
        "ditto_lm_head",
        Visibility::Entry,
        &arguments,
        Mode::Prefill,
    );
    let lm_head = weight(&mut f, cfg.lm_head_tensor(), &[cfg.vocab, cfg.d_model]);
    let hidden = f.buffer_argument(1);
    let logits = f.buffer_argument(2);
    linear(&mut f, hidden, lm_head, None, logits);
    f.finish();
}
