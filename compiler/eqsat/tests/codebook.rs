//! Products with a codebook-quantized matrix become `cb.gemv`/`cb.gemm`, with
//! epilogues folded in. (Whether they then run fused or dequantize-then-BLAS
//! is an option of the kernel lowering, tested in
//! lit-tests/passes/select-kernels-codebook.mlir.)

use ditto_eqsat::{select, CodebookMatrix, Init, Kernel, RuleSet, Term};

const W: &str = "(cb.matrix %q %cb 4 256)";

fn gemv_term(epilogue: Option<&str>) -> Term {
    let product =
        format!("(acc (fill 0) (sum (ix d1) (* (read {W} (ix d0 d1)) (read %x (ix d1)))))");
    let body = match epilogue {
        Some(bias) => format!("(+ {product} (read {bias} (ix d0)))"),
        None => product,
    };
    format!("(gen (ix d0) {body})").parse().unwrap()
}

fn weight() -> CodebookMatrix {
    CodebookMatrix {
        indices: "%q".into(),
        codebooks: "%cb".into(),
        bits: 4,
        block: 256,
    }
}

#[test]
fn codebook_gemv_is_recognized() {
    let selection = select(&gemv_term(None), &RuleSet::builtin());
    assert_eq!(
        selection.kernel,
        Some(Kernel::CodebookGemv {
            alpha: 1.0,
            w: weight(),
            x: "%x".into(),
            beta: 0.0,
            y: Init::Zero,
        })
    );
}

#[test]
fn bias_add_folds_into_the_codebook_gemv() {
    let selection = select(&gemv_term(Some("%b")), &RuleSet::builtin());
    assert_eq!(
        selection.kernel,
        Some(Kernel::CodebookGemv {
            alpha: 1.0,
            w: weight(),
            x: "%x".into(),
            beta: 1.0,
            y: Init::Copy("%b".into()),
        })
    );
}

#[test]
fn bias_epilogue_folds_into_the_fused_gemv() {
    let selection = select(&gemv_term(Some("%b")), &RuleSet::builtin());
    assert!(matches!(
        selection.kernel,
        Some(Kernel::CodebookGemv {
            beta: 1.0,
            y: Init::Copy(ref b),
            ..
        }) if b == "%b"
    ));
}

#[test]
fn prefill_gemm_with_a_codebook_matrix() {
    let term: Term = format!(
        "(gen (ix d0 d1) (acc (fill 0) (sum (ix d2) (* (read %x (ix d0 d2)) (read {W} (ix d1 d2))))))"
    )
    .parse()
    .unwrap();
    let selection = select(&term, &RuleSet::builtin());
    assert_eq!(
        selection.kernel,
        Some(Kernel::CodebookGemm {
            alpha: 1.0,
            x: "%x".into(),
            w: weight(),
            beta: 0.0,
            c: Init::Zero,
        })
    );
}

#[test]
fn a_transposed_codebook_read_is_not_a_codebook_kernel() {
    // Ŵ is stored [N, K]; reading it as [k, i] is not what the kernels compute.
    let term: Term = format!(
        "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read {W} (ix d1 d0)) (read %x (ix d1))))))"
    )
    .parse()
    .unwrap();
    assert_eq!(select(&term, &RuleSet::builtin()).kernel, None);
}

#[test]
fn a_malformed_scheme_is_not_a_kernel() {
    let rules = RuleSet::builtin();
    for bad in ["(cb.matrix %q %cb 7 256)", "(cb.matrix %q %cb 4 3)"] {
        let term: Term = format!(
            "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read {bad} (ix d0 d1)) (read %x (ix d1))))))"
        )
        .parse()
        .unwrap();
        assert_eq!(select(&term, &rules).kernel, None, "{bad}");
    }
}
