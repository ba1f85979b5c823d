//! Shapes that are not a GEMV or GEMM: no kernel, and the term comes back unchanged.

mod common;

use common::*;

fn assert_rejected(what: &str, text: &str) {
    let sel = run(text); // also checks: unchanged term, no limit hit, no warnings
    assert!(
        sel.kernel.is_none(),
        "{what}: recognized {:?} in {text}\n{}",
        sel.kernel,
        sel.trace()
    );
}

#[test]
fn row_sum() {
    assert_rejected(
        "Σ_k A[i,k]",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (read %a (ix d0 d1)))))",
    );
}

#[test]
fn sum_of_squares() {
    assert_rejected(
        "Σ_k x[k]·x[k] into a 0-d output",
        "(gen (ix) (acc (fill 0) (sum (ix d0) (* (read %x (ix d0)) (read %x (ix d0))))))",
    );
    assert_rejected(
        "Σ_k x[k]·x[k] broadcast over i (RMS norm)",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %x (ix d1)) (read %x (ix d1))))))",
    );
}

#[test]
fn row_sum_of_squares() {
    assert_rejected(
        "Σ_k A[i,k]·A[i,k]",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %a (ix d0 d1)) (read %a (ix d0 d1))))))",
    );
}

#[test]
fn non_dim_indices() {
    assert_rejected(
        "attention scores with grouped KV heads",
        "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %q (ix d0 d2)) (read %K (ix d1 (floordiv d0 7) d2))))))",
    );
    assert_rejected(
        "shifted matrix read",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %a (ix d0 (+ d1 1))) (read %x (ix d1))))))",
    );
    assert_rejected(
        "constant vector index",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %a (ix d0 d1)) (read %x (ix 0))))))",
    );
}

#[test]
fn reduced_dim_in_output() {
    assert_rejected(
        "GEMV reducing over the output dim",
        "(gen (ix d0) (acc (fill 0) (sum (ix d0) (* (read %a (ix d0 d0)) (read %x (ix d0))))))",
    );
    assert_rejected(
        "GEMM reducing over the column dim",
        "(gen (ix d0 d1) (acc (fill 0) (sum (ix d1) (* (read %a (ix d0 d1)) (read %b (ix d1 d1))))))",
    );
    assert_rejected(
        "vector read with the output dim (a scaled row sum, not a product)",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %a (ix d0 d1)) (read %x (ix d0))))))",
    );
}

#[test]
fn opaque_functions() {
    assert_rejected(
        "exp inside the reduction",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (fn exp (* (read %a (ix d0 d1)) (read %x (ix d1)))))))",
    );
    assert_rejected(
        "exp of a GEMV",
        &format!("(gen (ix d0) (fn exp (acc (fill 0) {GEMV_SUM})))"),
    );
    assert_rejected(
        "opaque body",
        "(gen (ix d0 d1) (+ opaque (read %b (ix d0 d1))))",
    );
}

#[test]
fn contractions_that_are_not_matmuls() {
    assert_rejected(
        "batched matmul (3-index output)",
        "(gen (ix d0 d1 d2) (acc (fill 0) (sum (ix d3) (* (read %a (ix d0 d1 d3)) (read %b (ix d0 d3 d2))))))",
    );
    assert_rejected(
        "two reduction dims",
        "(gen (ix d0) (acc (fill 0) (sum (ix d1 d2) (* (read %a (ix d0 d1 d2)) (read %x (ix d1 d2))))))",
    );
    assert_rejected(
        "outer product (no reduction)",
        "(gen (ix d0 d1) (* (read %a (ix d0)) (read %b (ix d1))))",
    );
    assert_rejected(
        "element-wise product of matrices summed along k",
        "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %a (ix d0 d2)) (read %b (ix d0 d2))))))",
    );
}

#[test]
fn non_zero_fill_init() {
    assert_rejected(
        "GEMV into an output filled with 1",
        &format!("(gen (ix d0) (acc (fill 1) {GEMV_SUM}))"),
    );
}

#[test]
fn epilogues_that_cannot_be_folded() {
    assert_rejected(
        "per-row scale (not a constant)",
        &format!("(gen (ix d0) (* (acc (fill 0) {GEMV_SUM}) (read %s (ix d0))))"),
    );
    assert_rejected(
        "max with a bias (not an add)",
        &format!("(gen (ix d0) (max (acc (fill 0) {GEMV_SUM}) (read %b (ix d0))))"),
    );
    assert_rejected(
        "accumulating into a transposed copy",
        &format!("(gen (ix d0 d1) (acc (read %c (ix d1 d0)) {GEMM_NT_SUM}))"),
    );
    assert_rejected(
        "bias broadcast along the rows of a GEMM (not a same-shape copy)",
        &format!("(gen (ix d0 d1) (+ (acc (fill 0) {GEMM_NT_SUM}) (read %b (ix d1))))"),
    );
    assert_rejected(
        "two additions of existing content (needs two passes)",
        &format!("(gen (ix d0) (+ (acc (read %y (ix d0)) {GEMV_SUM}) (read %b (ix d0))))"),
    );
}

#[test]
fn plain_elementwise_ops_are_left_alone() {
    assert_rejected(
        "bias add",
        "(gen (ix d0) (+ (read %a (ix d0)) (read %b (ix d0))))",
    );
    assert_rejected("copy", "(gen (ix d0 d1) (read %a (ix d0 d1)))");
    assert_rejected("scale", "(gen (ix d0) (* (read %a (ix d0)) 0.5))");
    assert_rejected(
        "silu",
        "(gen (ix d0) (/ (read %x (ix d0)) (+ 1 (fn exp (neg (read %x (ix d0)))))))",
    );
}
