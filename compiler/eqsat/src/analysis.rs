//! The e-class analysis: what the condition predicates ask about a class.
//!
//! Each e-class carries [`Facts`]: whether it holds a buffer or a loop dim,
//! and its value if it is a constant. Constants are folded through the scalar
//! and affine operators (`(* 2 0.5)` is the number `1`), and the folded number
//! is added to the class, so that the extracted kernel carries a plain number
//! for ALPHA and BETA.

use egg::{Analysis, DidMerge, EGraph, Id};

use crate::lang::{is_buffer_name, is_dim_name, Lang, Num};

/// The e-graph type of this crate.
pub type Graph = EGraph<Lang, Facts>;

/// Facts about one e-class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The class's value, when it is a constant.
    pub constant: Option<Num>,
    /// The class holds a loop dim symbol (`d0`, …).
    pub dim: bool,
    /// The class holds a buffer symbol (`%w`, …).
    pub buffer: bool,
}

fn fold(node: &Lang, c: impl Fn(&Id) -> Option<f64>) -> Option<Num> {
    let v = match node {
        Lang::Num(n) => n.value(),
        Lang::Add([a, b]) => c(a)? + c(b)?,
        Lang::Sub([a, b]) => c(a)? - c(b)?,
        Lang::Mul([a, b]) => c(a)? * c(b)?,
        Lang::Div([a, b]) => {
            let d = c(b)?;
            if d == 0.0 {
                return None;
            }
            c(a)? / d
        }
        Lang::Neg(a) => -c(a)?,
        Lang::Max([a, b]) => c(a)?.max(c(b)?),
        Lang::FloorDiv([a, b]) => {
            let d = c(b)?;
            if d == 0.0 {
                return None;
            }
            (c(a)? / d).floor()
        }
        Lang::Mod([a, b]) => {
            let (x, d) = (c(a)?, c(b)?);
            if d == 0.0 {
                return None;
            }
            x - d * (x / d).floor()
        }
        _ => return None,
    };
    Num::new(v)
}

impl Analysis<Lang> for Facts {
    type Data = Facts;

    fn make(egraph: &mut Graph, enode: &Lang) -> Facts {
        let constant = fold(enode, |id| egraph[*id].data.constant.map(Num::value));
        let (dim, buffer) = match enode {
            Lang::Symbol(s) => (is_dim_name(s.as_str()), is_buffer_name(s.as_str())),
            _ => (false, false),
        };
        Facts {
            constant,
            dim,
            buffer,
        }
    }

    fn merge(&mut self, to: &mut Facts, from: Facts) -> DidMerge {
        let mut changed_to = false;
        let mut changed_from = false;
        match (to.constant, from.constant) {
            (None, Some(c)) => {
                to.constant = Some(c);
                changed_to = true;
            }
            (Some(_), None) => changed_from = true,
            // Two different constants in one class can only come from an
            // unsound rule; keep the first rather than abort compilation.
            _ => {}
        }
        for (t, f) in [(&mut to.dim, from.dim), (&mut to.buffer, from.buffer)] {
            if f && !*t {
                *t = true;
                changed_to = true;
            } else if *t && !f {
                changed_from = true;
            }
        }
        DidMerge(changed_to, changed_from)
    }

    fn modify(egraph: &mut Graph, id: Id) {
        let Some(c) = egraph[id].data.constant else {
            return;
        };
        if egraph[id].nodes.iter().any(|n| matches!(n, Lang::Num(_))) {
            return;
        }
        if egraph.are_explanations_enabled() {
            let leaf = egraph.add_uncanonical(Lang::Num(c));
            egraph.union_trusted(id, leaf, "constant-fold");
        } else {
            let leaf = egraph.add(Lang::Num(c));
            egraph.union(id, leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Term;

    fn constant_of(text: &str) -> Option<f64> {
        let mut g = Graph::default();
        let t: Term = text.parse().unwrap();
        let id = g.add_expr(&t);
        g.rebuild();
        g[id].data.constant.map(Num::value)
    }

    #[test]
    fn folds_scalar_and_affine_constants() {
        assert_eq!(constant_of("(* 2 0.5)"), Some(1.0));
        assert_eq!(constant_of("(neg (- 1 3))"), Some(2.0));
        assert_eq!(constant_of("(/ 1 8)"), Some(0.125));
        assert_eq!(constant_of("(floordiv -7 2)"), Some(-4.0));
        assert_eq!(constant_of("(mod -7 3)"), Some(2.0));
        assert_eq!(constant_of("(max 1 (+ 1 1))"), Some(2.0));
        assert_eq!(constant_of("(/ 1 0)"), None);
        assert_eq!(constant_of("(* 2 d0)"), None);
        assert_eq!(constant_of("(fn exp 0)"), None);
    }

    #[test]
    fn classifies_symbols() {
        let mut g = Graph::default();
        let d = g.add_expr(&"d3".parse().unwrap());
        let b = g.add_expr(&"%w".parse().unwrap());
        let n = g.add_expr(&"n".parse().unwrap());
        assert!(g[d].data.dim && !g[d].data.buffer);
        assert!(g[b].data.buffer && !g[b].data.dim);
        assert!(!g[n].data.buffer && !g[n].data.dim);
    }
}
