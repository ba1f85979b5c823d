//! The entry points (`@ditto_decode`, `@ditto_prefill`, `@ditto_lm_head`),
//! the weights they read, and the calls of the layer functions.

use super::{func::*, layer::*, Mode};
use crate::config::ModelConfig;

/// `%w = "ditto.weight"() {name = ...}` for a tensor of the model.
pub(super) fn weight(f: &mut Func, name: &str, shape: &[usize]) -> Buf {
    let ssa = f.fresh("w");
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let ty = format!("memref<{}xf32>", dims.join("x"));
    f.line(&format!(
        "{ssa} = \"ditto.weight\"() {{name = \"{name}\"}} : () -> {ty}"
    ));
    Buf { name: ssa, ty }
}

/// The per-layer weights as block arguments / call operands, in the order
/// of [`ModelConfig::layer_tensors`].
pub(super) fn layer_weights(f: &mut Func, cfg: &ModelConfig, layer: usize) -> Vec<Buf> {
    cfg.layer_tensors(cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.ffn)
        .into_iter()
        .map(|(name, shape)| weight(f, &format!("blk.{layer}.{name}"), &shape))
        .collect()
}

pub(super) fn call_layers(f: &mut Func, cfg: &ModelConfig, callee: &str, x: &Buf) {
    for layer in 0..cfg.n_layers {
        let weights = layer_weights(f, cfg, layer);
        let l = f.index(layer);
        let mut operands = vec![
            x.name.clone(),
            "%k_cache".into(),
            "%v_cache".into(),
            l,
            "%pos".into(),
        ];
        let mut types = vec![
            x.ty.clone(),
            cache_type(cfg),
            cache_type(cfg),
            "index".into(),
            "index".into(),
        ];
        for w in &weights {
            operands.push(w.name.clone());
            types.push(w.ty.clone());
        }
        f.line(&format!(
            "func.call @{callee}({}) : ({}) -> ()",
            operands.join(", "),
            types.join(", ")
        ));
    }
}

pub(super) fn entry_decode(cfg: &ModelConfig) -> String {
    let mut f = Func::new(Mode::Decode);
    let embedding = weight(&mut f, "token_embd.weight", &[cfg.vocab, cfg.d_model]);
    let x = f.buffer("x", &[cfg.d_model]);
    // x[i] = token_embd[token, i]
    f.generic(&["i"], &[], &[], &[(&x, &["i"])], |f, _| {
        let i = f.linalg_index(0);
        let e = f.fresh("v");
        f.line(&format!(
            "  {e} = memref.load {}[%token, {i}] : {}",
            embedding.name, embedding.ty
        ));
        e
    });
    call_layers(&mut f, cfg, "decode_layer", &x);
    let norm = weight(&mut f, "output_norm.weight", &[cfg.d_model]);
    let xn = f.buffer("xn", &[cfg.d_model]);
    rmsnorm(&mut f, cfg, &x, &norm, &xn);
    let lm_head = if cfg.tied_embeddings {
        embedding
    } else {
        weight(&mut f, "output.weight", &[cfg.vocab, cfg.d_model])
    };
    let logits = Buf {
        name: "%logits".into(),
        ty: format!("memref<{}xf32>", cfg.vocab),
    };
    linear(&mut f, &xn, &lm_head, None, &logits);
    f.finish(
        &format!(
            "@ditto_decode(%weights: memref<?xi8>, %k_cache: {0}, %v_cache: {0}, %token: index, %pos: index, %logits: {1})",
            cache_type(cfg),
            logits.ty
        ),
        " attributes {llvm.emit_c_interface}",
    )
}

pub(super) fn entry_prefill(cfg: &ModelConfig) -> String {
    let mut f = Func::new(Mode::Prefill);
    let c0 = f.index(0);
    f.line(&format!("%rows = memref.dim %tokens, {c0} : memref<?xi32>"));
    f.rows = Some("%rows".into());
    let embedding = weight(&mut f, "token_embd.weight", &[cfg.vocab, cfg.d_model]);
    let x = f.buffer("x", &[cfg.d_model]);
    // x[t, i] = token_embd[tokens[t], i]
    f.generic(&["t", "i"], &[], &[], &[(&x, &["t", "i"])], |f, _| {
        let t = f.linalg_index(0);
        let i = f.linalg_index(1);
        let id = f.fresh("id");
        f.line(&format!(
            "  {id} = memref.load %tokens[{t}] : memref<?xi32>"
        ));
        let row = f.fresh("row");
        f.line(&format!("  {row} = arith.index_cast {id} : i32 to index"));
        let e = f.fresh("v");
        f.line(&format!(
            "  {e} = memref.load {}[{row}, {i}] : {}",
            embedding.name, embedding.ty
        ));
        e
    });
    call_layers(&mut f, cfg, "prefill_layer", &x);
    let norm = weight(&mut f, "output_norm.weight", &[cfg.d_model]);
    let hidden = Buf {
        name: "%hidden".into(),
        ty: format!("memref<?x{}xf32>", cfg.d_model),
    };
    rmsnorm(&mut f, cfg, &x, &norm, &hidden);
    f.finish(
        &format!(
            "@ditto_prefill(%weights: memref<?xi8>, %k_cache: {0}, %v_cache: {0}, %tokens: memref<?xi32>, %pos: index, %hidden: {1})",
            cache_type(cfg),
            hidden.ty
        ),
        " attributes {llvm.emit_c_interface}",
    )
}

pub(super) fn entry_lm_head(cfg: &ModelConfig) -> String {
    let mut f = Func::new(Mode::Prefill);
    let lm_head = weight(&mut f, cfg.lm_head_tensor(), &[cfg.vocab, cfg.d_model]);
    let hidden = Buf {
        name: "%hidden".into(),
        ty: format!("memref<?x{}xf32>", cfg.d_model),
    };
    let logits = Buf {
        name: "%logits".into(),
        ty: format!("memref<?x{}xf32>", cfg.vocab),
    };
    linear(&mut f, &hidden, &lm_head, None, &logits);
    f.finish(
        &format!(
            "@ditto_lm_head(%weights: memref<?xi8>, %hidden: {}, %logits: {})",
            hidden.ty, logits.ty
        ),
        " attributes {llvm.emit_c_interface}",
    )
}
