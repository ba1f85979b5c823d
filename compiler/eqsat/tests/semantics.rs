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

/// Extent of dim `dN`: all different, none square.
fn extent(dim: &str) -> usize {
    let n: usize = dim[1..].parse().unwrap();
    [3, 5, 4, 6, 7][n]
}

struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Tensor {
    fn at(&self, idx: &[usize]) -> f64 {
        assert_eq!(idx.len(), self.shape.len());
        let mut flat = 0;
        for (i, s) in idx.iter().zip(&self.shape) {
            assert!(i < s, "index {idx:?} out of {:?}", self.shape);
            flat = flat * s + i;
        }
        self.data[flat]
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

    /// Creates every buffer the term reads, shaped by the dims it is read with.
    fn for_term(term: &Term) -> Env {
        let mut env = Env {
            buffers: HashMap::new(),
            seed: 0x9E37_79B9_7F4A_7C15,
        };
        let nodes = term.as_ref();
        for node in nodes {
            if let Lang::Read([b, ix]) = node {
                let name = nodes[usize::from(*b)].to_string();
                let Lang::Ix(dims) = &nodes[usize::from(*ix)] else {
                    panic!()
                };
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|d| extent(&nodes[usize::from(*d)].to_string()))
                    .collect();
                if !env.buffers.contains_key(&name) {
                    let len = shape.iter().product();
                    let data = (0..len).map(|_| env.random()).collect();
                    env.buffers.insert(name, Tensor { shape, data });
                }
            }
        }
        env
    }
}

/// Evaluates a scalar/element term with the dims bound in `at`.
fn eval(term: &Term, id: Id, env: &Env, at: &mut HashMap<String, usize>) -> f64 {
    let node = &term[id];
    let c = |i: usize| node.children()[i];
    use egg::Language;
    match node {
        Lang::Num(n) => n.value(),
        Lang::Symbol(s) => at[s.as_str()] as f64,
        Lang::Read([b, ix]) => {
            let idx: Vec<usize> = term[*ix]
                .children()
                .iter()
                .map(|&e| eval(term, e, env, at) as usize)
                .collect();
            env.buffers[&term[*b].to_string()].at(&idx)
        }
        Lang::Acc([init, sum]) => {
            let init = match &term[*init] {
                Lang::Fill(v) => eval(term, *v, env, at),
                _ => eval(term, *init, env, at),
            };
            init + eval(term, *sum, env, at)
        }
        Lang::Sum([dims, body]) => {
            let dims: Vec<String> = term[*dims]
                .children()
                .iter()
                .map(|d| term[*d].to_string())
                .collect();
            let mut total = 0.0;
            for point in space(&dims) {
                for (d, v) in dims.iter().zip(&point) {
                    at.insert(d.clone(), *v);
                }
                total += eval(term, *body, env, at);
            }
            total
        }
        Lang::Add(_) => eval(term, c(0), env, at) + eval(term, c(1), env, at),
        Lang::Sub(_) => eval(term, c(0), env, at) - eval(term, c(1), env, at),
        Lang::Mul(_) => eval(term, c(0), env, at) * eval(term, c(1), env, at),
        Lang::Div(_) => eval(term, c(0), env, at) / eval(term, c(1), env, at),
        Lang::Neg(_) => -eval(term, c(0), env, at),
        other => panic!("the test interpreter does not evaluate {other}"),
    }
}

/// All index tuples of the given dims, row-major.
fn space(dims: &[String]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for d in dims {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..extent(d)).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out
}

/// The loop nest's output, row-major over its output dims.
fn run_loop_nest(term: &Term, env: &Env) -> Vec<f64> {
    let root = Id::from(term.as_ref().len() - 1);
    let Lang::Gen([ix, body]) = &term[root] else {
        panic!("not a gen")
    };
    let dims: Vec<String> = egg::Language::children(&term[*ix])
        .iter()
        .map(|d| term[*d].to_string())
        .collect();
    space(&dims)
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
    }
}

fn check(text: &str, rules: &RuleSet) {
    let term: Term = text.parse().unwrap();
    let sel = run_with(text, rules);
    let kernel = sel.kernel.unwrap_or_else(|| panic!("no kernel for {text}"));
    let env = Env::for_term(&term);
    let want = run_loop_nest(&term, &env);
    let got = run_kernel(&kernel, &env);
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
