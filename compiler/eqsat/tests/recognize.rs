//! Every shape the built-in rules must turn into a kernel call.

mod common;

use std::collections::BTreeSet;

use common::*;
use ditto_eqsat::{Init, Kernel, RuleSet, Trans::*};

fn kernel(text: &str) -> Kernel {
    let sel = run(text);
    let trace = sel.trace();
    sel.kernel
        .unwrap_or_else(|| panic!("no kernel for {text}\n{trace}"))
}

/// (term, expected kernel, a rule that must have fired)
fn cases() -> Vec<(String, Kernel, &'static str)> {
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

#[test]
fn recognizes_every_case() {
    for (text, want, rule) in cases() {
        let sel = run(&text);
        assert_eq!(sel.kernel.as_ref(), Some(&want), "{text}\n{}", sel.trace());
        // Size guard (not a timing): the built-ins stay small on real ops.
        assert!(
            sel.iterations <= 8 && sel.egraph_nodes < 100,
            "{}",
            sel.trace()
        );
        assert!(
            sel.rules_fired().contains(&rule),
            "{rule} did not fire for {text}\n{}",
            sel.trace()
        );
    }
}

#[test]
fn every_builtin_rule_is_exercised() {
    let mut fired = BTreeSet::new();
    for (text, _, _) in cases() {
        for r in run(&text).rules_fired() {
            fired.insert(r.to_string());
        }
    }
    for rule in RuleSet::builtin().rules() {
        assert!(
            fired.contains(&rule.name),
            "no positive test fires {}",
            rule.name
        );
    }
}

#[test]
fn dims_and_buffers_are_names_not_positions() {
    // Other dim numbering and buffer names: nothing depends on `d0`/`d1`.
    let k = kernel("(gen (ix d3) (acc (fill 0.0) (sum (ix d7) (* (read %arg0 (ix d3 d7)) (read %12 (ix d7))))))");
    assert_eq!(k, gemv(1.0, "%arg0", N, "%12", 0.0, Init::Zero));
}

#[test]
fn extracted_term_is_the_kernel_call() {
    let sel = run(&format!(
        "(gen (ix d0) (+ (acc (fill 0) {GEMV_SUM}) (read %b (ix d0))))"
    ));
    assert_eq!(ditto_eqsat::pretty(&sel.best), "(blas.gemv 1 %w n %x 1 %b)");
    assert_eq!(
        sel.kernel.unwrap().to_string(),
        "sgemv(alpha=1, A=%w, trans=n, x=%x, beta=1, y=copy(%b))"
    );
}
