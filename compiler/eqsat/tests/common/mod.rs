//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ditto_eqsat::{select, Init, Kernel, RuleSet, Selection, Term, Trans, Trans::*};

/// Runs the built-in rules on a term given as text.
pub fn run(text: &str) -> Selection {
    run_with(text, &RuleSet::builtin())
}

/// Runs `rules` on a term given as text, checking invariants every run must keep.
pub fn run_with(text: &str, rules: &RuleSet) -> Selection {
    let term: Term = text
        .parse()
        .unwrap_or_else(|e| panic!("bad test term {text}: {e}"));
    let sel = select(&term, rules);
    assert!(!sel.limit_hit(), "limit hit on {text}: {}", sel.trace());
    assert!(
        sel.warnings.is_empty(),
        "warnings on {text}: {:?}",
        sel.warnings
    );
    if sel.kernel.is_none() {
        assert_eq!(sel.best, term, "no kernel, but the term changed");
        assert_eq!(sel.cost, sel.input_cost);
    } else {
        assert!(sel.cost < sel.input_cost);
    }
    sel
}

pub fn gemv(alpha: f32, a: &str, trans: Trans, x: &str, beta: f32, y: Init) -> Kernel {
    Kernel::Gemv {
        alpha,
        a: a.into(),
        trans,
        x: x.into(),
        beta,
        y,
    }
}

pub fn gemm(alpha: f32, a: &str, ta: Trans, b: &str, tb: Trans, beta: f32, c: Init) -> Kernel {
    Kernel::Gemm {
        alpha,
        a: a.into(),
        ta,
        b: b.into(),
        tb,
        beta,
        c,
    }
}

pub fn copy(b: &str) -> Init {
    Init::Copy(b.into())
}

/// `Σ_{d1} A[d0,d1]·x[d1]`, the body of a row-major GEMV.
pub const GEMV_SUM: &str = "(sum (ix d1) (* (read %w (ix d0 d1)) (read %x (ix d1))))";

/// `Σ_{d2} X[d0,d2]·W[d1,d2]`, the body of `X·Wᵀ`.
pub const GEMM_NT_SUM: &str = "(sum (ix d2) (* (read %x (ix d0 d2)) (read %w (ix d1 d2))))";

/// (term, expected kernel, a rule that must have fired)
pub fn cases() -> Vec<(String, Kernel, &'static str)> {
    let s = GEMV_SUM;
    let g = GEMM_NT_SUM;
    vec![
        // 1. GEMV, row-major.
        (
            format!("(gen (ix d0) (acc (fill 0) {s}))"),
            gemv(1.0, "%w", N, "%x", 0.0, Init::Zero),
            "gemv-n",
        ),
        // 2. GEMV, transposed layout.
        (
            "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %w (ix d1 d0)) (read %x (ix d1))))))".into(),
            gemv(1.0, "%w", T, "%x", 0.0, Init::Zero),
            "gemv-t",
        ),
        // 3. Vector operand first, both layouts.
        (
            "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %x (ix d1)) (read %w (ix d0 d1))))))".into(),
            gemv(1.0, "%w", N, "%x", 0.0, Init::Zero),
            "matrix-operand-first",
        ),
        (
            "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %x (ix d1)) (read %w (ix d1 d0))))))".into(),
            gemv(1.0, "%w", T, "%x", 0.0, Init::Zero),
            "matrix-operand-first",
        ),
        // 4. Accumulating into existing content (here: the output itself).
        (
            format!("(gen (ix d0) (acc (read %y (ix d0)) {s}))"),
            gemv(1.0, "%w", N, "%x", 1.0, copy("%y")),
            "peel-accumulate",
        ),
        // 5. Bias epilogue, both operand orders.
        (
            format!("(gen (ix d0) (+ (acc (fill 0) {s}) (read %b (ix d0))))"),
            gemv(1.0, "%w", N, "%x", 1.0, copy("%b")),
            "peel-bias",
        ),
        (
            format!("(gen (ix d0) (+ (read %b (ix d0)) (acc (fill 0) {s})))"),
            gemv(1.0, "%w", N, "%x", 1.0, copy("%b")),
            "peel-bias-first",
        ),
        // 6. Scale epilogue, both operand orders, and a constant expression.
        (
            format!("(gen (ix d0) (* (acc (fill 0) {s}) 0.125))"),
            gemv(0.125, "%w", N, "%x", 0.0, Init::Zero),
            "peel-scale",
        ),
        (
            format!("(gen (ix d0) (* -2 (acc (fill 0) {s})))"),
            gemv(-2.0, "%w", N, "%x", 0.0, Init::Zero),
            "peel-scale-first",
        ),
        (
            format!("(gen (ix d0) (* (acc (fill 0) {s}) (/ 1 8)))"),
            gemv(0.125, "%w", N, "%x", 0.0, Init::Zero),
            "gemv-absorb-scale",
        ),
        // Scale, then bias:  0.5·(A·x) + b.
        (
            format!("(gen (ix d0) (+ (* (acc (fill 0) {s}) 0.5) (read %b (ix d0))))"),
            gemv(0.5, "%w", N, "%x", 1.0, copy("%b")),
            "gemv-absorb-add",
        ),
        // Bias, then scale:  0.5·(A·x + b).
        (
            format!("(gen (ix d0) (* (+ (acc (fill 0) {s}) (read %b (ix d0))) 0.5))"),
            gemv(0.5, "%w", N, "%x", 0.5, copy("%b")),
            "gemv-absorb-scale",
        ),
        // Accumulate, then scale:  2·(y + A·x).
        (
            format!("(gen (ix d0) (* 2 (acc (read %y (ix d0)) {s})))"),
            gemv(2.0, "%w", N, "%x", 2.0, copy("%y")),
            "gemv-absorb-scale",
        ),
        // Transposed GEMV with the vector first and a bias (decode: x·W with W [k, i]).
        (
            "(gen (ix d0) (+ (acc (fill 0) (sum (ix d1) (* (read %h (ix d1)) (read %w (ix d1 d0))))) (read %bias (ix d0))))".into(),
            gemv(1.0, "%w", T, "%h", 1.0, copy("%bias")),
            "gemv-t",
        ),
        // 7. GEMM, all four layouts.
        (
            "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %a (ix d0 d2)) (read %b (ix d2 d1))))))".into(),
            gemm(1.0, "%a", N, "%b", N, 0.0, Init::Zero),
            "gemm-nn",
        ),
        (
            format!("(gen (ix d0 d1) (acc (fill 0) {g}))"),
            gemm(1.0, "%x", N, "%w", T, 0.0, Init::Zero),
            "gemm-nt",
        ),
        (
            "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %a (ix d2 d0)) (read %b (ix d2 d1))))))".into(),
            gemm(1.0, "%a", T, "%b", N, 0.0, Init::Zero),
            "gemm-tn",
        ),
        (
            "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %a (ix d2 d0)) (read %b (ix d1 d2))))))".into(),
            gemm(1.0, "%a", T, "%b", T, 0.0, Init::Zero),
            "gemm-tt",
        ),
        // GEMM with the operands in the other order.
        (
            "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %w (ix d1 d2)) (read %x (ix d0 d2))))))".into(),
            gemm(1.0, "%x", N, "%w", T, 0.0, Init::Zero),
            "row-operand-first",
        ),
        (
            "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %b (ix d2 d1)) (read %a (ix d2 d0))))))".into(),
            gemm(1.0, "%a", T, "%b", N, 0.0, Init::Zero),
            "row-operand-first-transposed",
        ),
        // GEMM epilogues: bias (same-shape), accumulate, scale, scale + bias.
        (
            format!("(gen (ix d0 d1) (+ (acc (fill 0) {g}) (read %r (ix d0 d1))))"),
            gemm(1.0, "%x", N, "%w", T, 1.0, copy("%r")),
            "gemm-absorb-add",
        ),
        (
            format!("(gen (ix d0 d1) (acc (read %c (ix d0 d1)) {g}))"),
            gemm(1.0, "%x", N, "%w", T, 1.0, copy("%c")),
            "peel-accumulate",
        ),
        (
            format!("(gen (ix d0 d1) (* (acc (fill 0) {g}) 0.125))"),
            gemm(0.125, "%x", N, "%w", T, 0.0, Init::Zero),
            "gemm-absorb-scale",
        ),
        (
            format!("(gen (ix d0 d1) (+ (read %r (ix d0 d1)) (* 0.125 (acc (fill 0) {g}))))"),
            gemm(0.125, "%x", N, "%w", T, 1.0, copy("%r")),
            "gemm-absorb-add",
        ),
    ]
}

/// The codebook matrix of the codebook cases.
pub const CB_W: &str = "(cb.matrix %q %cb 4 256)";

/// A fused codebook GEMV as [`Kernel::CodebookGemv`].
pub fn cb_gemv(alpha: f32, beta: f32, y: Init) -> Kernel {
    Kernel::CodebookGemv {
        alpha,
        w: cb_weight(),
        x: "%x".into(),
        beta,
        y,
    }
}

/// A fused codebook GEMM `X·Ŵᵀ` as [`Kernel::CodebookGemm`].
pub fn cb_gemm(alpha: f32, beta: f32, c: Init) -> Kernel {
    Kernel::CodebookGemm {
        alpha,
        x: "%x".into(),
        w: cb_weight(),
        beta,
        c,
    }
}

fn cb_weight() -> ditto_eqsat::CodebookMatrix {
    ditto_eqsat::CodebookMatrix {
        indices: "%q".into(),
        codebooks: "%cb".into(),
        bits: 4,
        block: 256,
    }
}

/// Products with a codebook matrix (kept apart from [`cases`], whose
/// kernels the semantic tests evaluate on dense buffers). With the built-in
/// rules the fused kernels win; Ditto's recipe rules fire alongside.
pub fn codebook_cases() -> Vec<(String, Kernel, &'static str)> {
    let s = format!("(sum (ix d1) (* (read {CB_W} (ix d0 d1)) (read %x (ix d1))))");
    let g = format!("(sum (ix d2) (* (read %x (ix d0 d2)) (read {CB_W} (ix d1 d2))))");
    vec![
        (
            format!("(gen (ix d0) (acc (fill 0) {s}))"),
            cb_gemv(1.0, 0.0, Init::Zero),
            "cb-gemv",
        ),
        (
            format!("(gen (ix d0) (+ (acc (fill 0) {s}) (read %b (ix d0))))"),
            cb_gemv(1.0, 1.0, copy("%b")),
            "cb-gemv-absorb-add",
        ),
        (
            format!("(gen (ix d0) (* 2 (acc (fill 0) {s})))"),
            cb_gemv(2.0, 0.0, Init::Zero),
            "cb-gemv-absorb-scale",
        ),
        (
            format!("(gen (ix d0 d1) (acc (fill 0) {g}))"),
            cb_gemm(1.0, 0.0, Init::Zero),
            "cb-gemm",
        ),
        (
            format!("(gen (ix d0 d1) (+ (read %c0 (ix d0 d1)) (acc (fill 0) {g})))"),
            cb_gemm(1.0, 1.0, copy("%c0")),
            "cb-gemm-absorb-add",
        ),
        (
            format!("(gen (ix d0 d1) (* (acc (fill 0) {g}) 0.5))"),
            cb_gemm(0.5, 0.0, Init::Zero),
            "cb-gemm-absorb-scale",
        ),
    ]
}
