//! One transformer block (`@decode_layer`, `@prefill_layer`) and its
//! elementwise and product pieces: RMSNorm, linear layers, SwiGLU, residuals.

use ditto_ir::melior::{
    dialect::arith::CmpfPredicate,
    ir::{r#type::IntegerType, Module, Type, Value},
    Context,
};

use super::{attention::*, entries::Caches, func::*, Mode};
use crate::config::ModelConfig;

/// One transformer block, in place on the residual stream `%x`.
pub(super) fn layer<'c>(context: &'c Context, module: &Module<'c>, cfg: &ModelConfig, mode: Mode) {
    let (d, q, kv, heads, kv_heads, hd) = (
        cfg.d_model,
        cfg.q_dim(),
        cfg.kv_dim(),
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.head_dim,
    );
    let tensors = cfg.layer_tensors();
    // (%x: [T x] D, %k_cache, %v_cache, %layer: index, %pos: index, weights...)
    let x_shape: Vec<i64> = match mode {
        Mode::Decode => vec![d as i64],
        Mode::Prefill => vec![dynamic(), d as i64],
    };
    let cache = cache_type(context, cfg).into();
    let index = Type::index(context);
    let mut arguments = vec![
        memref_of(Type::float32(context), &x_shape).into(),
        cache,
        cache,
        index,
        index,
    ];
    arguments.extend(tensors.iter().map(|(_, shape)| {
        let shape: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
        Type::from(memref_of(Type::float32(context), &shape))
    }));
    let name = match mode {
        Mode::Decode => "decode_layer",
        Mode::Prefill => "prefill_layer",
    };
    let mut f = Func::new(context, module, name, Visibility::Private, &arguments, mode);
    let x = f.buffer_argument(0);
    let caches = Caches {
        k: f.buffer_argument(1),
        v: f.buffer_argument(2),
    };
    let layer = f.argument(3);
    f.pos = Some(f.argument(4));
    if mode == Mode::Prefill {
        let rows = f.rows_of(x);
        f.rows = Some(rows);
    }
    let params: Vec<(&str, Buf)> = tensors
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, f.buffer_argument(5 + i)))
        .collect();
    let param = |name: &str| params.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    let w = |name: &str| param(name).expect("layer tensor");

    // Attention: xn = rmsnorm(x); q, k, v = projections of xn.
    let xn = f.buffer(&[d]);
    rmsnorm(&mut f, cfg, x, w("attn_norm.weight"), xn);
    let qv = f.buffer(&[q]);
    linear(&mut f, xn, w("attn_q.weight"), param("attn_q.bias"), qv);
    let kvec = f.buffer(&[kv]);
    linear(&mut f, xn, w("attn_k.weight"), param("attn_k.bias"), kvec);
    let vvec = f.buffer(&[kv]);
    linear(&mut f, xn, w("attn_v.weight"), param("attn_v.bias"), vvec);

    // Heads: [.., H*hd] viewed as [.., H, hd].
    let q_heads = expand(&mut f, qv, heads, hd);
    let k_heads = expand(&mut f, kvec, kv_heads, hd);
    let v_heads = expand(&mut f, vvec, kv_heads, hd);
    let (cos, sin) = rope_tables(&mut f, cfg);
    let q_rot = f.buffer(&[heads, hd]);
    rope(&mut f, cfg, (cos, sin), q_heads, q_rot);
    // This position's K (rotated) and V go straight into the caches.
    let k_slot = cache_slot(&mut f, cfg, caches.k, layer);
    rope(&mut f, cfg, (cos, sin), k_heads, k_slot);
    let v_slot = cache_slot(&mut f, cfg, caches.v, layer);
    copy(&mut f, v_heads, v_slot);

    let attn = f.buffer(&[heads, hd]);
    attention(&mut f, cfg, (caches, layer), q_rot, attn);
    let attn_flat = collapse(&mut f, attn, q);
    let o = f.buffer(&[d]);
    linear(&mut f, attn_flat, w("attn_output.weight"), None, o);
    add_into(&mut f, x, o);

    // SwiGLU MLP: x += down(silu(gate(xn)) * up(xn)).
    rmsnorm(&mut f, cfg, x, w("ffn_norm.weight"), xn);
    let gate = f.buffer(&[cfg.ffn]);
    linear(&mut f, xn, w("ffn_gate.weight"), None, gate);
    let up = f.buffer(&[cfg.ffn]);
    linear(&mut f, xn, w("ffn_up.weight"), None, up);
    let act = f.buffer(&[cfg.ffn]);
    silu_mul(&mut f, gate, up, act);
    let down = f.buffer(&[d]);
    linear(&mut f, act, w("ffn_down.weight"), None, down);
    add_into(&mut f, x, down);
    f.finish();
}

/// out = x / sqrt(mean(x²) + eps) · w, per row.
pub(super) fn rmsnorm<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    x: Buf<'c, 'a>,
    w: Buf<'c, 'a>,
    out: Buf<'c, 'a>,
) {
    let rows = f.row_dims();
    let sum_sq = match f.mode {
        Mode::Decode => {
            let scalar = f.memref(&[]);
            f.alloca(scalar, &[])
        }
        Mode::Prefill => f.buffer(&[]),
    };
    let zero = f.f32(0.0);
    f.fill(sum_sq, zero);
    let dims: Vec<&'static str> = rows.iter().copied().chain(["i"]).collect();
    let row_i = ix(&dims);
    // sum_sq[t] += x[t, i]²
    f.generic(
        &dims,
        &["i"],
        &[(x, &row_i)],
        &[(sum_sq, &ix(&rows))],
        |f, a| {
            let sq = f.bin("arith.mulf", a[0], a[0]);
            f.bin("arith.addf", a[1], sq)
        },
    );
    let width = f.f32(cfg.d_model as f32);
    let eps = f.f32(cfg.rms_eps as f32);
    // out[t, i] = x[t, i] * rsqrt(sum_sq[t] / D + eps) * w[i]
    f.generic(
        &dims,
        &[],
        &[(x, &row_i), (w, &ix(&["i"])), (sum_sq, &ix(&rows))],
        &[(out, &row_i)],
        |f, a| {
            let mean = f.bin("arith.divf", a[2], width);
            let var = f.bin("arith.addf", mean, eps);
            let r = f.unary("math.rsqrt", var);
            let scaled = f.bin("arith.mulf", a[0], r);
            f.bin("arith.mulf", scaled, a[1])
        },
    );
}

/// out = x · wᵀ (+ bias): out[t, n] = Σ_k x[t, k] · w[n, k].
pub(super) fn linear<'c, 'a>(
    f: &mut Func<'c, 'a>,
    x: Buf<'c, 'a>,
    w: Buf<'c, 'a>,
    bias: Option<Buf<'c, 'a>>,
    out: Buf<'c, 'a>,
) {
    let zero = f.f32(0.0);
    match f.mode {
        Mode::Decode => multiply_accumulate(
            f,
            (&["n", "k"], &["k"]),
            [(w, &ix(&["n", "k"])), (x, &ix(&["k"]))],
            (out, &ix(&["n"])),
            zero,
        ),
        Mode::Prefill => multiply_accumulate(
            f,
            (&["t", "n", "k"], &["k"]),
            [(x, &ix(&["t", "k"])), (w, &ix(&["n", "k"]))],
            (out, &ix(&["t", "n"])),
            zero,
        ),
    }
    if let Some(bias) = bias {
        let rows = f.row_dims();
        let dims: Vec<&'static str> = rows.iter().copied().chain(["n"]).collect();
        f.generic(
            &dims,
            &[],
            &[(bias, &ix(&["n"]))],
            &[(out, &ix(&dims))],
            |f, a| f.bin("arith.addf", a[1], a[0]),
        );
    }
}

/// out = Σ over the `reduce` dims of a·b (a product of two operands):
/// `out` zero-filled, then a `linalg.generic` over `dims` whose body is the
/// multiply-add that kernel selection recognizes.
pub(super) fn multiply_accumulate<'c, 'a>(
    f: &mut Func<'c, 'a>,
    (dims, reduce): (&[&'static str], &[&'static str]),
    ins: [(Buf<'c, 'a>, &[Ix]); 2],
    out: (Buf<'c, 'a>, &[Ix]),
    zero: Value<'c, 'a>,
) {
    f.fill(out.0, zero);
    f.generic(dims, reduce, &ins, &[out], |f, a| {
        let p = f.bin("arith.mulf", a[0], a[1]);
        f.bin("arith.addf", a[2], p)
    });
}

/// x += y, elementwise.
pub(super) fn add_into<'c, 'a>(f: &mut Func<'c, 'a>, x: Buf<'c, 'a>, y: Buf<'c, 'a>) {
    let rows = f.row_dims();
    let dims: Vec<&'static str> = rows.iter().copied().chain(["i"]).collect();
    let all = ix(&dims);
    f.generic(&dims, &[], &[(y, &all)], &[(x, &all)], |f, a| {
        f.bin("arith.addf", a[1], a[0])
    });
}

/// dst = src, elementwise over [.., heads, hd].
pub(super) fn copy<'c, 'a>(f: &mut Func<'c, 'a>, src: Buf<'c, 'a>, dst: Buf<'c, 'a>) {
    let rows = f.row_dims();
    let dims: Vec<&'static str> = rows.iter().copied().chain(["h", "d"]).collect();
    let all = ix(&dims);
    f.generic(&dims, &[], &[(src, &all)], &[(dst, &all)], |_, a| a[0]);
}

/// out = silu(gate) · up, where silu(g) = g / (1 + e^-g).
pub(super) fn silu_mul<'c, 'a>(
    f: &mut Func<'c, 'a>,
    gate: Buf<'c, 'a>,
    up: Buf<'c, 'a>,
    out: Buf<'c, 'a>,
) {
    let rows = f.row_dims();
    let dims: Vec<&'static str> = rows.iter().copied().chain(["i"]).collect();
    let all = ix(&dims);
    let one = f.f32(1.0);
    f.generic(
        &dims,
        &[],
        &[(gate, &all), (up, &all)],
        &[(out, &all)],
        |f, a| {
            let neg = f.unary("arith.negf", a[0]);
            let e = exp_f32(f, neg);
            let denom = f.bin("arith.addf", one, e);
            let silu = f.bin("arith.divf", a[0], denom);
            f.bin("arith.mulf", silu, a[1])
        },
    );
}

/// `e^x` in f32 inside a body, written out in arith ops so that LLVM
/// vectorizes the loop around it (`math.exp` becomes a call of libm's
/// scalar `expf` per element): x clamped to [−87.33, 88.37] (NaN passes
/// through), `x = k·ln 2 + r` with k = round(x·log₂e) and |r| ≤ ln 2 / 2 (ln 2
/// in two parts, Cody–Waite), e^r by Cephes' degree-5 minimax polynomial
/// (`expf.c`: 1 + r + r²·p(r)), times 2^k built in the exponent bits. Below
/// the clamp the result is 2⁻¹²⁶·e^r instead of a smaller number or 0: a
/// softmax term or SiLU's e^−g that small changes nothing it is added to.
/// These operations, emulated in numpy's float32 (f64 for each fused
/// multiply-add), are within 1.24 ulp of e^x over [−87.3, 88.3] (2·10⁶
/// points); the model tests compare the logits with the numpy reference.
pub(super) fn exp_f32<'c, 'a>(f: &mut Func<'c, 'a>, x: Value<'c, 'a>) -> Value<'c, 'a> {
    let (lo, hi) = (f.f32(-87.33), f.f32(88.37));
    let clamped = f.bin("arith.maximumf", x, lo);
    let clamped = f.bin("arith.minimumf", clamped, hi);
    let log2e = f.f32(std::f32::consts::LOG2_E);
    let scaled = f.bin("arith.mulf", clamped, log2e);
    let k = f.unary("math.roundeven", scaled);
    let (ln2_hi, ln2_lo) = (f.f32(0.693_359_4), f.f32(-2.121_944_4e-4));
    let t = f.unary("arith.negf", k);
    let r = f.fma(t, ln2_hi, clamped);
    let r = f.fma(t, ln2_lo, r);
    let coefficients = [
        1.987_569_2e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5, // Cephes: 5.0000001e-1, the same f32
    ];
    let mut p = f.f32(coefficients[0]);
    for &coefficient in &coefficients[1..] {
        let a = f.f32(coefficient);
        p = f.fma(p, r, a);
    }
    let rr = f.bin("arith.mulf", r, r);
    let one = f.f32(1.0);
    let r1 = f.bin("arith.addf", r, one);
    let er = f.fma(p, rr, r1);
    let i32_type = IntegerType::new(f.context, 32).into();
    let ki = f.cast("arith.fptosi", k, i32_type);
    let (bias, shift) = (f.i32(127), f.i32(23));
    let biased = f.bin("arith.addi", ki, bias);
    let bits = f.bin("arith.shli", biased, shift);
    let two_k = f.cast("arith.bitcast", bits, f.f32_type());
    let e = f.bin("arith.mulf", er, two_k);
    // NaN's k converts to no integer: give back x itself.
    let nan = f.cmpf(CmpfPredicate::Uno, x, x);
    f.select(nan, x, e)
}
