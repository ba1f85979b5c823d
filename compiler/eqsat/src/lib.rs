//! The e-graph stage: kernel-selection language, rule files, cost model, extraction (egg).
//!
//! The MLIR side translates one `linalg.generic` into a [`Term`] of the
//! [language](lang), calls [`select()`] with a [`RuleSet`] (the
//! [built-in rules](RuleSet::builtin), possibly [extended](RuleSet::extend) by
//! user rule files), and, when [`Selection::kernel`] is `Some`, replaces the op
//! by the BLIS call it describes. See `docs/rule-writing.md`.
//!
//! ```
//! use ditto_eqsat::{select, Init, Kernel, RuleSet, Term, Trans};
//!
//! let op: Term = "(gen (ix d0) (acc (fill 0) (sum (ix d1)
//!                   (* (read %w (ix d0 d1)) (read %x (ix d1))))))".parse().unwrap();
//! let sel = select(&op, &RuleSet::builtin());
//! assert_eq!(sel.kernel, Some(Kernel::Gemv {
//!     alpha: 1.0, a: "%w".into(), trans: Trans::N, x: "%x".into(), beta: 0.0, y: Init::Zero,
//! }));
//! ```

pub mod analysis;
pub mod cost;
pub mod error;
pub mod kernel;
pub mod lang;
pub mod predicate;
mod rulefile;
pub mod ruleset;
pub mod select;
pub mod sexp;

pub use analysis::{Facts, Graph};
pub use cost::KernelCost;
pub use error::{Diagnostic, RuleError};
pub use kernel::{CodebookMatrix, DecodeError, Init, Kernel, Trans};
pub use lang::{pretty, Lang, Num, Term};
pub use predicate::{Predicate, VOCABULARY};
pub use ruleset::{Rule, RuleSet};
pub use select::{select, select_with, Firing, Limits, SelectOptions, Selection, Stop};
