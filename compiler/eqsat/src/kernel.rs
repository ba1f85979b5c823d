//! The extracted kernel call, decoded into plain Rust values for the write-back.
//!
//! Kernel term forms (argument order follows the BLAS formula left to right):
//!
//! ```text
//! (blas.gemv ALPHA A TRANS X BETA Y)       y := BETA·Y + ALPHA·op(A)·x
//! (blas.gemm ALPHA A TA B TB BETA C)       C := BETA·C + ALPHA·op(A)·op(B)
//! (cb.gemv ALPHA W X BETA Y)               y := BETA·Y + ALPHA·Ŵ·x
//! (cb.gemm ALPHA X W BETA C)               C := BETA·C + ALPHA·X·Ŵᵀ
//! ```
//!
//! (Whether a codebook product then runs as a fused kernel or as Ditto's
//! dequantize-then-BLAS recipe is decided by the kernel lowering, not here.)
//!
//! W is `(cb.matrix Q CB BITS BLOCK)`: index stream and codebook buffers and
//! the quantization scheme of a codebook matrix Ŵ [N, K].
//!
//! * ALPHA, BETA: numbers.
//! * A, X, B: buffer symbols (`%w`). TRANS/TA/TB: `n` or `t`.
//!   GEMV `n`: A is indexed `[i, k]` (row i gives `y[i]`); `t`: A is indexed `[k, i]`.
//!   GEMM: op(A) is m×k (`n`: A is `[m, k]`; `t`: A is `[k, m]`),
//!   op(B) is k×n (`n`: B is `[k, n]`; `t`: B is `[n, k]`).
//! * Y, C (the initial content of the output): `(fill C)`, or a buffer symbol
//!   `%b` meaning "the output starts as a copy of `%b`" (same shape and index
//!   order as the output).

use std::fmt;

use egg::{Id, Language};

use crate::lang::{is_buffer_name, Lang, Term};

/// Whether a matrix operand is used as stored (`n`) or transposed (`t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trans {
    /// As stored.
    N,
    /// Transposed.
    T,
}

impl fmt::Display for Trans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trans::N => "n",
            Trans::T => "t",
        })
    }
}

/// What the output holds before the kernel adds `ALPHA·op(A)·…` to `BETA·` it.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Nothing to keep: call with BETA = 0 (the kernel overwrites the output).
    Zero,
    /// The output starts as a copy of this buffer (same shape). When the
    /// buffer is the output itself, nothing is to be copied.
    Copy(String),
    /// The output starts filled with this constant (only from user rules; the
    /// built-in rules recognize a zero fill only).
    Fill(f32),
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Zero => f.write_str("zero"),
            Init::Copy(b) => write!(f, "copy({b})"),
            Init::Fill(c) => write!(f, "fill({c})"),
        }
    }
}

/// A codebook-quantized matrix operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodebookMatrix {
    /// The packed index stream buffer.
    pub indices: String,
    /// The codebooks buffer.
    pub codebooks: String,
    /// Bits per index.
    pub bits: u8,
    /// Weights per codebook.
    pub block: u64,
}

/// A recognized kernel call.
#[derive(Debug, Clone, PartialEq)]
pub enum Kernel {
    /// `y := beta·y + alpha·op(a)·x` (BLIS `sgemv`).
    Gemv {
        /// ALPHA.
        alpha: f32,
        /// The matrix buffer.
        a: String,
        /// How `a` is indexed.
        trans: Trans,
        /// The vector buffer.
        x: String,
        /// BETA (0 when `y` is [`Init::Zero`]).
        beta: f32,
        /// The output's initial content.
        y: Init,
    },
    /// `c := beta·c + alpha·op(a)·op(b)` (BLIS `sgemm`).
    Gemm {
        /// ALPHA.
        alpha: f32,
        /// The left matrix buffer (m×k after `ta`).
        a: String,
        /// How `a` is indexed.
        ta: Trans,
        /// The right matrix buffer (k×n after `tb`).
        b: String,
        /// How `b` is indexed.
        tb: Trans,
        /// BETA (0 when `c` is [`Init::Zero`]).
        beta: f32,
        /// The output's initial content.
        c: Init,
    },
    /// `y := beta·y + alpha·Ŵ·x`, Ŵ a codebook matrix [N, K].
    CodebookGemv {
        /// ALPHA.
        alpha: f32,
        /// Ŵ.
        w: CodebookMatrix,
        /// The vector buffer.
        x: String,
        /// BETA (0 when `y` is [`Init::Zero`]).
        beta: f32,
        /// The output's initial content.
        y: Init,
    },
    /// `c := beta·c + alpha·x·Ŵᵀ`, x [M, K], Ŵ a codebook matrix [N, K].
    CodebookGemm {
        /// ALPHA.
        alpha: f32,
        /// The left matrix buffer.
        x: String,
        /// Ŵ.
        w: CodebookMatrix,
        /// BETA (0 when `c` is [`Init::Zero`]).
        beta: f32,
        /// The output's initial content.
        c: Init,
    },
}

/// Why a kernel term could not be decoded (a user rule built a malformed one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed kernel term `{term}`: {problem}")]
pub struct DecodeError {
    /// The kernel term as extracted.
    pub term: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Kernel {
    /// Decodes the root of an extracted term. `Ok(None)` when the root is not
    /// a kernel node.
    pub fn decode(term: &Term) -> Result<Option<Kernel>, DecodeError> {
        let nodes = term.as_ref();
        let Some(root) = nodes.last() else {
            return Ok(None);
        };
        let err = |problem: String| DecodeError {
            term: crate::lang::pretty(term),
            problem,
        };
        let node = |id: Id| &term[id];
        let number = |id: Id, what: &str| match node(id) {
            Lang::Num(n) => Ok(n.value() as f32),
            other => Err(err(format!(
                "{what} must be a number, found `{}`",
                sub(term, other)
            ))),
        };
        let buffer = |id: Id, what: &str| match node(id) {
            Lang::Symbol(s) if is_buffer_name(s.as_str()) => Ok(s.to_string()),
            other => Err(err(format!(
                "{what} must be a buffer, found `{}`",
                sub(term, other)
            ))),
        };
        let trans = |id: Id, what: &str| match node(id) {
            Lang::Symbol(s) if s.as_str() == "n" => Ok(Trans::N),
            Lang::Symbol(s) if s.as_str() == "t" => Ok(Trans::T),
            other => Err(err(format!(
                "{what} must be `n` or `t`, found `{}`",
                sub(term, other)
            ))),
        };
        let init = |beta: f32, id: Id, what: &str| -> Result<(f32, Init), DecodeError> {
            let init = match node(id) {
                Lang::Fill(c) => match node(*c) {
                    Lang::Num(n) if n.value() == 0.0 => Init::Zero,
                    Lang::Num(n) => Init::Fill(n.value() as f32),
                    other => {
                        let shown = sub(term, other);
                        return Err(err(format!(
                            "{what} fill value must be a number, found `{shown}`"
                        )));
                    }
                },
                Lang::Symbol(s) if is_buffer_name(s.as_str()) => Init::Copy(s.to_string()),
                other => {
                    let shown = sub(term, other);
                    return Err(err(format!(
                        "{what} must be `(fill C)` or a buffer, found `{shown}`"
                    )));
                }
            };
            Ok(if beta == 0.0 || init == Init::Zero {
                (0.0, Init::Zero)
            } else {
                (beta, init)
            })
        };
        let codebook = |id: Id| -> Result<CodebookMatrix, DecodeError> {
            let Lang::CbMatrix([q, c, b, block]) = node(id) else {
                return Err(err(format!(
                    "W must be `(cb.matrix Q CB BITS BLOCK)`, found `{}`",
                    sub(term, node(id))
                )));
            };
            let bits = number(*b, "BITS")?;
            let block = number(*block, "BLOCK")?;
            if ![2.0, 3.0, 4.0, 5.0, 6.0, 8.0].contains(&bits)
                || block < 8.0
                || block.fract() != 0.0
            {
                return Err(err(format!(
                    "unsupported codebook scheme: {bits} bits, block {block}"
                )));
            }
            Ok(CodebookMatrix {
                indices: buffer(*q, "Q")?,
                codebooks: buffer(*c, "CB")?,
                bits: bits as u8,
                block: block as u64,
            })
        };
        Ok(Some(match root {
            Lang::Gemv([al, a, t, x, be, y]) => {
                let (beta, y) = init(number(*be, "BETA")?, *y, "Y")?;
                Kernel::Gemv {
                    alpha: number(*al, "ALPHA")?,
                    a: buffer(*a, "A")?,
                    trans: trans(*t, "TRANS")?,
                    x: buffer(*x, "X")?,
                    beta,
                    y,
                }
            }
            Lang::Gemm([al, a, ta, b, tb, be, c]) => {
                let (beta, c) = init(number(*be, "BETA")?, *c, "C")?;
                Kernel::Gemm {
                    alpha: number(*al, "ALPHA")?,
                    a: buffer(*a, "A")?,
                    ta: trans(*ta, "TA")?,
                    b: buffer(*b, "B")?,
                    tb: trans(*tb, "TB")?,
                    beta,
                    c,
                }
            }
            Lang::CbGemv([al, w, x, be, y]) => {
                let (beta, y) = init(number(*be, "BETA")?, *y, "Y")?;
                Kernel::CodebookGemv {
                    alpha: number(*al, "ALPHA")?,
                    w: codebook(*w)?,
                    x: buffer(*x, "X")?,
                    beta,
                    y,
                }
            }
            Lang::CbGemm([al, x, w, be, c]) => {
                let (beta, c) = init(number(*be, "BETA")?, *c, "C")?;
                Kernel::CodebookGemm {
                    alpha: number(*al, "ALPHA")?,
                    x: buffer(*x, "X")?,
                    w: codebook(*w)?,
                    beta,
                    c,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The buffers the kernel reads, by role: `("A", …), ("x", …)` and, for a
    /// copied initial content, `("y", …)` (GEMM: `A`, `B`, `C`).
    pub fn buffers(&self) -> Vec<(&'static str, &str)> {
        let (mut out, init, role) = match self {
            Kernel::Gemv { a, x, y, .. } => (vec![("A", a.as_str()), ("x", x.as_str())], y, "y"),
            Kernel::Gemm { a, b, c, .. } => (vec![("A", a.as_str()), ("B", b.as_str())], c, "C"),
            Kernel::CodebookGemv { w, x, y, .. } => (
                vec![
                    ("Q", w.indices.as_str()),
                    ("CB", w.codebooks.as_str()),
                    ("x", x.as_str()),
                ],
                y,
                "y",
            ),
            Kernel::CodebookGemm { x, w, c, .. } => (
                vec![
                    ("X", x.as_str()),
                    ("Q", w.indices.as_str()),
                    ("CB", w.codebooks.as_str()),
                ],
                c,
                "C",
            ),
        };
        if let Init::Copy(buf) = init {
            out.push((role, buf.as_str()));
        }
        out
    }
}

impl fmt::Display for CodebookMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "codebook({}, {}, {} bits, block {})",
            self.indices, self.codebooks, self.bits, self.block
        )
    }
}

fn sub(term: &Term, node: &Lang) -> String {
    match node {
        Lang::Num(_) | Lang::Symbol(_) => node.to_string(),
        _ => crate::lang::pretty(&node.build_recexpr(|c| term[c].clone())),
    }
}

fn fmt_num(f: &mut fmt::Formatter<'_>, v: f32) -> fmt::Result {
    write!(f, "{v}")
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kernel::Gemv {
                alpha,
                a,
                trans,
                x,
                beta,
                y,
            } => {
                f.write_str("sgemv(alpha=")?;
                fmt_num(f, *alpha)?;
                write!(f, ", A={a}, trans={trans}, x={x}, beta=")?;
                fmt_num(f, *beta)?;
                write!(f, ", y={y})")
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
                f.write_str("sgemm(alpha=")?;
                fmt_num(f, *alpha)?;
                write!(f, ", A={a}, ta={ta}, B={b}, tb={tb}, beta=")?;
                fmt_num(f, *beta)?;
                write!(f, ", C={c})")
            }
            Kernel::CodebookGemv {
                alpha,
                w,
                x,
                beta,
                y,
            } => {
                f.write_str("cb_gemv(alpha=")?;
                fmt_num(f, *alpha)?;
                write!(f, ", W={w}, x={x}, beta=")?;
                fmt_num(f, *beta)?;
                write!(f, ", y={y})")
            }
            Kernel::CodebookGemm {
                alpha,
                x,
                w,
                beta,
                c,
            } => {
                f.write_str("cb_gemm(alpha=")?;
                fmt_num(f, *alpha)?;
                write!(f, ", X={x}, W={w}, beta=")?;
                fmt_num(f, *beta)?;
                write!(f, ", C={c})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Option<Kernel>, DecodeError> {
        Kernel::decode(&text.parse().unwrap())
    }

    #[test]
    fn decodes_gemv_and_gemm() {
        assert_eq!(
            decode("(blas.gemv 0.5 %w t %x 1 %b)").unwrap(),
            Some(Kernel::Gemv {
                alpha: 0.5,
                a: "%w".into(),
                trans: Trans::T,
                x: "%x".into(),
                beta: 1.0,
                y: Init::Copy("%b".into()),
            })
        );
        let k = decode("(blas.gemm 1 %x n %w t 0 (fill 0))")
            .unwrap()
            .unwrap();
        assert_eq!(
            k.to_string(),
            "sgemm(alpha=1, A=%x, ta=n, B=%w, tb=t, beta=0, C=zero)"
        );
        assert_eq!(k.buffers(), vec![("A", "%x"), ("B", "%w")]);
    }

    #[test]
    fn normalizes_beta_and_init() {
        let k = decode("(blas.gemv 1 %w n %x 0 %b)").unwrap().unwrap();
        assert!(matches!(
            k,
            Kernel::Gemv {
                beta: 0.0,
                y: Init::Zero,
                ..
            }
        ));
        let k = decode("(blas.gemv 1 %w n %x 1 (fill 0))").unwrap().unwrap();
        assert!(matches!(
            k,
            Kernel::Gemv {
                beta: 0.0,
                y: Init::Zero,
                ..
            }
        ));
        let k = decode("(blas.gemv 1 %w n %x 1 (fill 2))").unwrap().unwrap();
        assert!(matches!(
            k,
            Kernel::Gemv {
                y: Init::Fill(2.0),
                ..
            }
        ));
    }

    #[test]
    fn non_kernels_and_malformed_kernels() {
        assert_eq!(decode("(gen (ix d0) 0)").unwrap(), None);
        let e = decode("(blas.gemv (* 2 d0) %w n %x 0 (fill 0))").unwrap_err();
        assert!(e.problem.contains("ALPHA must be a number"), "{e}");
        let e = decode("(blas.gemv 1 d0 n %x 0 (fill 0))").unwrap_err();
        assert!(e.problem.contains("A must be a buffer"), "{e}");
        let e = decode("(blas.gemm 1 %a x %b n 0 (fill 0))").unwrap_err();
        assert!(e.problem.contains("TA must be `n` or `t`"), "{e}");
    }
}
