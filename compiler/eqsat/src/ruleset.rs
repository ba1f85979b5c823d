//! Rule sets: the built-in rules and user rule files.

use std::path::Path;

use egg::{Pattern, Rewrite};

use crate::analysis::Facts;
use crate::error::{Diagnostic, RuleError};
use crate::lang::Lang;
use crate::predicate::Predicate;
use crate::rulefile::parse_rules;

/// The built-in rule files, by family, in the order they are loaded.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "builtin/canonical.rules",
        include_str!("../rules/canonical.rules"),
    ),
    ("builtin/gemv.rules", include_str!("../rules/gemv.rules")),
    ("builtin/gemm.rules", include_str!("../rules/gemm.rules")),
    (
        "builtin/epilogue.rules",
        include_str!("../rules/epilogue.rules"),
    ),
    (
        "builtin/codebook.rules",
        include_str!("../rules/codebook.rules"),
    ),
];

/// One named, directional rewrite rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name (unique within a rule set).
    pub name: String,
    /// The file it was read from.
    pub file: String,
    /// The line of its `(rule`.
    pub line: usize,
    /// Left-hand side: what it matches.
    pub lhs: Pattern<Lang>,
    /// Right-hand side: what it adds to the matched e-class.
    pub rhs: Pattern<Lang>,
    /// Predicates that must all hold for the rule to fire.
    pub conditions: Vec<Predicate>,
    pub(crate) rewrite: Rewrite<Lang, Facts>,
}

impl Rule {
    /// The egg rewrite this rule compiles to.
    pub fn rewrite(&self) -> &Rewrite<Lang, Facts> {
        &self.rewrite
    }
}

/// An ordered set of rules with unique names.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// An empty rule set.
    pub fn new() -> RuleSet {
        RuleSet::default()
    }

    /// The built-in rules (`compiler/eqsat/rules/*.rules`, embedded in the binary).
    pub fn builtin() -> RuleSet {
        let mut set = RuleSet::new();
        for (name, text) in BUILTIN_FILES {
            let rules = RuleSet::parse(name, text)
                .unwrap_or_else(|e| unreachable!("built-in rules are checked by tests: {e}"));
            set.extend(rules)
                .unwrap_or_else(|e| unreachable!("built-in rule names are unique: {e}"));
        }
        set
    }

    /// Parses rule-file text; `name` is used as the file name in diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<RuleSet, RuleError> {
        parse_rules(name, text)
            .map(|rules| RuleSet { rules })
            .map_err(RuleError::Invalid)
    }

    /// Reads and parses a rule file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<RuleSet, RuleError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        RuleSet::parse(&path.display().to_string(), &text)
    }

    /// Adds the rules of `other` after these. A rule whose name is already
    /// taken is an error (nothing is added then): rename it, or leave the
    /// built-in rule alone.
    pub fn extend(&mut self, other: RuleSet) -> Result<(), RuleError> {
        let clashes: Vec<Diagnostic> = other
            .rules
            .iter()
            .filter_map(|r| {
                let first = self.get(&r.name)?;
                Some(Diagnostic {
                    file: r.file.clone(),
                    line: r.line,
                    column: 1,
                    rule: Some(r.name.clone()),
                    message: format!(
                        "a rule with this name is already defined at {}:{}",
                        first.file, first.line
                    ),
                })
            })
            .collect();
        if !clashes.is_empty() {
            return Err(RuleError::Invalid(clashes));
        }
        self.rules.extend(other.rules);
        Ok(())
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule called `name`.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The egg rewrites, for running them yourself.
    pub fn rewrites(&self) -> Vec<Rewrite<Lang, Facts>> {
        self.rules.iter().map(|r| r.rewrite.clone()).collect()
    }
}
