//! Every recognized kernel computes what the loop nest computes.
//!
//! An interpreter for loop-nest terms (independent of the rules) and a naive
//! GEMV/GEMM (independent of the interpreter) are run on the same random data,
//! with a different extent for every dim so that a wrong transposition or a
//! swapped operand shows up.

mod common;

use std::collections::HashMap;

use common::*;
use ditto_eqsat::{Init, Kernel, Lang, RuleSet, Term, Trans};
use egg::Id;

/// Extent of dim `dN`: all different, none square. `None` for a non-dim.
fn extent(dim: &str) -> Option<usize> {
    let n: usize = dim.strip_prefix('d')?.parse().ok()?;
    [3, 5, 4, 6, 7].get(n).copied()
}

struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Tensor {
    fn at(&self, idx: &[usize]) -> Option<f64> {
        if idx.len() != self.shape.len() {
            return None;
        }
        let mut flat = 0;
        for (i, s) in idx.iter().zip(&self.shape) {
            if i >= s {
                return None;
            }
            flat = flat * s + i;
        }
        Some(self.data[flat])
    }
}

struct Env {
    buffers: HashMap<String, Tensor>,
    seed: u64,
}

impl Env {
    fn random(&mut self) -> f64 {
        // xorshift: fixed seed, values in [-1, 1).
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// Creates every buffer the term reads, shaped by the dims it is read
    /// with; `None` when the term reads a buffer with two different shapes or
    /// through a non-dim index (not a well-typed op).
    fn for_term(term: &Term) -> Option<Env> {
        let mut env = Env {
            buffers: HashMap::new(),
            seed: 0x9E37_79B9_7F4A_7C15,
        };
        let nodes = term.as_ref();
        for node in nodes {
            if let Lang::Read([b, ix]) = node {
                let name = nodes[usize::from(*b)].to_string();
                let Lang::Ix(dims) = &nodes[usize::from(*ix)] else {
                    return None;
                };
                let shape = dims
                    .iter()
                    .map(|d| extent(&nodes[usize::from(*d)].to_string()))
                    .collect::<Option<Vec<usize>>>()?;
                match env.buffers.get(&name) {
                    Some(t) if t.shape != shape => return None,
                    Some(_) => {}
                    None => {
                        let len = shape.iter().product();
                        let data = (0..len).map(|_| env.random()).collect();
                        env.buffers.insert(name, Tensor { shape, data });
                    }
                }
            }
        }
        Some(env)
    }
}

/// Evaluates a scalar/element term with the dims bound in `at`; `None` for
/// anything the interpreter does not cover or an unbound dim.
fn eval(term: &Term, id: Id, env: &Env, at: &mut HashMap<String, usize>) -> Option<f64> {
    use egg::Language;
    let node = &term[id];
    let kids = node.children();
    let mut arg = |i: usize| eval(term, kids[i], env, at);
    Some(match node {
        Lang::Num(n) => n.value(),
        Lang::Symbol(s) => *at.get(s.as_str())? as f64,
        Lang::Read([b, ix]) => {
            let mut idx = Vec::new();
            for &e in term[*ix].children() {
                idx.push(eval(term, e, env, at)? as usize);
            }
            env.buffers.get(&term[*b].to_string())?.at(&idx)?
        }
        Lang::Acc([init, sum]) => {
            let init = match &term[*init] {
                Lang::Fill(v) => eval(term, *v, env, at)?,
                _ => eval(term, *init, env, at)?,
            };
            init + eval(term, *sum, env, at)?
        }
        Lang::Sum([dims, body]) => {
            let dims: Vec<String> = term[*dims]
                .children()
                .iter()
                .map(|d| term[*d].to_string())
                .collect();
            // A reduction over a dim already bound is not a well-formed op.
            if dims
                .iter()
                .enumerate()
                .any(|(i, d)| at.contains_key(d) || dims[..i].contains(d))
            {
                return None;
            }
            let mut total = 0.0;
            for point in space(&dims)? {
                for (d, v) in dims.iter().zip(&point) {
                    at.insert(d.clone(), *v);
                }
                total += eval(term, *body, env, at)?;
            }
            for d in &dims {
                at.remove(d);
            }
            total
        }
        Lang::Add(_) => arg(0)? + arg(1)?,
        Lang::Sub(_) => arg(0)? - arg(1)?,
        Lang::Mul(_) => arg(0)? * arg(1)?,
        Lang::Div(_) => arg(0)? / arg(1)?,
        Lang::Neg(_) => -arg(0)?,
        _ => return None,
    })
}

/// All index tuples of the given dims, row-major.
fn space(dims: &[String]) -> Option<Vec<Vec<usize>>> {
    let mut out = vec![vec![]];
    for d in dims {
        let n = extent(d)?;
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..n).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    Some(out)
}

/// The loop nest's output, row-major over its output dims.
fn run_loop_nest(term: &Term, env: &Env) -> Option<Vec<f64>> {
    let root = Id::from(term.as_ref().len() - 1);
    let Lang::Gen([ix, body]) = &term[root] else {
        return None;
    };
    let dims: Vec<String> = egg::Language::children(&term[*ix])
        .iter()
        .map(|d| term[*d].to_string())
        .collect();
    if dims.iter().enumerate().any(|(i, d)| dims[..i].contains(d)) {
        return None;
    }
    space(&dims)?
        .into_iter()
        .map(|point| {
            let mut at: HashMap<String, usize> = dims.iter().cloned().zip(point).collect();
            eval(term, *body, env, &mut at)
        })
        .collect()
}

/// Element (r, c) of op(M) for a 2-D buffer.
fn op_at(m: &Tensor, t: Trans, r: usize, c: usize) -> f64 {
    match t {
        Trans::N => m.at(&[r, c]),
        Trans::T => m.at(&[c, r]),
    }
    .expect("kernel operand index in range")
}

fn op_shape(m: &Tensor, t: Trans) -> (usize, usize) {
    match t {
        Trans::N => (m.shape[0], m.shape[1]),
        Trans::T => (m.shape[1], m.shape[0]),
    }
}

fn init_value(init: &Init, env: &Env, flat: usize) -> f64 {
    match init {
        Init::Zero => 0.0,
        Init::Copy(b) => env.buffers[b].data[flat],
        Init::Fill(c) => *c as f64,
    }
}

/// The kernel's output, computed naively from its definition.
fn run_kernel(k: &Kernel, env: &Env) -> Vec<f64> {
    match k {
        Kernel::Gemv {
            alpha,
            a,
            trans,
            x,
            beta,
            y,
        } => {
            let (a, x) = (&env.buffers[a], &env.buffers[x]);
            let (m, kk) = op_shape(a, *trans);
            assert_eq!(x.shape, vec![kk], "x length");
            (0..m)
                .map(|i| {
                    let dot: f64 = (0..kk).map(|j| op_at(a, *trans, i, j) * x.data[j]).sum();
                    *beta as f64 * init_value(y, env, i) + *alpha as f64 * dot
                })
                .collect()
        }
        Kernel::Gemm {
            alpha,
            a,
            ta,
            b,
            tb,
            beta,
            c,
        } => {
            let (a, b) = (&env.buffers[a], &env.buffers[b]);
            let (m, k1) = op_shape(a, *ta);
            let (k2, n) = op_shape(b, *tb);
            assert_eq!(k1, k2, "inner dimensions");
            let mut out = Vec::with_capacity(m * n);
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k1)
                        .map(|l| op_at(a, *ta, i, l) * op_at(b, *tb, l, j))
                        .sum();
                    out.push(*beta as f64 * init_value(c, env, i * n + j) + *alpha as f64 * dot);
                }
            }
            out
        }
        Kernel::CodebookGemv { .. } | Kernel::CodebookGemm { .. } => {
            panic!("the semantic cases hold no codebook matrices (tests/codebook.rs covers them)")
        }
    }
}

fn check(text: &str, rules: &RuleSet) {
    let sel = run_with(text, rules);
    let kernel = sel.kernel.unwrap_or_else(|| panic!("no kernel for {text}"));
    let term: Term = text.parse().unwrap();
    let env = Env::for_term(&term).expect("well-typed test term");
    let want = run_loop_nest(&term, &env).expect("interpretable test term");
    compare(text, &kernel, &env, &want);
}

fn compare(text: &str, kernel: &Kernel, env: &Env, want: &[f64]) {
    let got = run_kernel(kernel, env);
    assert_eq!(want.len(), got.len(), "output size of {kernel} for {text}");
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert!(
            (w - g).abs() <= 1e-6 * (1.0 + w.abs()),
            "element {i}: loop nest {w}, kernel {g}\n{kernel}\n{text}"
        );
    }
}

#[test]
fn builtin_kernels_compute_what_the_loop_nests_compute() {
    let rules = RuleSet::builtin();
    for (text, _, _) in cases() {
        check(&text, &rules);
    }
}

#[test]
fn example_rule_kernels_compute_what_the_loop_nests_compute() {
    let mut rules = RuleSet::builtin();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/rules/example.rules"
    );
    rules.extend(RuleSet::from_file(path).unwrap()).unwrap();
    for text in [
        format!("(gen (ix d0) (acc (fill 1.5) {GEMV_SUM}))"),
        format!("(gen (ix d0 d1) (acc (fill -1) {GEMM_NT_SUM}))"),
        format!("(gen (ix d0 d1) (/ (acc (fill 0) {GEMM_NT_SUM}) 8))"),
        format!("(gen (ix d0) (+ (/ (acc (fill 0) {GEMV_SUM}) 4) (read %b (ix d0))))"),
        format!("(gen (ix d0) (/ (acc (fill 2) {GEMV_SUM}) 4))"),
    ] {
        check(&text, &rules);
    }
}

// ---------------------------------------------------------------------------
// Mutation testing: small random edits of the recognized cases. Whatever the
// stage does with them must be right: no panic, no limit, the input unchanged
// when no kernel is chosen, and a chosen kernel computes what the (well-typed)
// loop nest computes.

use ditto_eqsat::sexp::{parse_all, Sexp};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

fn count(s: &Sexp) -> usize {
    match s {
        Sexp::Atom(..) => 1,
        Sexp::List(items, _) => 1 + items.iter().map(count).sum::<usize>(),
    }
}

/// Applies one random edit to the `target`-th node (pre-order).
fn mutate(s: &mut Sexp, target: &mut usize, rng: &mut Rng) {
    if *target == 0 {
        *target = usize::MAX;
        let atom = |t: &str| Sexp::Atom(t.to_string(), Default::default());
        let parse = |t: String| parse_all(&t).unwrap().remove(0);
        let new = match &*s {
            Sexp::Atom(a, _) if a.starts_with('d') => atom(rng.pick(&["d0", "d1", "d2", "d3"])),
            Sexp::Atom(a, _) if a.starts_with('%') => {
                atom(rng.pick(&["%w", "%x", "%b", "%y", "%a"]))
            }
            Sexp::Atom(a, _) if a.parse::<f64>().is_ok() => {
                atom(rng.pick(&["0", "1", "2", "0.5", "-1", "4"]))
            }
            Sexp::List(items, p)
                if items.len() == 3 && matches!(items[0].atom(), Some("+" | "*")) =>
            {
                Sexp::List(
                    vec![items[0].clone(), items[2].clone(), items[1].clone()],
                    *p,
                )
            }
            Sexp::List(items, _) if !matches!(items[0].atom(), Some("ix" | "gen")) => {
                let e = s.to_string();
                parse(match rng.below(6) {
                    0 => format!("(* {e} 2)"),
                    1 => format!("(+ (read %b (ix d0)) {e})"),
                    2 => format!("(neg {e})"),
                    3 => format!("(/ {e} 4)"),
                    4 => format!("(- {e} 1)"),
                    _ => format!("(fn exp {e})"),
                })
            }
            other => other.clone(),
        };
        *s = new;
        return;
    }
    *target -= 1;
    if let Sexp::List(items, _) = s {
        for item in items {
            if *target == usize::MAX {
                return;
            }
            mutate(item, target, rng);
        }
    }
}

#[test]
fn mutated_cases_are_handled_correctly() {
    let mut rules = RuleSet::builtin();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/rules/example.rules"
    );
    rules.extend(RuleSet::from_file(path).unwrap()).unwrap();
    // DITTO_EQSAT_MUTANTS=N runs N mutants per case (default 30) for a longer soak.
    let per_case: usize = std::env::var("DITTO_EQSAT_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut kernels, mut checked, mut total) = (0, 0, 0);
    for (text, _, _) in cases() {
        for _ in 0..per_case {
            let mut s = parse_all(&text).unwrap().remove(0);
            for _ in 0..1 + rng.below(3) {
                let mut target = rng.below(count(&s));
                mutate(&mut s, &mut target, &mut rng);
            }
            let mutated = s.to_string();
            total += 1;
            let sel = run_with(&mutated, &rules); // no panic, no limit, unchanged if no kernel
            let Some(kernel) = sel.kernel else { continue };
            kernels += 1;
            let term: Term = mutated.parse().unwrap();
            let Some(env) = Env::for_term(&term) else {
                continue;
            };
            let Some(want) = run_loop_nest(&term, &env) else {
                continue;
            };
            checked += 1;
            compare(&mutated, &kernel, &env, &want);
        }
    }
    eprintln!("{total} mutants, {kernels} kernels, {checked} checked numerically");
    // The edits must leave enough kernels for the check to mean something.
    assert!(
        checked * 5 > total,
        "only {checked} of {total} mutants checked ({kernels} kernels)"
    );
}
