//! Attention: RoPE, the KV cache slot, grouped-query scores, softmax, and the
//! reshapes between heads and rows.

use super::{func::*, layer::*, Mode};
use crate::config::ModelConfig;

/// [.., H*hd] → [.., H, hd] (a view).
pub(super) fn expand(f: &mut Func, buf: &Buf, heads: usize, hd: usize) -> Buf {
    let name = f.fresh("heads");
    let ty = format!("memref<{}f32>", f.shape(&[heads, hd]));
    let line = match f.mode {
        Mode::Decode => format!(
            "{name} = memref.expand_shape {} [[0, 1]] output_shape [{heads}, {hd}] : {} into {ty}",
            buf.name, buf.ty
        ),
        Mode::Prefill => format!(
            "{name} = memref.expand_shape {} [[0], [1, 2]] output_shape [%rows, {heads}, {hd}] : {} into {ty}",
            buf.name, buf.ty
        ),
    };
    f.line(&line);
    Buf { name, ty }
}

/// [.., H, hd] → [.., H*hd] (a view).
pub(super) fn collapse(f: &mut Func, buf: &Buf, width: usize) -> Buf {
    let name = f.fresh("flat");
    let ty = format!("memref<{}f32>", f.shape(&[width]));
    let reassociation = match f.mode {
        Mode::Decode => "[[0, 1]]",
        Mode::Prefill => "[[0], [1, 2]]",
    };
    f.line(&format!(
        "{name} = memref.collapse_shape {} {reassociation} : {} into {ty}",
        buf.name, buf.ty
    ));
    Buf { name, ty }
}

/// The cache rows of this layer at this step's positions:
/// cache[layer, pos.., :, :] as [.., KV, hd].
pub(super) fn cache_slot(f: &mut Func, cfg: &ModelConfig, cache: &str) -> Buf {
    let (kvh, hd) = (cfg.n_kv_heads, cfg.head_dim);
    let name = f.fresh("slot");
    let (extent, ty) = match f.mode {
        Mode::Decode => (
            "1".to_string(),
            format!("memref<{kvh}x{hd}xf32, strided<[{hd}, 1], offset: ?>>"),
        ),
        Mode::Prefill => (
            "%rows".to_string(),
            format!(
                "memref<?x{kvh}x{hd}xf32, strided<[{}, {hd}, 1], offset: ?>>",
                kvh * hd
            ),
        ),
    };
    f.line(&format!(
        "{name} = memref.subview {cache}[%layer, %pos, 0, 0] [1, {extent}, {kvh}, {hd}] [1, 1, 1, 1] : {} to {ty}",
        cache_type(cfg)
    ));
    Buf { name, ty }
}

/// The rotary angles' cosines and sines, one per row and frequency
/// (`[(T,) hd/2]`): for frequency j at position p = pos (+ t), the angle
/// p·θ^(−2j/hd), computed in f64 and rounded to f32. Computed once per
/// layer for both of its [`rope`]s, instead of once per head and element.
pub(super) fn rope_tables(f: &mut Func, cfg: &ModelConfig) -> (Buf, Buf) {
    let half = cfg.head_dim / 2;
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["j"]).collect();
    let log_scale = -2.0 * cfg.rope_theta.ln() / cfg.head_dim as f64;
    let table = |f: &mut Func, op: &str| {
        let buf = f.buffer(&format!("rope_{op}"), &[half]);
        f.generic(&dims, &[], &[], &[(&buf, &dims)], |f, _| {
            let position = if rows.is_empty() {
                "%pos".to_string()
            } else {
                let t = f.linalg_index(0);
                let p = f.fresh("i");
                f.line(&format!("  {p} = arith.addi %pos, {t} : index"));
                p
            };
            let j = f.linalg_index(rows.len());
            let to_f64 = |f: &mut Func, index: &str| {
                let i = f.fresh("n");
                f.line(&format!("  {i} = arith.index_cast {index} : index to i64"));
                let x = f.fresh("n");
                f.line(&format!("  {x} = arith.sitofp {i} : i64 to f64"));
                x
            };
            let jf = to_f64(f, &j);
            let pf = to_f64(f, &position);
            let scale = f.fresh("n");
            f.line(&format!(
                "  {scale} = arith.constant {} : f64",
                float(log_scale)
            ));
            let exponent = f.fresh("n");
            f.line(&format!("  {exponent} = arith.mulf {jf}, {scale} : f64"));
            let inv_freq = f.fresh("n");
            f.line(&format!("  {inv_freq} = math.exp {exponent} : f64"));
            let angle = f.fresh("n");
            f.line(&format!("  {angle} = arith.mulf {pf}, {inv_freq} : f64"));
            let v = f.fresh("n");
            f.line(&format!("  {v} = math.{op} {angle} : f64"));
            let v32 = f.fresh("v");
            f.line(&format!("  {v32} = arith.truncf {v} : f64 to f32"));
            v32
        });
        buf
    };
    let cos = table(f, "cos");
    let sin = table(f, "sin");
    (cos, sin)
}

/// Rotary position embedding in the "rotate half" form: for d < hd/2,
/// out[d] = x[d]·cos − x[d+hd/2]·sin, and out[d+hd/2] = x[d+hd/2]·cos + x[d]·sin,
/// with the cosine and sine of frequency d mod hd/2 from [`rope_tables`].
pub(super) fn rope(
    f: &mut Func,
    cfg: &ModelConfig,
    (cos, sin): (&Buf, &Buf),
    src: &Buf,
    out: &Buf,
) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["h", "d"]).collect();
    let n_rows = rows.len();
    let half = cfg.head_dim / 2;
    let freq = format!("d mod {half}");
    let table: Vec<&str> = rows.iter().copied().chain([freq.as_str()]).collect();
    f.generic(
        &dims,
        &[],
        &[(cos, &table), (sin, &table)],
        &[(out, &dims)],
        |f, a| {
            let t = (n_rows == 1).then(|| f.linalg_index(0));
            let h = f.linalg_index(n_rows);
            let d = f.linalg_index(n_rows + 1);
            let half_c = f.fresh("c");
            f.line(&format!("  {half_c} = arith.constant {half} : index"));
            let is_lo = f.fresh("lo");
            f.line(&format!(
                "  {is_lo} = arith.cmpi ult, {d}, {half_c} : index"
            ));
            let d_plus = f.fresh("i");
            f.line(&format!("  {d_plus} = arith.addi {d}, {half_c} : index"));
            let d_minus = f.fresh("i");
            f.line(&format!("  {d_minus} = arith.subi {d}, {half_c} : index"));
            let partner = f.fresh("i");
            f.line(&format!(
                "  {partner} = arith.select {is_lo}, {d_plus}, {d_minus} : index"
            ));
            let prefix = t.as_ref().map(|t| format!("{t}, ")).unwrap_or_default();
            let xv = f.fresh("v");
            f.line(&format!(
                "  {xv} = memref.load {}[{prefix}{h}, {d}] : {}",
                src.name, src.ty
            ));
            let xp = f.fresh("v");
            f.line(&format!(
                "  {xp} = memref.load {}[{prefix}{h}, {partner}] : {}",
                src.name, src.ty
            ));
            let xc = f.bin("mulf", &xv, &a[0]);
            let ps = f.bin("mulf", &xp, &a[1]);
            let neg = f.fresh("v");
            f.line(&format!("  {neg} = arith.negf {ps} : f32"));
            let rot = f.fresh("v");
            f.line(&format!(
                "  {rot} = arith.select {is_lo}, {neg}, {ps} : f32"
            ));
            f.bin("addf", &xc, &rot)
        },
    );
}

/// Grouped-query attention of this step's rotated queries over the layer's
/// cache (positions 0..pos+T), causal: row t sees positions ≤ pos + t.
pub(super) fn attention(f: &mut Func, cfg: &ModelConfig, q_rot: &Buf, out: &Buf) {
    let (heads, kvh, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
    let group = cfg.group();
    let prefill = f.mode == Mode::Prefill;
    // Cached positions visible to this step.
    let kv_len = f.fresh("kv_len");
    match f.mode {
        Mode::Decode => {
            let one = f.index(1);
            f.line(&format!("{kv_len} = arith.addi %pos, {one} : index"));
        }
        Mode::Prefill => f.line(&format!("{kv_len} = arith.addi %pos, %rows : index")),
    }
    let cache_view = |f: &mut Func, cache: &str| {
        let name = f.fresh("past");
        let ty = format!(
            "memref<?x{kvh}x{hd}xf32, strided<[{}, {hd}, 1], offset: ?>>",
            kvh * hd
        );
        f.line(&format!(
            "{name} = memref.subview {cache}[%layer, 0, 0, 0] [1, {kv_len}, {kvh}, {hd}] [1, 1, 1, 1] : {} to {ty}",
            cache_type(cfg)
        ));
        Buf { name, ty }
    };
    let keys = cache_view(f, "%k_cache");
    let values = cache_view(f, "%v_cache");
    let kv_head = format!("h floordiv {group}");

    // scores[h, (t,) s] = Σ_d q[(t,) h, d] · k[s, h/group, d]
    let scores = {
        let name = f.fresh("scores");
        let (ty, line) = if prefill {
            let ty = format!("memref<{heads}x?x?xf32>");
            let line = format!("{name} = memref.alloc(%rows, {kv_len}) : {ty}");
            (ty, line)
        } else {
            let ty = format!("memref<{heads}x?xf32>");
            let line = format!("{name} = memref.alloca({kv_len}) : {ty}");
            (ty, line)
        };
        f.line(&line);
        let buf = Buf { name, ty };
        if prefill {
            f.heap.push(buf.clone());
        }
        buf
    };
    let zero = f.f32(0.0);
    let key_index: [&str; 3] = ["s", &kv_head, "d"];
    if prefill {
        // scores[h] = Q_h · K_gᵀ  ([T, hd] · [hd, s]), one 2-D product per
        // query head, which kernel selection hands to the threaded GEMM.
        per_head(f, cfg, |f, h, g| {
            let q_h = head_rows(f, q_rot, h, heads, hd);
            let k_g = head_rows(f, &keys, g, kvh, hd);
            let s_h = head_scores(f, &scores, h, &kv_len);
            multiply_accumulate(
                f,
                (&["t", "s", "d"], &["d"]),
                [(&q_h, &["t", "d"]), (&k_g, &["s", "d"])],
                (&s_h, &["t", "s"]),
                &zero,
            );
        });
    } else {
        f.fill(&scores, &zero);
        f.generic(
            &["h", "s", "d"],
            &["d"],
            &[(q_rot, &["h", "d"]), (&keys, &key_index)],
            &[(&scores, &["h", "s"])],
            |f, a| {
                let p = f.bin_reassoc("mulf", &a[0], &a[1]);
                f.bin_reassoc("addf", &a[2], &p)
            },
        );
    }
    softmax(f, &scores, heads, 1.0 / (hd as f64).sqrt());

    // out[(t,) h, d] = Σ_s p[h, (t,) s] · v[s, h/group, d].
    let value_index: [&str; 3] = ["s", &kv_head, "d"];
    if prefill {
        // out_h = P_h · V_g  ([T, s] · [s, hd]), per query head as above.
        per_head(f, cfg, |f, h, g| {
            let p_h = head_scores(f, &scores, h, &kv_len);
            let v_g = head_rows(f, &values, g, kvh, hd);
            let out_h = head_rows(f, out, h, heads, hd);
            multiply_accumulate(
                f,
                (&["t", "d", "s"], &["s"]),
                [(&p_h, &["t", "s"]), (&v_g, &["s", "d"])],
                (&out_h, &["t", "d"]),
                &zero,
            );
        });
    } else {
        // d innermost, so that the loop over a value row is contiguous.
        multiply_accumulate(
            f,
            (&["h", "s", "d"], &["s"]),
            [(&scores, &["h", "s"]), (&values, &value_index)],
            (out, &["h", "d"]),
            &zero,
        );
    }
}

/// `body(f, h, g)` inside `scf.for h in 0..heads`, with `g = h / group` the
/// head's K/V head (prefill).
pub(super) fn per_head(f: &mut Func, cfg: &ModelConfig, body: impl FnOnce(&mut Func, &str, &str)) {
    let (c0, c1) = (f.index(0), f.index(1));
    let heads = f.index(cfg.n_heads);
    let group = f.index(cfg.group());
    let h = f.fresh("h");
    f.line(&format!("scf.for {h} = {c0} to {heads} step {c1} {{"));
    let g = f.fresh("g");
    f.line(&format!("  {g} = arith.divui {h}, {group} : index"));
    body(f, &h, &g);
    f.line("}");
}

/// Rows `[R, hd]` of head `head` in `buf` (`[R, heads, hd]`, unit inner stride).
pub(super) fn head_rows(f: &mut Func, buf: &Buf, head: &str, heads: usize, hd: usize) -> Buf {
    let name = f.fresh("head");
    let rows = f.fresh("n");
    let c0 = f.index(0);
    f.line(&format!(
        "{rows} = memref.dim {}, {c0} : {}",
        buf.name, buf.ty
    ));
    let ty = format!(
        "memref<?x{hd}xf32, strided<[{}, 1], offset: ?>>",
        heads * hd
    );
    f.line(&format!(
        "{name} = memref.subview {}[0, {head}, 0] [{rows}, 1, {hd}] [1, 1, 1] : {} to {ty}",
        buf.name, buf.ty
    ));
    Buf { name, ty }
}

/// Head `head`'s `[T, s]` slice of the prefill `scores` (`[H, T, s]`).
pub(super) fn head_scores(f: &mut Func, scores: &Buf, head: &str, kv_len: &str) -> Buf {
    let name = f.fresh("head_scores");
    let rows = f.rows.clone().expect("prefill rows");
    let ty = "memref<?x?xf32, strided<[?, 1], offset: ?>>".to_string();
    f.line(&format!(
        "{name} = memref.subview {}[{head}, 0, 0] [1, {rows}, {kv_len}] [1, 1, 1] : {} to {ty}",
        scores.name, scores.ty
    ));
    Buf { name, ty }
}

/// In place over the last dim of `scores` ([H, s] or [H, T, s]):
/// p = softmax(scale · scores), with positions s > pos + t masked out in
/// prefill.
pub(super) fn softmax(f: &mut Func, scores: &Buf, heads: usize, scale: f64) {
    let prefill = f.mode == Mode::Prefill;
    let (dims, row): (Vec<&str>, Vec<&str>) = if prefill {
        (vec!["h", "t", "s"], vec!["h", "t"])
    } else {
        (vec!["h", "s"], vec!["h"])
    };
    let row_buf = |f: &mut Func, hint: &str| {
        let name = f.fresh(hint);
        let (ty, line) = if prefill {
            let ty = format!("memref<{heads}x?xf32>");
            (ty.clone(), format!("{name} = memref.alloc(%rows) : {ty}"))
        } else {
            let ty = format!("memref<{heads}xf32>");
            (ty.clone(), format!("{name} = memref.alloca() : {ty}"))
        };
        f.line(&line);
        let buf = Buf { name, ty };
        if prefill {
            f.heap.push(buf.clone());
        }
        buf
    };
    let scale_c = f.f32(scale as f32);
    let neg_inf = f.f32(f32::NEG_INFINITY);
    let zero = f.f32(0.0);
    // In prefill, `visible` is s ≤ pos + t.
    let visible = |f: &mut Func| -> Option<String> {
        if !prefill {
            return None;
        }
        let t = f.linalg_index(1);
        let s = f.linalg_index(2);
        let last = f.fresh("i");
        f.line(&format!("  {last} = arith.addi %pos, {t} : index"));
        let ok = f.fresh("ok");
        f.line(&format!("  {ok} = arith.cmpi ule, {s}, {last} : index"));
        Some(ok)
    };

    // row_max = max_s scale·scores. `maxnumf`, not `maximumf`: LLVM vectorizes
    // its reduction (a NaN score still reaches the output through the exp).
    let row_max = row_buf(f, "row_max");
    f.fill(&row_max, &neg_inf);
    f.generic(
        &dims,
        &["s"],
        &[(scores, &dims)],
        &[(&row_max, &row)],
        |f, a| {
            let scaled = f.bin("mulf", &a[0], &scale_c);
            let candidate = match visible(f) {
                Some(ok) => {
                    let v = f.fresh("v");
                    f.line(&format!(
                        "  {v} = arith.select {ok}, {scaled}, {neg_inf} : f32"
                    ));
                    v
                }
                None => scaled,
            };
            f.bin("maxnumf", &a[1], &candidate)
        },
    );
    // scores = exp(scale·scores − row_max)  (0 where masked)
    f.generic(
        &dims,
        &[],
        &[(&row_max, &row)],
        &[(scores, &dims)],
        |f, a| {
            let scaled = f.bin("mulf", &a[1], &scale_c);
            let shifted = f.bin("subf", &scaled, &a[0]);
            let e = exp_f32(f, &shifted);
            match visible(f) {
                Some(ok) => {
                    let v = f.fresh("v");
                    f.line(&format!("  {v} = arith.select {ok}, {e}, {zero} : f32"));
                    v
                }
                None => e,
            }
        },
    );
    // row_sum = Σ_s scores; scores /= row_sum
    let row_sum = row_buf(f, "row_sum");
    f.fill(&row_sum, &zero);
    f.generic(
        &dims,
        &["s"],
        &[(scores, &dims)],
        &[(&row_sum, &row)],
        |f, a| f.bin("addf", &a[1], &a[0]),
    );
    f.generic(
        &dims,
        &[],
        &[(&row_sum, &row)],
        &[(scores, &dims)],
        |f, a| f.bin("divf", &a[1], &a[0]),
    );
}
