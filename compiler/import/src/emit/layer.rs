//! One transformer block (`@decode_layer`, `@prefill_layer`) and its
//! elementwise and product pieces: RMSNorm, linear layers, SwiGLU, residuals.

use super::{attention::*, func::*, Mode};
use crate::config::ModelConfig;

/// One transformer block, in place on the residual stream `%x`.
pub(super) fn layer(cfg: &ModelConfig, mode: Mode) -> String {
    let mut f = Func::new(mode);
    let (d, q, kv, heads, kv_heads, hd) = (
        cfg.d_model,
        cfg.q_dim(),
        cfg.kv_dim(),
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.head_dim,
    );
    let x = Buf {
        name: "%x".into(),
        ty: format!("memref<{}f32>", f.shape(&[d])),
    };
    if mode == Mode::Prefill {
        let c0 = f.index(0);
        f.line(&format!("%rows = memref.dim %x, {c0} : {}", x.ty));
        f.rows = Some("%rows".into());
    }
    let tensors = cfg.layer_tensors(d, q, kv, cfg.ffn);
    let params: Vec<Buf> = tensors
        .iter()
        .map(|(name, shape)| {
            let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
            Buf {
                name: format!("%{}", name.replace('.', "_")),
                ty: format!("memref<{}xf32>", dims.join("x")),
            }
        })
        .collect();
    let param = |name: &str| -> Option<Buf> {
        let key = format!("%{}", name.replace('.', "_"));
        params.iter().find(|p| p.name == key).cloned()
    };
    let w = |name: &str| param(name).expect("layer tensor");

    // Attention: xn = rmsnorm(x); q, k, v = projections of xn.
    let xn = f.buffer("xn", &[d]);
    rmsnorm(&mut f, cfg, &x, &w("attn_norm.weight"), &xn);
    let qv = f.buffer("q", &[q]);
    linear(
        &mut f,
        &xn,
        &w("attn_q.weight"),
        param("attn_q.bias").as_ref(),
        &qv,
    );
    let kvec = f.buffer("k", &[kv]);
    linear(
        &mut f,
        &xn,
        &w("attn_k.weight"),
        param("attn_k.bias").as_ref(),
        &kvec,
    );
    let vvec = f.buffer("v", &[kv]);
    linear(
        &mut f,
        &xn,
        &w("attn_v.weight"),
        param("attn_v.bias").as_ref(),
        &vvec,
    );

    // Heads: [.., H*hd] viewed as [.., H, hd].
    let q_heads = expand(&mut f, &qv, heads, hd);
    let k_heads = expand(&mut f, &kvec, kv_heads, hd);
    let v_heads = expand(&mut f, &vvec, kv_heads, hd);
    let (cos, sin) = rope_tables(&mut f, cfg);
    let q_rot = f.buffer("q_rot", &[heads, hd]);
    rope(&mut f, cfg, (&cos, &sin), &q_heads, &q_rot);
    // This position's K (rotated) and V go straight into the caches.
    let k_slot = cache_slot(&mut f, cfg, "%k_cache");
    rope(&mut f, cfg, (&cos, &sin), &k_heads, &k_slot);
    let v_slot = cache_slot(&mut f, cfg, "%v_cache");
    copy(&mut f, &v_heads, &v_slot);

    let attn = f.buffer("attn", &[heads, hd]);
    attention(&mut f, cfg, &q_rot, &attn);
    let attn_flat = collapse(&mut f, &attn, q);
    let o = f.buffer("o", &[d]);
    linear(&mut f, &attn_flat, &w("attn_output.weight"), None, &o);
    add_into(&mut f, &x, &o);

    // SwiGLU MLP: x += down(silu(gate(xn)) * up(xn)).
    rmsnorm(&mut f, cfg, &x, &w("ffn_norm.weight"), &xn);
    let gate = f.buffer("gate", &[cfg.ffn]);
    linear(&mut f, &xn, &w("ffn_gate.weight"), None, &gate);
    let up = f.buffer("up", &[cfg.ffn]);
    linear(&mut f, &xn, &w("ffn_up.weight"), None, &up);
    let act = f.buffer("act", &[cfg.ffn]);
    silu_mul(&mut f, &gate, &up, &act);
    let down = f.buffer("down", &[d]);
    linear(&mut f, &act, &w("ffn_down.weight"), None, &down);
    add_into(&mut f, &x, &down);

    let mut signature = vec![
        format!("%x: {}", x.ty),
        format!("%k_cache: {}", cache_type(cfg)),
        format!("%v_cache: {}", cache_type(cfg)),
        "%layer: index".into(),
        "%pos: index".into(),
    ];
    signature.extend(params.iter().map(|p| format!("{}: {}", p.name, p.ty)));
    let name = match mode {
        Mode::Decode => "decode_layer",
        Mode::Prefill => "prefill_layer",
    };
    f.finish(&format!("private @{name}({})", signature.join(", ")), "")
}

/// out = x / sqrt(mean(x²) + eps) · w, per row.
pub(super) fn rmsnorm(f: &mut Func, cfg: &ModelConfig, x: &Buf, w: &Buf, out: &Buf) {
    let rows = f.row_dims();
    let sum_sq = match f.mode {
        Mode::Decode => {
            let name = f.fresh("sum_sq");
            f.line(&format!("{name} = memref.alloca() : memref<f32>"));
            Buf {
                name,
                ty: "memref<f32>".into(),
            }
        }
        Mode::Prefill => f.buffer("sum_sq", &[]),
    };
    let zero = f.f32(0.0);
    f.fill(&sum_sq, &zero);
    let dims: Vec<&str> = rows.iter().copied().chain(["i"]).collect();
    let row_i: Vec<&str> = dims.clone();
    // sum_sq[t] += x[t, i]²
    f.generic(
        &dims,
        &["i"],
        &[(x, &row_i)],
        &[(&sum_sq, &rows)],
        |f, a| {
            let sq = f.bin("mulf", &a[0], &a[0]);
            f.bin("addf", &a[1], &sq)
        },
    );
    let width = f.f32(cfg.d_model as f32);
    let eps = f.f32(cfg.rms_eps as f32);
    // out[t, i] = x[t, i] * rsqrt(sum_sq[t] / D + eps) * w[i]
    f.generic(
        &dims,
        &[],
        &[(x, &row_i), (w, &["i"]), (&sum_sq, &rows)],
        &[(out, &row_i)],
        |f, a| {
            let mean = f.bin("divf", &a[2], &width);
            let var = f.bin("addf", &mean, &eps);
            let r = f.fresh("v");
            f.line(&format!("  {r} = math.rsqrt {var} : f32"));
            let scaled = f.bin("mulf", &a[0], &r);
            f.bin("mulf", &scaled, &a[1])
        },
    );
}

/// out = x · wᵀ (+ bias): out[t, n] = Σ_k x[t, k] · w[n, k].
pub(super) fn linear(f: &mut Func, x: &Buf, w: &Buf, bias: Option<&Buf>, out: &Buf) {
    let zero = f.f32(0.0);
    match f.mode {
        Mode::Decode => multiply_accumulate(
            f,
            (&["n", "k"], &["k"]),
            [(w, &["n", "k"]), (x, &["k"])],
            (out, &["n"]),
            &zero,
        ),
        Mode::Prefill => multiply_accumulate(
            f,
            (&["t", "n", "k"], &["k"]),
            [(x, &["t", "k"]), (w, &["n", "k"])],
            (out, &["t", "n"]),
            &zero,
        ),
    }
    if let Some(bias) = bias {
        let rows = f.row_dims();
        let dims: Vec<&str> = rows.iter().copied().chain(["n"]).collect();
        f.generic(&dims, &[], &[(bias, &["n"])], &[(out, &dims)], |f, a| {
            f.bin("addf", &a[1], &a[0])
        });
    }
}

/// out = Σ over the `reduce` dims of a·b (a product of two operands):
/// `out` zero-filled, then a `linalg.generic` over `dims` whose body is the
/// multiply-add that kernel selection recognizes.
pub(super) fn multiply_accumulate(
    f: &mut Func,
    (dims, reduce): (&[&str], &[&str]),
    ins: [(&Buf, &[&str]); 2],
    out: (&Buf, &[&str]),
    zero: &str,
) {
    f.fill(out.0, zero);
    f.generic(dims, reduce, &ins, &[out], |f, a| {
        let p = f.bin("mulf", &a[0], &a[1]);
        f.bin("addf", &a[2], &p)
    });
}

/// x += y, elementwise.
pub(super) fn add_into(f: &mut Func, x: &Buf, y: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["i"]).collect();
    f.generic(&dims, &[], &[(y, &dims)], &[(x, &dims)], |f, a| {
        f.bin("addf", &a[1], &a[0])
    });
}

/// dst = src, elementwise over [.., heads, hd].
pub(super) fn copy(f: &mut Func, src: &Buf, dst: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["h", "d"]).collect();
    f.generic(&dims, &[], &[(src, &dims)], &[(dst, &dims)], |_, a| {
        a[0].clone()
    });
}

/// out = silu(gate) · up, where silu(g) = g / (1 + e^-g).
pub(super) fn silu_mul(f: &mut Func, gate: &Buf, up: &Buf, out: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["i"]).collect();
    let one = f.f32(1.0);
    f.generic(
        &dims,
        &[],
        &[(gate, &dims), (up, &dims)],
        &[(out, &dims)],
        |f, a| {
            let neg = f.fresh("v");
            f.line(&format!("  {neg} = arith.negf {} : f32", a[0]));
            let e = exp_f32(f, &neg);
            let denom = f.bin("addf", &one, &e);
            let silu = f.bin("divf", &a[0], &denom);
            f.bin("mulf", &silu, &a[1])
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
pub(super) fn exp_f32(f: &mut Func, x: &str) -> String {
    let (lo, hi) = (f.f32(-87.33), f.f32(88.37));
    let clamped = f.bin("maximumf", x, &lo);
    let clamped = f.bin("minimumf", &clamped, &hi);
    let log2e = f.f32(std::f32::consts::LOG2_E);
    let scaled = f.bin("mulf", &clamped, &log2e);
    let k = f.fresh("v");
    f.line(&format!("  {k} = math.roundeven {scaled} : f32"));
    let (ln2_hi, ln2_lo) = (f.f32(0.693_359_4), f.f32(-2.121_944_4e-4));
    let t = f.fresh("v");
    f.line(&format!("  {t} = arith.negf {k} : f32"));
    let r = f.fresh("v");
    f.line(&format!("  {r} = math.fma {t}, {ln2_hi}, {clamped} : f32"));
    let r2 = f.fresh("v");
    f.line(&format!("  {r2} = math.fma {t}, {ln2_lo}, {r} : f32"));
    let r = r2;
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
        let next = f.fresh("v");
        f.line(&format!("  {next} = math.fma {p}, {r}, {a} : f32"));
        p = next;
    }
    let rr = f.bin("mulf", &r, &r);
    let one = f.f32(1.0);
    let r1 = f.bin("addf", &r, &one);
    let er = f.fresh("v");
    f.line(&format!("  {er} = math.fma {p}, {rr}, {r1} : f32"));
    let ki = f.fresh("v");
    f.line(&format!("  {ki} = arith.fptosi {k} : f32 to i32"));
    let (bias, shift) = (f.fresh("v"), f.fresh("v"));
    f.line(&format!("  {bias} = arith.constant 127 : i32"));
    f.line(&format!("  {shift} = arith.constant 23 : i32"));
    let biased = f.fresh("v");
    f.line(&format!("  {biased} = arith.addi {ki}, {bias} : i32"));
    let bits = f.fresh("v");
    f.line(&format!("  {bits} = arith.shli {biased}, {shift} : i32"));
    let two_k = f.fresh("v");
    f.line(&format!("  {two_k} = arith.bitcast {bits} : i32 to f32"));
    let e = f.bin("mulf", &er, &two_k);
    // NaN's k converts to no integer: give back x itself.
    let nan = f.fresh("v");
    f.line(&format!("  {nan} = arith.cmpf uno, {x}, {x} : f32"));
    let out = f.fresh("v");
    f.line(&format!("  {out} = arith.select {nan}, {x}, {e} : f32"));
    out
}
