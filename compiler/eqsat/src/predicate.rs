//! The condition vocabulary of rule files: `(if (distinct ?i ?k) (is-buffer ?A) …)`.
//!
//! Every predicate takes pattern variables bound by the rule's left-hand side
//! and asks the e-class [`crate::analysis::Facts`] of what they matched.
//! A rule fires only when all its predicates hold.

use std::fmt;

use egg::{Condition, Id, Subst, Var};

use crate::analysis::{Facts, Graph};
use crate::lang::Lang;

/// One entry of the vocabulary: its name, how many variables it takes, and what it checks.
pub struct PredicateInfo {
    /// Spelling in a rule file.
    pub name: &'static str,
    /// The fewest variables it takes (all take any number above that).
    pub min_args: usize,
    /// What it checks (shown in errors and in `docs/rule-writing.md`).
    pub meaning: &'static str,
}

/// The whole vocabulary.
pub const VOCABULARY: &[PredicateInfo] = &[
    PredicateInfo {
        name: "distinct",
        min_args: 2,
        meaning:
            "the variables matched pairwise different e-classes (e.g. two different loop dims)",
    },
    PredicateInfo {
        name: "is-dim",
        min_args: 1,
        meaning: "each variable matched a loop dim symbol (`d0`, `d1`, ...)",
    },
    PredicateInfo {
        name: "is-buffer",
        min_args: 1,
        meaning: "each variable matched a buffer symbol (`%name`)",
    },
    PredicateInfo {
        name: "is-number",
        min_args: 1,
        meaning: "each variable matched a constant (a number, or arithmetic on numbers)",
    },
    PredicateInfo {
        name: "is-zero",
        min_args: 1,
        meaning: "each variable matched a constant equal to 0",
    },
    PredicateInfo {
        name: "is-nonzero",
        min_args: 1,
        meaning: "each variable matched a constant different from 0",
    },
];

/// A parsed predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `(distinct ?a ?b …)`
    Distinct(Vec<Var>),
    /// `(is-dim ?d …)`
    IsDim(Vec<Var>),
    /// `(is-buffer ?b …)`
    IsBuffer(Vec<Var>),
    /// `(is-number ?c …)`
    IsNumber(Vec<Var>),
    /// `(is-zero ?c …)`
    IsZero(Vec<Var>),
    /// `(is-nonzero ?c …)`
    IsNonzero(Vec<Var>),
}

impl Predicate {
    /// Builds a predicate from its name and variables. The caller has checked
    /// the name against [`VOCABULARY`] and the argument count.
    pub fn new(name: &str, vars: Vec<Var>) -> Option<Predicate> {
        Some(match name {
            "distinct" => Predicate::Distinct(vars),
            "is-dim" => Predicate::IsDim(vars),
            "is-buffer" => Predicate::IsBuffer(vars),
            "is-number" => Predicate::IsNumber(vars),
            "is-zero" => Predicate::IsZero(vars),
            "is-nonzero" => Predicate::IsNonzero(vars),
            _ => return None,
        })
    }

    /// Its spelling in a rule file.
    pub fn name(&self) -> &'static str {
        match self {
            Predicate::Distinct(_) => "distinct",
            Predicate::IsDim(_) => "is-dim",
            Predicate::IsBuffer(_) => "is-buffer",
            Predicate::IsNumber(_) => "is-number",
            Predicate::IsZero(_) => "is-zero",
            Predicate::IsNonzero(_) => "is-nonzero",
        }
    }

    /// The variables it reads.
    pub fn vars(&self) -> &[Var] {
        match self {
            Predicate::Distinct(v)
            | Predicate::IsDim(v)
            | Predicate::IsBuffer(v)
            | Predicate::IsNumber(v)
            | Predicate::IsZero(v)
            | Predicate::IsNonzero(v) => v,
        }
    }

    /// Whether it holds for a match.
    pub fn holds(&self, egraph: &Graph, subst: &Subst) -> bool {
        let facts = |v: &Var| -> &Facts { &egraph[subst[*v]].data };
        match self {
            Predicate::Distinct(vars) => {
                let ids: Vec<Id> = vars.iter().map(|v| egraph.find(subst[*v])).collect();
                ids.iter()
                    .enumerate()
                    .all(|(i, a)| ids[i + 1..].iter().all(|b| a != b))
            }
            Predicate::IsDim(vars) => vars.iter().all(|v| facts(v).dim),
            Predicate::IsBuffer(vars) => vars.iter().all(|v| facts(v).buffer),
            Predicate::IsNumber(vars) => vars.iter().all(|v| facts(v).constant.is_some()),
            Predicate::IsZero(vars) => vars
                .iter()
                .all(|v| facts(v).constant.is_some_and(|c| c.value() == 0.0)),
            Predicate::IsNonzero(vars) => vars
                .iter()
                .all(|v| facts(v).constant.is_some_and(|c| c.value() != 0.0)),
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}", self.name())?;
        for v in self.vars() {
            write!(f, " {v}")?;
        }
        write!(f, ")")
    }
}

/// The conjunction of a rule's predicates, as an egg [`Condition`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions(pub Vec<Predicate>);

impl Condition<Lang, Facts> for Conditions {
    fn check(&self, egraph: &mut Graph, _eclass: Id, subst: &Subst) -> bool {
        self.0.iter().all(|p| p.holds(egraph, subst))
    }

    fn vars(&self) -> Vec<Var> {
        self.0
            .iter()
            .flat_map(|p| p.vars().iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_and_constructor_agree() {
        for info in VOCABULARY {
            let p = Predicate::new(info.name, vec![]).expect(info.name);
            assert_eq!(p.name(), info.name);
        }
        assert!(Predicate::new("is-vector", vec![]).is_none());
    }

    #[test]
    fn predicates_read_the_analysis() {
        let mut g = Graph::default();
        let ids: Vec<Id> = ["d0", "d1", "%w", "0", "(* 2 0.5)", "n"]
            .iter()
            .map(|t| g.add_expr(&t.parse().unwrap()))
            .collect();
        g.rebuild();
        let vars: Vec<Var> = ["?a", "?b", "?c", "?d", "?e", "?f"]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        let mut subst = Subst::default();
        for (v, id) in vars.iter().zip(&ids) {
            subst.insert(*v, *id);
        }
        let check = |text: &str, want: bool| {
            let mut parts = text.split(' ');
            let name = parts.next().unwrap();
            let vs = parts.map(|v| v.parse().unwrap()).collect();
            let p = Predicate::new(name, vs).unwrap();
            assert_eq!(p.holds(&g, &subst), want, "{text}");
        };
        check("distinct ?a ?b", true);
        check("distinct ?a ?b ?a", false);
        check("is-dim ?a ?b", true);
        check("is-dim ?a ?c", false);
        check("is-buffer ?c", true);
        check("is-buffer ?f", false);
        check("is-number ?d ?e", true);
        check("is-number ?a", false);
        check("is-zero ?d", true);
        check("is-zero ?e", false);
        check("is-nonzero ?e", true);
        check("is-nonzero ?d", false);
        check("is-nonzero ?a", false);
    }
}
