//! The term language the MLIR side translates each `linalg.generic` into.
//!
//! See `docs/rule-writing.md` for the full reference. In brief:
//!
//! | form | meaning |
//! |---|---|
//! | `%name` | a buffer (an SSA memref value) |
//! | `d0`, `d1`, … | a loop dimension of the op's iteration space |
//! | `0`, `1`, `0.125`, `-2` | a number |
//! | `(gen IX BODY)` | the op: for every output index tuple `IX`, the element is `BODY` |
//! | `(ix e…)` | an index tuple (dims, numbers, affine `+ * floordiv mod`) |
//! | `(read BUF IX)` | one element of a buffer |
//! | `(acc INIT SUM)` | `INIT + SUM`, `INIT` being the output's initial content |
//! | `(sum (ix dK…) E)` | `E` summed over the listed reduction dims |
//! | `(fill C)` | the constant `C` (the content of a buffer filled with `C`) |
//! | `(+ a b) (- a b) (* a b) (/ a b) (neg a) (max a b)` | scalar arithmetic |
//! | `(floordiv a c) (mod a c)` | affine index arithmetic |
//! | `(fn NAME args…)` | any other scalar op; opaque to the built-in rules |
//! | `opaque`, `(opaque e…)` | anything the MLIR side cannot express |
//! | `(blas.gemv ALPHA A TRANS X BETA Y)` | kernel: `y := BETA·Y + ALPHA·op(A)·x` |
//! | `(blas.gemm ALPHA A TA B TB BETA C)` | kernel: `C := BETA·C + ALPHA·op(A)·op(B)` |
//! | `(tensor.add Y T)`, `(tensor.scale C T)` | whole-output `Y + T` and `C·T`; produced only by rules |
//! | `(cb.matrix Q CB BITS BLOCK)` | a codebook-quantized matrix (docs/codebook-format.md): index stream `Q`, codebooks `CB`; read like a buffer |
//! | `(cb.gemv ALPHA W X BETA Y)` | kernel: `y := BETA·Y + ALPHA·Ŵ·x` (fused or dequantize-then-BLIS: an option of the lowering) |
//! | `(cb.gemm ALPHA X W BETA C)` | kernel: `C := BETA·C + ALPHA·X·Ŵᵀ` |

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use egg::{define_language, Id, Language, RecExpr, Symbol};

define_language! {
    /// The kernel-selection language. Operator spellings are the strings on the left.
    pub enum Lang {
        "gen" = Gen([Id; 2]),
        "ix" = Ix(Box<[Id]>),
        "read" = Read([Id; 2]),
        "acc" = Acc([Id; 2]),
        "sum" = Sum([Id; 2]),
        "fill" = Fill(Id),
        "+" = Add([Id; 2]),
        "-" = Sub([Id; 2]),
        "*" = Mul([Id; 2]),
        "/" = Div([Id; 2]),
        "neg" = Neg(Id),
        "max" = Max([Id; 2]),
        "floordiv" = FloorDiv([Id; 2]),
        "mod" = Mod([Id; 2]),
        "fn" = Fn(Box<[Id]>),
        "opaque" = Opaque(Box<[Id]>),
        "blas.gemv" = Gemv([Id; 6]),
        "blas.gemm" = Gemm([Id; 7]),
        "tensor.add" = TensorAdd([Id; 2]),
        "tensor.scale" = TensorScale([Id; 2]),
        "cb.matrix" = CbMatrix([Id; 4]),
        "cb.gemv" = CbGemv([Id; 5]),
        "cb.gemm" = CbGemm([Id; 5]),
        Num(Num),
        Symbol(Symbol),
    }
}

/// A term of the language, e.g. `"(gen (ix d0) …)".parse::<Term>()`.
pub type Term = RecExpr<Lang>;

/// Prints a term the way it is written in rule files and tests:
/// `(blas.gemv 1 %w n %x 0 (fill 0))`. (egg's own `Display` quotes every
/// symbol containing `%`, which is valid but hard to read.)
pub fn pretty(term: &Term) -> String {
    fn go(term: &Term, id: Id, out: &mut String) {
        let node = &term[id];
        let children = node.children();
        match node {
            Lang::Ix(_) if children.is_empty() => out.push_str("(ix)"),
            _ if children.is_empty() => out.push_str(&node.to_string()),
            _ => {
                out.push('(');
                out.push_str(&node.to_string());
                for &c in children {
                    out.push(' ');
                    go(term, c, out);
                }
                out.push(')');
            }
        }
    }
    let mut out = String::new();
    if !term.as_ref().is_empty() {
        go(term, Id::from(term.as_ref().len() - 1), &mut out);
    }
    out
}

/// How many operands an operator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` operands are acceptable.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exactly(1) => write!(f, "exactly 1 operand"),
            Arity::Exactly(k) => write!(f, "exactly {k} operands"),
            Arity::AtLeast(k) => write!(f, "at least {k} operand(s)"),
        }
    }
}

/// Every operator of [`Lang`] with its arity, in the order of the reference.
pub const OPERATORS: &[(&str, Arity)] = &[
    ("gen", Arity::Exactly(2)),
    ("ix", Arity::AtLeast(0)),
    ("read", Arity::Exactly(2)),
    ("acc", Arity::Exactly(2)),
    ("sum", Arity::Exactly(2)),
    ("fill", Arity::Exactly(1)),
    ("+", Arity::Exactly(2)),
    ("-", Arity::Exactly(2)),
    ("*", Arity::Exactly(2)),
    ("/", Arity::Exactly(2)),
    ("neg", Arity::Exactly(1)),
    ("max", Arity::Exactly(2)),
    ("floordiv", Arity::Exactly(2)),
    ("mod", Arity::Exactly(2)),
    ("fn", Arity::AtLeast(1)),
    ("opaque", Arity::AtLeast(0)),
    ("blas.gemv", Arity::Exactly(6)),
    ("blas.gemm", Arity::Exactly(7)),
    ("tensor.add", Arity::Exactly(2)),
    ("tensor.scale", Arity::Exactly(2)),
    ("cb.matrix", Arity::Exactly(4)),
    ("cb.gemv", Arity::Exactly(5)),
    ("cb.gemm", Arity::Exactly(5)),
];

/// The arity of operator `op`, or `None` if `op` is not an operator (a symbol or number).
pub fn arity(op: &str) -> Option<Arity> {
    OPERATORS.iter().find(|(o, _)| *o == op).map(|(_, a)| *a)
}

/// Whether a symbol names a buffer: `%` followed by at least one character.
pub fn is_buffer_name(s: &str) -> bool {
    s.len() > 1 && s.starts_with('%')
}

/// Whether a symbol names a loop dimension: `d` followed by decimal digits.
pub fn is_dim_name(s: &str) -> bool {
    s.len() > 1 && s.starts_with('d') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

impl Lang {
    /// Whether this node is a kernel call (an extraction target).
    pub fn is_kernel(&self) -> bool {
        matches!(
            self,
            Lang::Gemv(_) | Lang::Gemm(_) | Lang::CbGemv(_) | Lang::CbGemm(_)
        )
    }
}

/// A finite number (`f64`), compared and hashed by value, so that `0`, `0.0`
/// and `-0.0` are the same e-node. Printed as an integer when it is one.
#[derive(Debug, Clone, Copy)]
pub struct Num(f64);

impl Num {
    /// A number, or `None` if `v` is NaN or infinite.
    pub fn new(v: f64) -> Option<Num> {
        if v.is_finite() {
            // Normalize -0.0 to 0.0 so both spellings are one e-node.
            Some(Num(if v == 0.0 { 0.0 } else { v }))
        } else {
            None
        }
    }

    /// The value.
    pub fn value(self) -> f64 {
        self.0
    }

    /// Whether the value is an integer.
    pub fn is_integer(self) -> bool {
        self.0.fract() == 0.0
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Num {}
impl Hash for Num {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}
impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_integer() && self.0.abs() < 9.0e15 {
            write!(f, "{}", self.0 as i64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Error for text that is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a finite number")]
pub struct NotANumber(pub String);

impl FromStr for Num {
    type Err = NotANumber;

    /// Accepts decimal numbers (`3`, `-1`, `0.125`, `1e-5`). Words such as
    /// `inf` or `nan`, which Rust's float parser would take, stay symbols.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        let starts_numeric = digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().any(|b| b.is_ascii_digit());
        if !starts_numeric {
            return Err(NotANumber(s.to_string()));
        }
        s.parse::<f64>()
            .ok()
            .and_then(Num::new)
            .ok_or_else(|| NotANumber(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_and_print() {
        for (text, shown) in [
            ("0", "0"),
            ("0.0", "0"),
            ("-0.0", "0"),
            ("1", "1"),
            ("-2", "-2"),
            ("0.125", "0.125"),
            ("1e-3", "0.001"),
            (".5", "0.5"),
        ] {
            let n: Num = text.parse().unwrap();
            assert_eq!(n.to_string(), shown, "{text}");
        }
        for word in ["inf", "nan", "-inf", "d0", "%x", "n", "-", "e5", "1e999"] {
            assert!(word.parse::<Num>().is_err(), "{word}");
        }
    }

    #[test]
    fn pretty_prints_without_quotes_and_round_trips() {
        for text in [
            "(blas.gemv 0.125 %w n %x 1 %b)",
            "(gen (ix) (acc (fill 0) (sum (ix d0) (fn exp (read %x (ix d0))))))",
            "(read %K (ix d1 (floordiv d0 7) d2))",
            "(+ opaque (opaque 1 %a))",
        ] {
            let t: Term = text.parse().unwrap();
            assert_eq!(pretty(&t), text);
            assert_eq!(pretty(&t).parse::<Term>().unwrap(), t);
        }
    }

    #[test]
    fn zero_spellings_are_one_node() {
        let a: Term = "(fill 0.0)".parse().unwrap();
        let b: Term = "(fill -0)".parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn every_operator_parses_with_its_arity() {
        for (op, arity) in OPERATORS {
            let n = match arity {
                Arity::Exactly(n) | Arity::AtLeast(n) => *n,
            };
            let args = vec!["x"; n].join(" ");
            let text = if n == 0 {
                op.to_string()
            } else {
                format!("({op} {args})")
            };
            let t: Term = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            let root = &t[Id::from(t.as_ref().len() - 1)];
            assert!(
                !matches!(root, Lang::Symbol(_)),
                "{text} parsed as a symbol"
            );
        }
    }

    #[test]
    fn symbol_kinds() {
        assert!(is_buffer_name("%w") && is_buffer_name("%3"));
        assert!(!is_buffer_name("%") && !is_buffer_name("w"));
        assert!(is_dim_name("d0") && is_dim_name("d12"));
        assert!(!is_dim_name("d") && !is_dim_name("dx") && !is_dim_name("%d0"));
    }
}
