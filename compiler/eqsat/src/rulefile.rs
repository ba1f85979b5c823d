//! The rule-file format.
//!
//! ```text
//! ;; comment: the identity the rule implements
//! (rule NAME
//!   LHS                  ; a pattern: operators of the language, ?variables, symbols, numbers
//!   RHS                  ; a pattern over the variables bound by LHS
//!   (if PRED...))        ; optional: predicates from the vocabulary, all must hold
//! ```
//!
//! Everything is checked when the file is read: syntax, operator names and
//! arities, variables used in RHS or conditions but not bound by LHS, predicate
//! names and argument counts, and duplicate rule names. Every problem is
//! reported with file, line, column and rule name; reading goes on with the
//! next rule, so one pass shows all problems of a file.

use std::collections::{BTreeSet, HashMap};

use egg::{ConditionalApplier, ENodeOrVar, FromOp, Id, Pattern, PatternAst, RecExpr, Rewrite, Var};

use crate::error::Diagnostic;
use crate::lang::{arity, Lang};
use crate::predicate::{Conditions, Predicate, VOCABULARY};
use crate::ruleset::Rule;
use crate::sexp::{parse_all, Pos, Sexp};

const RULE_SHAPE: &str = "expected `(rule NAME LHS RHS)` or `(rule NAME LHS RHS (if PRED...))`";

struct Ctx<'a> {
    file: &'a str,
    rule: Option<String>,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            rule: self.rule.clone(),
            message: message.into(),
        });
    }
}

/// Parses rule-file text. `file` names the text in diagnostics.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let mut ctx = Ctx {
        file,
        rule: None,
        diags: Vec::new(),
    };
    let forms = match parse_all(text) {
        Ok(forms) => forms,
        Err(e) => {
            ctx.error(e.pos, e.message);
            return Err(ctx.diags);
        }
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for form in &forms {
        ctx.rule = None;
        if let Some(rule) = parse_rule(&mut ctx, form) {
            if let Some(first) = seen.get(&rule.name) {
                let msg = format!("a rule with this name is already defined at line {first}");
                ctx.error(form.pos(), msg);
            } else {
                seen.insert(rule.name.clone(), rule.line);
                rules.push(rule);
            }
        }
    }
    if ctx.diags.is_empty() {
        Ok(rules)
    } else {
        Err(ctx.diags)
    }
}

fn parse_rule(ctx: &mut Ctx, form: &Sexp) -> Option<Rule> {
    let Sexp::List(items, pos) = form else {
        ctx.error(form.pos(), format!("{RULE_SHAPE}, found `{form}`"));
        return None;
    };
    if items.first().and_then(Sexp::atom) != Some("rule") {
        ctx.error(*pos, format!("{RULE_SHAPE}, found `{}`", head(form)));
        return None;
    }
    let name = match items.get(1) {
        Some(Sexp::Atom(name, _)) if !name.starts_with('?') => name.clone(),
        Some(other) => {
            ctx.error(
                other.pos(),
                format!("a rule name must be a plain word, found `{other}`"),
            );
            return None;
        }
        None => {
            ctx.error(*pos, format!("{RULE_SHAPE}: the rule has no name"));
            return None;
        }
    };
    ctx.rule = Some(name.clone());
    let (Some(lhs_sexp), Some(rhs_sexp)) = (items.get(2), items.get(3)) else {
        ctx.error(
            *pos,
            format!("{RULE_SHAPE}: left- or right-hand side missing"),
        );
        return None;
    };
    if let Some(extra) = items.get(5) {
        ctx.error(
            extra.pos(),
            format!("{RULE_SHAPE}: unexpected `{extra}` after the conditions"),
        );
        return None;
    }
    let errors_before = ctx.diags.len();

    if lhs_sexp.atom().is_some_and(|a| a.starts_with('?')) {
        ctx.error(
            lhs_sexp.pos(),
            "the left-hand side is a bare variable, which would match every e-class; match an operator",
        );
    }
    let lhs = build_pattern(ctx, lhs_sexp);
    let rhs = build_pattern(ctx, rhs_sexp);
    let predicates = match items.get(4) {
        Some(cond) => parse_conditions(ctx, cond),
        None => Some(Vec::new()),
    };
    let (lhs, rhs, predicates) = (lhs?, rhs?, predicates?);

    let bound: BTreeSet<Var> = lhs.vars().into_iter().collect();
    check_bound(ctx, rhs_sexp, &bound, "the right-hand side");
    if let Some(cond) = items.get(4) {
        check_bound(ctx, cond, &bound, "a condition");
    }
    if ctx.diags.len() > errors_before {
        return None;
    }

    let applier = ConditionalApplier {
        condition: Conditions(predicates.clone()),
        applier: rhs.clone(),
    };
    let rewrite = match Rewrite::new(name.as_str(), lhs.clone(), applier) {
        Ok(r) => r,
        Err(e) => {
            ctx.error(*pos, e);
            return None;
        }
    };
    Some(Rule {
        name,
        file: ctx.file.to_string(),
        line: pos.line,
        lhs,
        rhs,
        conditions: predicates,
        rewrite,
    })
}

fn head(form: &Sexp) -> String {
    match form {
        Sexp::List(items, _) => match items.first() {
            Some(h) => format!("({h} ...)"),
            None => "()".into(),
        },
        atom => atom.to_string(),
    }
}

/// Reports every variable of `sexp` that is not in `bound`.
fn check_bound(ctx: &mut Ctx, sexp: &Sexp, bound: &BTreeSet<Var>, place: &str) {
    match sexp {
        Sexp::Atom(a, pos) if a.starts_with('?') => {
            if let Ok(v) = a.parse::<Var>() {
                if !bound.contains(&v) {
                    let msg =
                        format!("variable `{a}` in {place} is not bound by the left-hand side");
                    ctx.error(*pos, msg);
                }
            }
        }
        Sexp::Atom(..) => {}
        Sexp::List(items, _) => items.iter().for_each(|s| check_bound(ctx, s, bound, place)),
    }
}

fn parse_var(ctx: &mut Ctx, text: &str, pos: Pos) -> Option<Var> {
    match text.parse::<Var>() {
        Ok(v) if text.len() > 1 => Some(v),
        _ => {
            ctx.error(
                pos,
                format!("`{text}` is not a valid variable (write `?name`)"),
            );
            None
        }
    }
}

/// Builds an egg pattern, checking operators and arities as it goes.
fn build_pattern(ctx: &mut Ctx, sexp: &Sexp) -> Option<Pattern<Lang>> {
    let mut ast: PatternAst<Lang> = RecExpr::default();
    let before = ctx.diags.len();
    add_node(ctx, sexp, &mut ast);
    (ctx.diags.len() == before).then(|| Pattern::new(ast))
}

fn add_node(ctx: &mut Ctx, sexp: &Sexp, ast: &mut PatternAst<Lang>) -> Option<Id> {
    match sexp {
        Sexp::Atom(a, pos) if a.starts_with('?') => {
            let v = parse_var(ctx, a, *pos)?;
            Some(ast.add(ENodeOrVar::Var(v)))
        }
        Sexp::Atom(a, pos) => {
            if let Some(ar) = arity(a) {
                if !ar.accepts(0) {
                    ctx.error(
                        *pos,
                        format!("operator `{a}` takes {ar}; write `({a} ...)`"),
                    );
                    return None;
                }
            }
            node(ctx, a, vec![], *pos, ast)
        }
        Sexp::List(items, pos) => {
            let Some(op_sexp) = items.first() else {
                ctx.error(*pos, "empty list `()` in a pattern");
                return None;
            };
            let op = match op_sexp {
                Sexp::Atom(op, _) if op.starts_with('?') => {
                    ctx.error(*pos, format!("a variable (`{op}`) cannot be an operator"));
                    return None;
                }
                Sexp::Atom(op, _) => op,
                Sexp::List(..) => {
                    ctx.error(
                        *pos,
                        format!("an operator must be a word, found `{op_sexp}`"),
                    );
                    return None;
                }
            };
            let Some(ar) = arity(op) else {
                ctx.error(*pos, format!("unknown operator `{op}`"));
                return None;
            };
            let args = &items[1..];
            if !ar.accepts(args.len()) {
                let n = args.len();
                ctx.error(*pos, format!("operator `{op}` takes {ar}, found {n}"));
                return None;
            }
            if op == "fn"
                && !matches!(args.first(), Some(Sexp::Atom(a, _)) if !a.starts_with('?') && arity(a).is_none())
            {
                ctx.error(*pos, "`fn` needs a function name first, e.g. `(fn exp ?x)`");
                return None;
            }
            let mut children = Vec::with_capacity(args.len());
            let mut ok = true;
            for arg in args {
                match add_node(ctx, arg, ast) {
                    Some(id) => children.push(id),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            node(ctx, op, children, *pos, ast)
        }
    }
}

fn node(
    ctx: &mut Ctx,
    op: &str,
    children: Vec<Id>,
    pos: Pos,
    ast: &mut PatternAst<Lang>,
) -> Option<Id> {
    match Lang::from_op(op, children) {
        Ok(n) => Some(ast.add(ENodeOrVar::ENode(n))),
        Err(e) => {
            ctx.error(pos, format!("cannot build `{op}`: {e}"));
            None
        }
    }
}

fn parse_conditions(ctx: &mut Ctx, sexp: &Sexp) -> Option<Vec<Predicate>> {
    let Sexp::List(items, pos) = sexp else {
        ctx.error(
            sexp.pos(),
            format!("expected `(if PRED...)`, found `{sexp}`"),
        );
        return None;
    };
    if items.first().and_then(Sexp::atom) != Some("if") {
        ctx.error(
            *pos,
            format!(
                "expected `(if PRED...)` after the right-hand side, found `{}`",
                head(sexp)
            ),
        );
        return None;
    }
    let before = ctx.diags.len();
    let mut out = Vec::new();
    for pred in &items[1..] {
        if let Some(p) = parse_predicate(ctx, pred) {
            out.push(p);
        }
    }
    (ctx.diags.len() == before).then_some(out)
}

fn parse_predicate(ctx: &mut Ctx, sexp: &Sexp) -> Option<Predicate> {
    let known = || {
        VOCABULARY
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Sexp::List(items, pos) = sexp else {
        ctx.error(
            sexp.pos(),
            format!("expected a predicate `(NAME ?var...)`, found `{sexp}`"),
        );
        return None;
    };
    let Some(name) = items.first().and_then(Sexp::atom) else {
        ctx.error(
            *pos,
            format!("expected a predicate `(NAME ?var...)`, found `{sexp}`"),
        );
        return None;
    };
    let Some(info) = VOCABULARY.iter().find(|p| p.name == name) else {
        ctx.error(
            *pos,
            format!("unknown predicate `{name}` (known: {})", known()),
        );
        return None;
    };
    let args = &items[1..];
    if args.len() < info.min_args {
        let msg = format!(
            "predicate `{name}` takes at least {} variable(s), found {}",
            info.min_args,
            args.len()
        );
        ctx.error(*pos, msg);
        return None;
    }
    let mut vars = Vec::new();
    for a in args {
        match a {
            Sexp::Atom(t, p) if t.starts_with('?') => vars.push(parse_var(ctx, t, *p)?),
            other => {
                let msg = format!("predicate `{name}` takes pattern variables, found `{other}`");
                ctx.error(other.pos(), msg);
                return None;
            }
        }
    }
    Predicate::new(name, vars)
}
