//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ditto_eqsat::{select, Init, Kernel, RuleSet, Selection, Term, Trans};

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
