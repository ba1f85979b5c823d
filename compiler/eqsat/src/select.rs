//! Saturation and extraction: the stage's entry point.

use std::fmt::{self, Write as _};
use std::time::Duration;

use egg::{Extractor, Runner, StopReason};

use crate::analysis::Facts;
use crate::cost::KernelCost;
use crate::kernel::Kernel;
use crate::lang::{pretty, Lang, Term};
use crate::ruleset::RuleSet;

/// Bounds on saturation. Whichever is reached first stops the run; the
/// e-graph reached so far is still used for extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rule-application rounds.
    pub iterations: usize,
    /// E-nodes in the graph.
    pub nodes: usize,
    /// Wall-clock time.
    pub time: Duration,
}

impl Default for Limits {
    /// 32 rounds, 20 000 e-nodes, 2 s: the built-in rules saturate a
    /// `linalg.generic` in under 10 rounds and a few hundred nodes.
    fn default() -> Self {
        Limits {
            iterations: 32,
            nodes: 20_000,
            time: Duration::from_secs(2),
        }
    }
}

/// Options of [`select_with`].
#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    /// Saturation bounds.
    pub limits: Limits,
    /// Record egg explanations and, when a kernel is chosen, attach the chain
    /// of rewrites from the input to it ([`Selection::explanation`]). Slower;
    /// for `--explain`.
    pub explain: bool,
}

/// Why saturation stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// No rule could add anything new: every rewrite was explored.
    Saturated,
    /// The iteration limit was reached.
    IterationLimit(usize),
    /// The e-node limit was exceeded (the number of e-nodes then).
    NodeLimit(usize),
    /// The time limit was exceeded (seconds spent).
    TimeLimit(f64),
    /// Anything else egg reports.
    Other(String),
}

impl Stop {
    /// Whether a limit cut saturation short (the result may miss a kernel).
    pub fn limit_hit(&self) -> bool {
        !matches!(self, Stop::Saturated)
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Saturated => f.write_str("saturated"),
            Stop::IterationLimit(n) => write!(f, "iteration limit hit ({n} iterations)"),
            Stop::NodeLimit(n) => write!(f, "e-node limit hit ({n} e-nodes)"),
            Stop::TimeLimit(s) => write!(f, "time limit hit ({s:.3} s)"),
            Stop::Other(s) => write!(f, "stopped: {s}"),
        }
    }
}

impl From<StopReason> for Stop {
    fn from(r: StopReason) -> Stop {
        match r {
            StopReason::Saturated => Stop::Saturated,
            StopReason::IterationLimit(n) => Stop::IterationLimit(n),
            StopReason::NodeLimit(n) => Stop::NodeLimit(n),
            StopReason::TimeLimit(s) => Stop::TimeLimit(s),
            StopReason::Other(s) => Stop::Other(s),
        }
    }
}

/// A rule that added something new to the e-graph in one iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// 0-based iteration.
    pub iteration: usize,
    /// The rule's name.
    pub rule: String,
    /// How many of its matches changed the e-graph.
    pub count: usize,
}

/// The outcome of kernel selection for one term.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The chosen term: a kernel call when [`kernel`](Self::kernel) is `Some`,
    /// otherwise the input, unchanged.
    pub best: Term,
    /// The decoded kernel call, when one was chosen.
    pub kernel: Option<Kernel>,
    /// Cost of `best` (see [`crate::cost`]).
    pub cost: u64,
    /// Cost of the input term.
    pub input_cost: u64,
    /// Why saturation stopped.
    pub stop: Stop,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes at the end.
    pub egraph_nodes: usize,
    /// E-classes at the end.
    pub egraph_classes: usize,
    /// Which rules fired, per iteration.
    pub fired: Vec<Firing>,
    /// With [`SelectOptions::explain`] and a kernel: the rewrite chain from the
    /// input to `best`, one term per line, each annotated with the rule used.
    pub explanation: Option<String>,
    /// Problems that did not stop the stage (e.g. a user rule that built a
    /// malformed kernel term, which is then not used).
    pub warnings: Vec<String>,
}

impl Selection {
    /// Whether saturation was cut short by a limit.
    pub fn limit_hit(&self) -> bool {
        self.stop.limit_hit()
    }

    /// Names of the rules that fired, without repeats, in first-firing order.
    pub fn rules_fired(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for f in &self.fired {
            if !names.contains(&f.rule.as_str()) {
                names.push(&f.rule);
            }
        }
        names
    }

    /// A human-readable report for `--explain`.
    pub fn trace(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "saturation: {} after {} iteration(s), {} e-nodes in {} e-classes",
            self.stop, self.iterations, self.egraph_nodes, self.egraph_classes
        );
        let mut iteration = usize::MAX;
        for f in &self.fired {
            if f.iteration != iteration {
                if iteration != usize::MAX {
                    s.push('\n');
                }
                iteration = f.iteration;
                let _ = write!(s, "  iteration {iteration}:");
            }
            let _ = write!(s, " {}×{}", f.rule, f.count);
        }
        if !self.fired.is_empty() {
            s.push('\n');
        }
        match &self.kernel {
            Some(k) => {
                let _ = writeln!(
                    s,
                    "chosen: {k}  (cost {} vs {} for the input)",
                    self.cost, self.input_cost
                );
                let _ = writeln!(s, "term:   {}", pretty(&self.best));
            }
            None => {
                let _ = writeln!(
                    s,
                    "chosen: no kernel; the op is left as written (cost {})",
                    self.cost
                );
            }
        }
        if let Some(e) = &self.explanation {
            let _ = writeln!(s, "rewrites from the input:\n{e}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// Selects a kernel for `term` with default options.
pub fn select(term: &Term, rules: &RuleSet) -> Selection {
    select_with(term, rules, &SelectOptions::default())
}

/// Saturates `term` with `rules` within the limits, extracts the cheapest
/// equivalent term, and decodes it if it is a kernel call. When the cheapest
/// term is not a kernel call, the input is returned unchanged.
pub fn select_with(term: &Term, rules: &RuleSet, options: &SelectOptions) -> Selection {
    if term.as_ref().is_empty() {
        return Selection {
            best: term.clone(),
            kernel: None,
            cost: 0,
            input_cost: 0,
            stop: Stop::Other("empty term".into()),
            iterations: 0,
            egraph_nodes: 0,
            egraph_classes: 0,
            fired: Vec::new(),
            explanation: None,
            warnings: vec!["empty term: nothing to select".into()],
        };
    }
    let limits = options.limits;
    let mut runner: Runner<Lang, Facts> = Runner::default()
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        .with_time_limit(limits.time);
    if options.explain {
        runner = runner.with_explanations_enabled();
    }
    let rewrites = rules.rewrites();
    let mut runner = runner.with_expr(term).run(&rewrites);

    let root = runner.roots[0];
    let extractor = Extractor::new(&runner.egraph, KernelCost);
    let (cost, extracted) = extractor.find_best(root);
    let input_cost = KernelCost::term_cost(term);

    let mut warnings = Vec::new();
    let kernel = match Kernel::decode(&extracted) {
        Ok(k) => k,
        Err(e) => {
            warnings.push(format!("{e}; the op is left as written"));
            None
        }
    };
    let root_has_kernel = runner.egraph[root].nodes.iter().any(Lang::is_kernel);
    if kernel.is_none() && root_has_kernel && warnings.is_empty() {
        warnings.push(format!(
            "a kernel term is equivalent to the op but `{}` was cheaper; check the cost model",
            pretty(&extracted)
        ));
    }

    let explanation = match (&kernel, options.explain) {
        (Some(_), true) => Some(
            runner
                .explain_equivalence(term, &extracted)
                .get_flat_string()
                .replace('"', ""),
        ),
        _ => None,
    };

    let fired = runner
        .iterations
        .iter()
        .enumerate()
        .flat_map(|(i, it)| {
            it.applied.iter().map(move |(rule, count)| Firing {
                iteration: i,
                rule: rule.to_string(),
                count: *count,
            })
        })
        .collect();
    let stop = runner
        .stop_reason
        .clone()
        .map(Stop::from)
        .unwrap_or(Stop::Other("unknown".into()));

    let (best, cost) = if kernel.is_some() {
        (extracted, cost)
    } else {
        (term.clone(), input_cost)
    };
    Selection {
        best,
        kernel,
        cost,
        input_cost,
        stop,
        iterations: runner.iterations.len(),
        egraph_nodes: runner.egraph.total_number_of_nodes(),
        egraph_classes: runner.egraph.number_of_classes(),
        fired,
        explanation,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_term_is_a_warning_not_a_panic() {
        let sel = select(&Term::default(), &RuleSet::builtin());
        assert!(sel.kernel.is_none());
        assert_eq!(sel.warnings.len(), 1);
    }

    #[test]
    fn empty_rule_set_changes_nothing() {
        let t: Term =
            "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %w (ix d0 d1)) (read %x (ix d1))))))"
                .parse()
                .unwrap();
        let sel = select(&t, &RuleSet::new());
        assert_eq!(sel.stop, Stop::Saturated);
        assert!(sel.kernel.is_none() && sel.fired.is_empty());
        assert_eq!(sel.best, t);
    }
}
