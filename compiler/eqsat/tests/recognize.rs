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

#[test]
fn recognizes_every_case() {
    for (text, want, rule) in cases().into_iter().chain(codebook_cases()) {
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
    for (text, _, _) in cases().into_iter().chain(codebook_cases()) {
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
