//! A fake "generated model": three `extern "C"` functions with the ABI of
//! contracts.md §3 and a rule simple enough to predict by hand.
//!
//! The token at position p is stored in the caches as `token + 1` (K of
//! every layer at [l, p, 0, 0], V at [l, p, 0, 1]); the next token after
//! `token` at `pos` is `(token + token_at(pos - 1) + 1) % vocab` (the one
//! before position 0 counts as 0), read back from the cache. Logits are
//! `-((j - next) mod vocab)`: 0 at `next`, below elsewhere. Prefill writes
//! hidden rows `[token, previous, 0, 0]` and the LM head applies the rule.
//!
//! The descriptors are read through this file's own `#[repr(C)]` struct, and
//! any deviation from the contract (layout, shapes, strides, weights) is
//! counted in `FAULTS`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use ditto_rt::model::EntryPoints;

pub const N_LAYERS: usize = 2;
pub const D_MODEL: usize = 4;
pub const N_KV_HEADS: usize = 1;
pub const HEAD_DIM: usize = 2;
/// The weights section the fake model expects.
pub const WEIGHTS: &[u8] = b"FAKEWTS!0123456789abcdef";

pub static FAULTS: AtomicUsize = AtomicUsize::new(0);

#[repr(C)]
pub struct Desc<T, const N: usize> {
    allocated: *mut T,
    aligned: *mut T,
    offset: i64,
    sizes: [i64; N],
    strides: [i64; N],
}

fn fault(what: &str) {
    eprintln!("fake model: {what}");
    FAULTS.fetch_add(1, Ordering::SeqCst);
}

unsafe fn check<T, const N: usize>(d: *const Desc<T, N>, name: &str) -> &'static Desc<T, N> {
    let d = &*d;
    let mut stride = 1;
    for i in (0..N).rev() {
        if d.strides[i] != stride {
            fault(&format!(
                "{name}: strides {:?} for sizes {:?}",
                d.strides, d.sizes
            ));
        }
        stride *= d.sizes[i];
    }
    if d.offset != 0 || d.aligned.is_null() || d.allocated != d.aligned {
        fault(&format!("{name}: bad base/offset"));
    }
    d
}

unsafe fn check_weights(w: *const Desc<u8, 1>) {
    let w = check(w, "weights");
    let bytes = std::slice::from_raw_parts(w.aligned, w.sizes[0] as usize);
    if !bytes.starts_with(&WEIGHTS[..8]) {
        fault("weights: not the payload's weights section");
    }
}

unsafe fn check_caches(
    k: *const Desc<f32, 4>,
    v: *const Desc<f32, 4>,
) -> (&'static Desc<f32, 4>, &'static Desc<f32, 4>) {
    let (k, v) = (check(k, "k_cache"), check(v, "v_cache"));
    let want = [
        N_LAYERS as i64,
        k.sizes[1],
        N_KV_HEADS as i64,
        HEAD_DIM as i64,
    ];
    if k.sizes != want || v.sizes != want {
        fault(&format!("cache sizes {:?} / {:?}", k.sizes, v.sizes));
    }
    (k, v)
}

unsafe fn cell(c: &Desc<f32, 4>, layer: usize, pos: i64, dim: usize) -> *mut f32 {
    c.aligned.offset(
        layer as isize * c.strides[0] as isize
            + pos as isize * c.strides[1] as isize
            + dim as isize,
    )
}

unsafe fn store(k: &Desc<f32, 4>, v: &Desc<f32, 4>, pos: i64, token: i64) {
    if pos < 0 || pos >= k.sizes[1] {
        fault(&format!("position {pos} outside the cache"));
        return;
    }
    for layer in 0..N_LAYERS {
        *cell(k, layer, pos, 0) = (token + 1) as f32;
        *cell(v, layer, pos, 1) = (token + 1) as f32;
    }
}

unsafe fn previous(k: &Desc<f32, 4>, v: &Desc<f32, 4>, pos: i64) -> i64 {
    if pos == 0 {
        return 0;
    }
    let (kk, vv) = (*cell(k, N_LAYERS - 1, pos - 1, 0), *cell(v, 0, pos - 1, 1));
    if kk != vv || kk == 0.0 {
        fault(&format!("position {} not in the cache", pos - 1));
    }
    kk as i64 - 1
}

pub fn next_token(token: i64, previous: i64, vocab: i64) -> i64 {
    (token + previous + 1) % vocab
}

pub fn logit(j: usize, next: usize, vocab: usize) -> f32 {
    -(((j + vocab - next) % vocab) as f32)
}

unsafe fn write_logits(row: *mut f32, vocab: usize, next: i64) {
    for j in 0..vocab {
        *row.add(j) = logit(j, next as usize, vocab);
    }
}

pub unsafe extern "C" fn fake_decode(
    w: *mut Desc<u8, 1>,
    k: *mut Desc<f32, 4>,
    v: *mut Desc<f32, 4>,
    token: i64,
    pos: i64,
    logits: *mut Desc<f32, 1>,
) {
    check_weights(w);
    let (k, v) = check_caches(k, v);
    let logits = check(logits, "logits");
    let vocab = logits.sizes[0];
    let prev = previous(k, v, pos);
    store(k, v, pos, token);
    write_logits(
        logits.aligned,
        vocab as usize,
        next_token(token, prev, vocab),
    );
}

pub unsafe extern "C" fn fake_prefill(
    w: *mut Desc<u8, 1>,
    k: *mut Desc<f32, 4>,
    v: *mut Desc<f32, 4>,
    tokens: *mut Desc<i32, 1>,
    pos: i64,
    hidden: *mut Desc<f32, 2>,
) {
    check_weights(w);
    let (k, v) = check_caches(k, v);
    let tokens = check(tokens, "tokens");
    let hidden = check(hidden, "hidden");
    if hidden.sizes != [tokens.sizes[0], D_MODEL as i64] {
        fault(&format!(
            "hidden sizes {:?} for {} tokens",
            hidden.sizes, tokens.sizes[0]
        ));
    }
    for t in 0..tokens.sizes[0] {
        let token = *tokens.aligned.offset(t as isize) as i64;
        let prev = previous(k, v, pos + t);
        store(k, v, pos + t, token);
        let row = hidden.aligned.offset((t * hidden.strides[0]) as isize);
        *row = token as f32;
        *row.add(1) = prev as f32;
        *row.add(2) = 0.0;
        *row.add(3) = 0.0;
    }
}

pub unsafe extern "C" fn fake_lm_head(
    w: *mut Desc<u8, 1>,
    hidden: *mut Desc<f32, 2>,
    logits: *mut Desc<f32, 2>,
) {
    check_weights(w);
    let hidden = check(hidden, "hidden");
    let logits = check(logits, "logits");
    if hidden.sizes[0] != logits.sizes[0] || hidden.sizes[1] != D_MODEL as i64 {
        fault(&format!(
            "lm_head sizes {:?} -> {:?}",
            hidden.sizes, logits.sizes
        ));
    }
    let vocab = logits.sizes[1];
    for r in 0..hidden.sizes[0] {
        let row = hidden.aligned.offset((r * hidden.strides[0]) as isize);
        let next = next_token(*row as i64, *row.add(1) as i64, vocab);
        write_logits(
            logits.aligned.offset((r * logits.strides[0]) as isize),
            vocab as usize,
            next,
        );
    }
}

/// The fake model's entry points, compiled (as it were) for `config`.
pub fn entry_points(config: &ditto_rt::payload::ModelConfig) -> EntryPoints {
    let shape = config.compiled_shape();
    // SAFETY: the three functions have the contract's signatures; `shape`
    // holds a CompiledShape.
    unsafe {
        EntryPoints::from_raw(
            fake_decode as *const c_void,
            fake_prefill as *const c_void,
            fake_lm_head as *const c_void,
            shape.as_ptr(),
        )
        .unwrap()
    }
}

/// The entry points of the model the payload in `path` says it carries (of
/// any model if there is no readable payload, which the runtime refuses
/// before it looks at the shape).
pub fn entry_points_for(path: &std::path::Path) -> EntryPoints {
    match ditto_rt::payload::Payload::open(path) {
        Ok(payload) => entry_points(payload.model()),
        Err(_) => entry_points(&config(2, 2)),
    }
}

/// The token the fake model predicts after each position of `tokens`.
pub fn predicted_after(tokens: &[u32], vocab: usize) -> Vec<u32> {
    let mut prev = 0i64;
    tokens
        .iter()
        .map(|&t| {
            let next = next_token(t as i64, prev, vocab as i64);
            prev = t as i64;
            next as u32
        })
        .collect()
}

/// Greedy continuation of `prompt`: `n` tokens, by the rule alone.
pub fn greedy(prompt: &[u32], n: usize, vocab: usize) -> Vec<u32> {
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let l = seq.len();
        let prev = if l >= 2 { seq[l - 2] as i64 } else { 0 };
        seq.push(next_token(seq[l - 1] as i64, prev, vocab as i64) as u32);
    }
    seq[prompt.len()..].to_vec()
}

/// The logits row the rule gives for `next`.
pub fn logits_row(next: u32, vocab: usize) -> Vec<f32> {
    (0..vocab).map(|j| logit(j, next as usize, vocab)).collect()
}

pub fn config(vocab: usize, max_ctx: usize) -> ditto_rt::payload::ModelConfig {
    ditto_rt::payload::ModelConfig {
        arch: "fake".into(),
        n_layers: N_LAYERS,
        d_model: D_MODEL,
        n_heads: 1,
        n_kv_heads: N_KV_HEADS,
        head_dim: HEAD_DIM,
        vocab,
        max_ctx,
    }
}
