//! Attention: RoPE, the KV cache slot, grouped-query scores, softmax, and the
//! reshapes between heads and rows.

use ditto_ir::melior::{
    dialect::arith::CmpiPredicate,
    ir::{r#type::IntegerType, Type, Value},
};

use super::{entries::Caches, func::*, layer::*, Mode};
use crate::config::ModelConfig;

/// [.., H*hd] → [.., H, hd] (a view).
pub(super) fn expand<'c, 'a>(
    f: &mut Func<'c, 'a>,
    buf: Buf<'c, 'a>,
    heads: usize,
    hd: usize,
) -> Buf<'c, 'a> {
    let ty = f.row_type(&[heads, hd]);
    match f.mode {
        Mode::Decode => f.expand_shape(
            buf,
            &[&[0, 1]],
            &[Extent::Static(heads), Extent::Static(hd)],
            ty,
        ),
        Mode::Prefill => {
            let rows = Extent::Value(f.rows());
            f.expand_shape(
                buf,
                &[&[0], &[1, 2]],
                &[rows, Extent::Static(heads), Extent::Static(hd)],
                ty,
            )
        }
    }
}

/// [.., H, hd] → [.., H*hd] (a view).
pub(super) fn collapse<'c, 'a>(
    f: &mut Func<'c, 'a>,
    buf: Buf<'c, 'a>,
    width: usize,
) -> Buf<'c, 'a> {
    let ty = f.row_type(&[width]);
    let reassociation: &[&[i64]] = match f.mode {
        Mode::Decode => &[&[0, 1]],
        Mode::Prefill => &[&[0], &[1, 2]],
    };
    f.collapse_shape(buf, reassociation, ty)
}

/// The cache rows of this layer at this step's positions:
/// cache[layer, pos.., :, :] as [.., KV, hd].
pub(super) fn cache_slot<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    cache: Buf<'c, 'a>,
    layer: Value<'c, 'a>,
) -> Buf<'c, 'a> {
    let (kvh, hd) = (cfg.n_kv_heads, cfg.head_dim);
    let (extent, ty) = match f.mode {
        Mode::Decode => (
            Extent::Static(1),
            f.strided(&[kvh as i64, hd as i64], &[hd as i64, 1]),
        ),
        Mode::Prefill => (
            Extent::Value(f.rows()),
            f.strided(
                &[dynamic(), kvh as i64, hd as i64],
                &[(kvh * hd) as i64, hd as i64, 1],
            ),
        ),
    };
    let pos = f.pos();
    f.subview(
        cache,
        &[
            Extent::Value(layer),
            Extent::Value(pos),
            Extent::Static(0),
            Extent::Static(0),
        ],
        &[
            Extent::Static(1),
            extent,
            Extent::Static(kvh),
            Extent::Static(hd),
        ],
        ty,
    )
}

/// The rotary angles' cosines and sines, one per row and frequency
/// (`[(T,) hd/2]`): for frequency j at position p = pos (+ t), the angle
/// p·θ^(−2j/hd), computed in f64 and rounded to f32. Computed once per
/// layer for both of its [`rope`]s, instead of once per head and element.
pub(super) fn rope_tables<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
) -> (Buf<'c, 'a>, Buf<'c, 'a>) {
    let half = cfg.head_dim / 2;
    let rows = f.row_dims();
    let dims: Vec<&'static str> = rows.iter().copied().chain(["j"]).collect();
    let all = ix(&dims);
    let log_scale = -2.0 * cfg.rope_theta.ln() / cfg.head_dim as f64;
    let table = |f: &mut Func<'c, 'a>, op: &str| {
        let buf = f.buffer(&[half]);
        f.generic(&dims, &[], &[], &[(buf, &all)], |f, _| {
            let position = if rows.is_empty() {
                f.pos()
            } else {
                let t = f.linalg_index(0);
                f.bin("arith.addi", f.pos(), t)
            };
            let j = f.linalg_index(rows.len());
            let to_f64 = |f: &mut Func<'c, 'a>, index: Value<'c, 'a>| {
                let i64_type = IntegerType::new(f.context, 64).into();
                let i = f.cast("arith.index_cast", index, i64_type);
                f.cast("arith.sitofp", i, Type::float64(f.context))
            };
            let jf = to_f64(f, j);
            let pf = to_f64(f, position);
            let scale = f.f64(log_scale);
            let exponent = f.bin("arith.mulf", jf, scale);
            let inv_freq = f.unary("math.exp", exponent);
            let angle = f.bin("arith.mulf", pf, inv_freq);
            let v = f.unary(op, angle);
            f.cast("arith.truncf", v, f.f32_type())
        });
        buf
    };
    let cos = table(f, "math.cos");
    let sin = table(f, "math.sin");
    (cos, sin)
}

/// Rotary position embedding in the "rotate half" form: for d < hd/2,
/// out[d] = x[d]·cos − x[d+hd/2]·sin, and out[d+hd/2] = x[d+hd/2]·cos + x[d]·sin,
/// with the cosine and sine of frequency d mod hd/2 from [`rope_tables`].
pub(super) fn rope<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    (cos, sin): (Buf<'c, 'a>, Buf<'c, 'a>),
    src: Buf<'c, 'a>,
    out: Buf<'c, 'a>,
) {
    let rows = f.row_dims();
    let dims: Vec<&'static str> = rows.iter().copied().chain(["h", "d"]).collect();
    let n_rows = rows.len();
    let half = cfg.head_dim / 2;
    let table: Vec<Ix> = ix(&rows).into_iter().chain([Ix::Mod("d", half)]).collect();
    f.generic(
        &dims,
        &[],
        &[(cos, &table), (sin, &table)],
        &[(out, &ix(&dims))],
        |f, a| {
            let t = (n_rows == 1).then(|| f.linalg_index(0));
            let h = f.linalg_index(n_rows);
            let d = f.linalg_index(n_rows + 1);
            let half_c = f.index(half);
            let is_lo = f.cmpi(CmpiPredicate::Ult, d, half_c);
            let d_plus = f.bin("arith.addi", d, half_c);
            let d_minus = f.bin("arith.subi", d, half_c);
            let partner = f.select(is_lo, d_plus, d_minus);
            let at =
                |d: Value<'c, 'a>| -> Vec<Value<'c, 'a>> { t.into_iter().chain([h, d]).collect() };
            let xv = f.load(src, &at(d));
            let xp = f.load(src, &at(partner));
            let xc = f.bin("arith.mulf", xv, a[0]);
            let ps = f.bin("arith.mulf", xp, a[1]);
            let neg = f.unary("arith.negf", ps);
            let rot = f.select(is_lo, neg, ps);
            f.bin("arith.addf", xc, rot)
        },
    );
}

/// Grouped-query attention of this step's rotated queries over the layer's
/// cache (positions 0..pos+T), causal: row t sees positions ≤ pos + t.
pub(super) fn attention<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    (caches, layer): (Caches<'c, 'a>, Value<'c, 'a>),
    q_rot: Buf<'c, 'a>,
    out: Buf<'c, 'a>,
) {
    let (heads, kvh, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
    let group = cfg.group();
    let prefill = f.mode == Mode::Prefill;
    // Cached positions visible to this step.
    let kv_len = match f.mode {
        Mode::Decode => {
            let one = f.index(1);
            f.bin("arith.addi", f.pos(), one)
        }
        Mode::Prefill => f.bin("arith.addi", f.pos(), f.rows()),
    };
    let cache_view = |f: &mut Func<'c, 'a>, cache: Buf<'c, 'a>| {
        let ty = f.strided(
            &[dynamic(), kvh as i64, hd as i64],
            &[(kvh * hd) as i64, hd as i64, 1],
        );
        f.subview(
            cache,
            &[
                Extent::Value(layer),
                Extent::Static(0),
                Extent::Static(0),
                Extent::Static(0),
            ],
            &[
                Extent::Static(1),
                Extent::Value(kv_len),
                Extent::Static(kvh),
                Extent::Static(hd),
            ],
            ty,
        )
    };
    let keys = cache_view(f, caches.k);
    let values = cache_view(f, caches.v);
    let kv_head = Ix::FloorDiv("h", group);

    // scores[h, (t,) s] = Σ_d q[(t,) h, d] · k[s, h/group, d]
    let scores = if prefill {
        let ty = f.memref(&[heads as i64, dynamic(), dynamic()]);
        let rows = f.rows();
        f.alloc(ty, &[rows, kv_len])
    } else {
        let ty = f.memref(&[heads as i64, dynamic()]);
        f.alloca(ty, &[kv_len])
    };
    let zero = f.f32(0.0);
    let key_index = [Ix::Dim("s"), kv_head, Ix::Dim("d")];
    if prefill {
        // scores[h] = Q_h · K_gᵀ  ([T, hd] · [hd, s]), one 2-D product per
        // query head, which kernel selection hands to the threaded GEMM.
        per_head(f, cfg, |f, h, g| {
            let q_h = head_rows(f, q_rot, h, heads, hd);
            let k_g = head_rows(f, keys, g, kvh, hd);
            let s_h = head_scores(f, scores, h, kv_len);
            multiply_accumulate(
                f,
                (&["t", "s", "d"], &["d"]),
                [(q_h, &ix(&["t", "d"])), (k_g, &ix(&["s", "d"]))],
                (s_h, &ix(&["t", "s"])),
                zero,
            );
        });
    } else {
        f.fill(scores, zero);
        f.generic(
            &["h", "s", "d"],
            &["d"],
            &[(q_rot, &ix(&["h", "d"])), (keys, &key_index)],
            &[(scores, &ix(&["h", "s"]))],
            |f, a| {
                let p = f.bin_reassoc("arith.mulf", a[0], a[1]);
                f.bin_reassoc("arith.addf", a[2], p)
            },
        );
    }
    softmax(f, scores, heads, 1.0 / (hd as f64).sqrt());

    // out[(t,) h, d] = Σ_s p[h, (t,) s] · v[s, h/group, d].
    if prefill {
        // out_h = P_h · V_g  ([T, s] · [s, hd]), per query head as above.
        per_head(f, cfg, |f, h, g| {
            let p_h = head_scores(f, scores, h, kv_len);
            let v_g = head_rows(f, values, g, kvh, hd);
            let out_h = head_rows(f, out, h, heads, hd);
            multiply_accumulate(
                f,
                (&["t", "d", "s"], &["s"]),
                [(p_h, &ix(&["t", "s"])), (v_g, &ix(&["s", "d"]))],
                (out_h, &ix(&["t", "d"])),
                zero,
            );
        });
    } else {
        // d innermost, so that the loop over a value row is contiguous.
        let value_index = [Ix::Dim("s"), kv_head, Ix::Dim("d")];
        multiply_accumulate(
            f,
            (&["h", "s", "d"], &["s"]),
            [(scores, &ix(&["h", "s"])), (values, &value_index)],
            (out, &ix(&["h", "d"])),
            zero,
        );
    }
}

/// `body(f, h, g)` inside `scf.for h in 0..heads`, with `g = h / group` the
/// head's K/V head (prefill).
pub(super) fn per_head<'c, 'a>(
    f: &mut Func<'c, 'a>,
    cfg: &ModelConfig,
    body: impl FnOnce(&mut Func<'c, 'a>, Value<'c, 'a>, Value<'c, 'a>),
) {
    let (c0, c1) = (f.index(0), f.index(1));
    let heads = f.index(cfg.n_heads);
    let group = f.index(cfg.group());
    f.for_loop(c0, heads, c1, |f, h| {
        let g = f.bin("arith.divui", h, group);
        body(f, h, g);
    });
}

/// Rows `[R, hd]` of head `head` in `buf` (`[R, heads, hd]`, unit inner stride).
pub(super) fn head_rows<'c, 'a>(
    f: &mut Func<'c, 'a>,
    buf: Buf<'c, 'a>,
    head: Value<'c, 'a>,
    heads: usize,
    hd: usize,
) -> Buf<'c, 'a> {
    let rows = f.rows_of(buf);
    let ty = f.strided(&[dynamic(), hd as i64], &[(heads * hd) as i64, 1]);
    f.subview(
        buf,
        &[Extent::Static(0), Extent::Value(head), Extent::Static(0)],
        &[Extent::Value(rows), Extent::Static(1), Extent::Static(hd)],
        ty,
    )
}

/// Head `head`'s `[T, s]` slice of the prefill `scores` (`[H, T, s]`).
pub(super) fn head_scores<'c, 'a>(
    f: &mut Func<'c, 'a>,
    scores: Buf<'c, 'a>,
    head: Value<'c, 'a>,
    kv_len: Value<'c, 'a>,
) -> Buf<'c, 'a> {
    let rows = f.rows();
    let ty = f.strided(
        &[dynamic(), dynamic()],
        &[ditto_ir::dynamic_stride_or_offset(), 1],
    );
    f.subview(
        scores,
        &[Extent::Value(head), Extent::Static(0), Extent::Static(0)],
        &[
            Extent::Static(1),
            Extent::Value(rows),
            Extent::Value(kv_len),
        ],
        ty,
    )
}

/// In place over the last dim of `scores` ([H, s] or [H, T, s]):
/// p = softmax(scale · scores), with positions s > pos + t masked out in
/// prefill.
pub(super) fn softmax<'c, 'a>(f: &mut Func<'c, 'a>, scores: Buf<'c, 'a>, heads: usize, scale: f64) {
    let prefill = f.mode == Mode::Prefill;
    let (dims, row): (Vec<&'static str>, Vec<&'static str>) = if prefill {
        (vec!["h", "t", "s"], vec!["h", "t"])
    } else {
        (vec!["h", "s"], vec!["h"])
    };
    let (all, per_row) = (ix(&dims), ix(&row));
    let row_buf = |f: &mut Func<'c, 'a>| {
        if prefill {
            let ty = f.memref(&[heads as i64, dynamic()]);
            let rows = f.rows();
            f.alloc(ty, &[rows])
        } else {
            let ty = f.memref(&[heads as i64]);
            f.alloca(ty, &[])
        }
    };
    let scale_c = f.f32(scale as f32);
    let neg_inf = f.f32(f32::NEG_INFINITY);
    let zero = f.f32(0.0);
    // In prefill, `visible` is s ≤ pos + t.
    let visible = |f: &mut Func<'c, 'a>| -> Option<Value<'c, 'a>> {
        if !prefill {
            return None;
        }
        let t = f.linalg_index(1);
        let s = f.linalg_index(2);
        let last = f.bin("arith.addi", f.pos(), t);
        Some(f.cmpi(CmpiPredicate::Ule, s, last))
    };

    // row_max = max_s scale·scores. `maxnumf`, not `maximumf`: LLVM vectorizes
    // its reduction (a NaN score still reaches the output through the exp).
    let row_max = row_buf(f);
    f.fill(row_max, neg_inf);
    f.generic(
        &dims,
        &["s"],
        &[(scores, &all)],
        &[(row_max, &per_row)],
        |f, a| {
            let scaled = f.bin("arith.mulf", a[0], scale_c);
            let candidate = match visible(f) {
                Some(ok) => f.select(ok, scaled, neg_inf),
                None => scaled,
            };
            f.bin("arith.maxnumf", a[1], candidate)
        },
    );
    // scores = exp(scale·scores − row_max)  (0 where masked)
    f.generic(
        &dims,
        &[],
        &[(row_max, &per_row)],
        &[(scores, &all)],
        |f, a| {
            let scaled = f.bin("arith.mulf", a[1], scale_c);
            let shifted = f.bin("arith.subf", scaled, a[0]);
            let e = exp_f32(f, shifted);
            match visible(f) {
                Some(ok) => f.select(ok, e, zero),
                None => e,
            }
        },
    );
    // row_sum = Σ_s scores; scores /= row_sum
    let row_sum = row_buf(f);
    f.fill(row_sum, zero);
    f.generic(
        &dims,
        &["s"],
        &[(scores, &all)],
        &[(row_sum, &per_row)],
        |f, a| f.bin("arith.addf", a[1], a[0]),
    );
    f.generic(
        &dims,
        &[],
        &[(row_sum, &per_row)],
        &[(scores, &all)],
        |f, a| f.bin("arith.divf", a[1], a[0]),
    );
}
