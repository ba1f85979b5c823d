//! The rule-file format: built-in files, user files, and error reporting.

mod common;

use std::path::PathBuf;

use common::*;
use ditto_eqsat::{
    select, select_with, Diagnostic, Init, Limits, RuleError, RuleSet, SelectOptions, Stop, Term,
    Trans::*,
};

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/rules/example.rules")
}

fn builtin_plus_example() -> RuleSet {
    let mut rules = RuleSet::builtin();
    rules
        .extend(RuleSet::from_file(example_path()).expect("example.rules parses"))
        .expect("no name clashes with the built-ins");
    rules
}

/// Parses `text`, expecting failure, and returns the diagnostics.
fn errors(text: &str) -> Vec<Diagnostic> {
    match RuleSet::parse("user.rules", text) {
        Ok(set) => panic!("parsed {} rule(s) from bad text:\n{text}", set.len()),
        Err(e) => {
            let shown = e.to_string();
            for d in e.diagnostics() {
                assert!(shown.contains(&d.message));
            }
            e.diagnostics().to_vec()
        }
    }
}

fn one_error(text: &str) -> Diagnostic {
    let mut d = errors(text);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.remove(0)
}

#[test]
fn builtin_files_parse_and_every_rule_is_documented() {
    let rules = RuleSet::builtin();
    assert!(rules.len() >= 17, "{}", rules.len());
    for (file, text) in ditto_eqsat::ruleset::BUILTIN_FILES {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("(rule ") {
                assert!(
                    i > 0 && lines[i - 1].starts_with(";;"),
                    "{file}:{}: rule without a comment stating its identity",
                    i + 1
                );
            }
        }
    }
    let r = rules.get("gemv-n").unwrap();
    assert_eq!(r.file, "builtin/gemv.rules");
    assert_eq!(r.conditions.len(), 3);
    assert_eq!(
        r.conditions[1].to_string(),
        "(distinct ?i ?k)",
        "conditions keep their order"
    );
}

#[test]
fn example_file_adds_fill_init() {
    let rules = builtin_plus_example();
    let text = format!("(gen (ix d0) (acc (fill 1.5) {GEMV_SUM}))");
    let sel = run_with(&text, &rules);
    assert_eq!(
        sel.kernel,
        Some(gemv(1.0, "%w", N, "%x", 1.0, Init::Fill(1.5)))
    );
    assert!(sel.rules_fired().contains(&"gemv-absorb-fill"));
    let text = format!("(gen (ix d0 d1) (acc (fill -1) {GEMM_NT_SUM}))");
    assert_eq!(
        run_with(&text, &rules).kernel,
        Some(gemm(1.0, "%x", N, "%w", T, 1.0, Init::Fill(-1.0)))
    );
    // The built-ins alone leave both alone (tests/reject.rs has the GEMV one).
    assert_eq!(run(&text).kernel, None);
}

#[test]
fn example_file_adds_division_by_a_constant() {
    let rules = builtin_plus_example();
    // Prefill attention scores: S[t,s] = Σ_d Q[t,d]·K[s,d] / 8.
    let text = "(gen (ix d0 d1) (/ (acc (fill 0) (sum (ix d2) (* (read %q (ix d0 d2)) (read %k (ix d1 d2))))) 8))";
    assert_eq!(
        run_with(text, &rules).kernel,
        Some(gemm(0.125, "%q", N, "%k", T, 0.0, Init::Zero))
    );
    assert_eq!(run(text).kernel, None);
    // Division by zero is not turned into a scale.
    let text = format!("(gen (ix d0) (/ (acc (fill 0) {GEMV_SUM}) 0))");
    assert_eq!(run_with(&text, &rules).kernel, None);
}

#[test]
fn example_file_keeps_builtin_results() {
    let rules = builtin_plus_example();
    let text = format!("(gen (ix d0) (+ (acc (fill 0) {GEMV_SUM}) (read %b (ix d0))))");
    assert_eq!(
        run_with(&text, &rules).kernel,
        Some(gemv(1.0, "%w", N, "%x", 1.0, copy("%b")))
    );
}

#[test]
fn inline_user_rule_extends_builtins() {
    let mut rules = RuleSet::builtin();
    rules
        .extend(
            RuleSet::parse(
                "negate.rules",
                ";; out[ix] = -E   =   (-1)·gen(ix, E)\n\
                 (rule peel-negate (gen ?ix (neg ?e)) (tensor.scale -1 (gen ?ix ?e)))",
            )
            .unwrap(),
        )
        .unwrap();
    let text = format!("(gen (ix d0) (neg (acc (fill 0) {GEMV_SUM})))");
    let sel = run_with(&text, &rules);
    assert_eq!(sel.kernel, Some(gemv(-1.0, "%w", N, "%x", 0.0, Init::Zero)));
    assert_eq!(
        sel.rules_fired(),
        vec!["peel-negate", "gemv-n", "gemv-absorb-scale"]
    );
}

#[test]
fn name_clash_with_builtin_is_an_error() {
    let mut rules = RuleSet::builtin();
    let n = rules.len();
    let user = RuleSet::parse(
        "mine.rules",
        "\n\n(rule gemv-n (gen ?ix (neg ?e)) (tensor.scale -1 (gen ?ix ?e)))",
    )
    .unwrap();
    let e = rules.extend(user).unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!((d.file.as_str(), d.line), ("mine.rules", 3));
    assert!(
        d.message.contains("already defined at builtin/gemv.rules:"),
        "{d}"
    );
    assert_eq!(rules.len(), n, "nothing added on error");
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let e = RuleSet::from_file("/nonexistent/dir/x.rules").unwrap_err();
    assert!(matches!(e, RuleError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/dir/x.rules"), "{e}");
}

#[test]
fn error_display_names_file_line_column_and_rule() {
    let d = one_error("; c\n(rule r1\n  (gen ?ix (foo ?e))\n  ?e)");
    assert_eq!(
        d.to_string(),
        "user.rules:3:12: error: in rule `r1`: unknown operator `foo`"
    );
}

#[test]
fn syntax_errors() {
    let d = one_error("(rule a (gen ?i ?b)\n  (fill 0)");
    assert_eq!((d.line, d.column, d.rule.as_deref()), (1, 1, None));
    assert!(d.message.contains("never closed"), "{d}");
    let d = one_error("(rule a (fill ?x) ?x))");
    assert_eq!((d.line, d.column), (1, 22));
    assert!(d.message.contains("unexpected `)`"), "{d}");
}

#[test]
fn shape_errors() {
    assert!(one_error("rule")
        .message
        .contains("expected `(rule NAME LHS RHS)`"));
    assert!(one_error("(rewrite a (fill ?x) ?x)")
        .message
        .contains("found `(rewrite ...)`"));
    assert!(one_error("(rule (a) (fill ?x) ?x)")
        .message
        .contains("plain word"));
    assert!(one_error("(rule ?a (fill ?x) ?x)")
        .message
        .contains("plain word"));
    let d = one_error("(rule a (fill ?x))");
    assert_eq!(d.rule.as_deref(), Some("a"));
    assert!(d.message.contains("right-hand side missing"), "{d}");
    assert!(one_error("(rule a (fill ?x) ?x (if) extra)")
        .message
        .contains("unexpected `extra`"));
    assert!(one_error("(rule a (fill ?x) ?x (when (is-number ?x)))")
        .message
        .contains("expected `(if PRED...)`"));
}

#[test]
fn pattern_errors() {
    assert!(one_error("(rule a (gen ?i) ?i)")
        .message
        .contains("operator `gen` takes exactly 2 operands, found 1"));
    assert!(one_error("(rule a (blas.gemv 1 ?A n ?x 0) ?A)")
        .message
        .contains("takes exactly 6 operands, found 5"));
    assert!(one_error("(rule a (acc fill ?s) ?s)")
        .message
        .contains("operator `fill` takes exactly 1 operand"));
    assert!(one_error("(rule a (?f ?x) ?x)")
        .message
        .contains("cannot be an operator"));
    assert!(one_error("(rule a ((fill 0) ?x) ?x)")
        .message
        .contains("operator must be a word"));
    assert!(one_error("(rule a (fill ()) 0)")
        .message
        .contains("empty list"));
    assert!(one_error("(rule a (fn ?f ?x) ?x)")
        .message
        .contains("`fn` needs a function name"));
    assert!(one_error("(rule a (fill ?) 0)")
        .message
        .contains("not a valid variable"));
    assert!(one_error("(rule a ?x (fill ?x))")
        .message
        .contains("bare variable"));
}

#[test]
fn unbound_variables() {
    let d = one_error("(rule a\n  (fill ?x)\n  (+ ?x ?y))");
    assert_eq!((d.line, d.column), (3, 9));
    assert!(
        d.message
            .contains("variable `?y` in the right-hand side is not bound"),
        "{d}"
    );
    let d = one_error("(rule a (fill ?x) ?x (if (is-number ?z)))");
    assert!(
        d.message
            .contains("variable `?z` in a condition is not bound"),
        "{d}"
    );
}

#[test]
fn predicate_errors() {
    let d = one_error("(rule a (fill ?x) ?x (if (is-vector ?x)))");
    assert!(d.message.contains("unknown predicate `is-vector`"), "{d}");
    assert!(
        d.message.contains("distinct, is-dim, is-buffer"),
        "lists the vocabulary: {d}"
    );
    assert!(one_error("(rule a (fill ?x) ?x (if (distinct ?x)))")
        .message
        .contains("at least 2"));
    assert!(one_error("(rule a (fill ?x) ?x (if (is-zero 0)))")
        .message
        .contains("takes pattern variables"));
    assert!(one_error("(rule a (fill ?x) ?x (if is-zero))")
        .message
        .contains("expected a predicate"));
}

#[test]
fn duplicate_names_in_one_file() {
    let d = one_error("(rule a (fill ?x) ?x)\n(rule a (neg ?x) ?x)");
    assert_eq!(d.line, 2);
    assert!(d.message.contains("already defined at line 1"), "{d}");
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let d = errors(
        "(rule good (fill ?x) ?x)\n\
         (rule bad1 (frob ?x) ?x)\n\
         (rule bad2 (fill ?x) ?y)\n\
         (rule bad3 (fill ?x) ?x (if (nope ?x)))\n",
    );
    let rules: Vec<_> = d
        .iter()
        .map(|d| (d.line, d.rule.clone().unwrap()))
        .collect();
    assert_eq!(
        rules,
        vec![(2, "bad1".into()), (3, "bad2".into()), (4, "bad3".into())]
    );
}

#[test]
fn limits_are_reported() {
    // Bias + vector-first needs several iterations; one is not enough.
    let text = "(gen (ix d0) (+ (acc (fill 0) (sum (ix d1) (* (read %x (ix d1)) (read %w (ix d0 d1))))) (read %b (ix d0))))";
    let term: Term = text.parse().unwrap();
    let opts = SelectOptions {
        limits: Limits {
            iterations: 1,
            ..Limits::default()
        },
        explain: false,
    };
    let sel = select_with(&term, &RuleSet::builtin(), &opts);
    assert_eq!(sel.stop, Stop::IterationLimit(1));
    assert!(sel.limit_hit());
    assert!(
        sel.trace().contains("iteration limit hit (1 iterations)"),
        "{}",
        sel.trace()
    );
    assert_eq!(sel.kernel, None);
    assert_eq!(sel.best, term);

    let opts = SelectOptions {
        limits: Limits {
            nodes: 10,
            ..Limits::default()
        },
        explain: false,
    };
    let sel = select_with(&term, &RuleSet::builtin(), &opts);
    assert!(
        matches!(sel.stop, Stop::NodeLimit(n) if n > 10),
        "{:?}",
        sel.stop
    );

    let sel = select(&term, &RuleSet::builtin());
    assert_eq!(sel.stop, Stop::Saturated);
    assert!(sel.kernel.is_some());
}

#[test]
fn explain_shows_the_rewrite_chain() {
    let text = format!("(gen (ix d0) (* (+ (acc (fill 0) {GEMV_SUM}) (read %b (ix d0))) 0.5))");
    let term: Term = text.parse().unwrap();
    let opts = SelectOptions {
        explain: true,
        ..SelectOptions::default()
    };
    let sel = select_with(&term, &RuleSet::builtin(), &opts);
    assert_eq!(sel.kernel, Some(gemv(0.5, "%w", N, "%x", 0.5, copy("%b"))));
    let explanation = sel.explanation.as_deref().expect("explanation requested");
    for rule in [
        "peel-scale",
        "peel-bias",
        "gemv-n",
        "gemv-absorb-add",
        "gemv-absorb-scale",
    ] {
        assert!(
            explanation.contains(rule),
            "{rule} missing from:\n{explanation}"
        );
    }
    assert!(!explanation.contains('"'), "{explanation}");
    let trace = sel.trace();
    assert!(trace.contains("saturated"), "{trace}");
    assert!(trace.contains("chosen: sgemv(alpha=0.5"), "{trace}");
    assert!(
        trace.contains("term:   (blas.gemv 0.5 %w n %x 0.5 %b)"),
        "{trace}"
    );
    assert!(trace.contains("rewrites from the input:"), "{trace}");
}

#[test]
fn malformed_kernel_from_a_user_rule_is_a_warning_not_a_kernel() {
    let mut rules = RuleSet::builtin();
    rules
        .extend(
            RuleSet::parse(
                "bad.rules",
                ";; wrong on purpose: ALPHA is not a number\n\
                 (rule scale-by-vector\n\
                   (gen (ix ?i) (* (acc (fill 0) (sum (ix ?k) (* (read ?A (ix ?i ?k)) (read ?x (ix ?k))))) (read ?s (ix ?i))))\n\
                   (blas.gemv ?s ?A n ?x 0 (fill 0)))",
            )
            .unwrap(),
        )
        .unwrap();
    let text = format!("(gen (ix d0) (* (acc (fill 0) {GEMV_SUM}) (read %s (ix d0))))");
    let term: Term = text.parse().unwrap();
    let sel = select(&term, &rules);
    assert_eq!(sel.kernel, None);
    assert_eq!(sel.best, term);
    assert_eq!(sel.warnings.len(), 1, "{:?}", sel.warnings);
    assert!(
        sel.warnings[0].contains("ALPHA must be a number"),
        "{:?}",
        sel.warnings
    );
}
