//! `ditto-select-kernels`: the e-graph stage's MLIR side.
//!
//! Each `linalg.generic` (one output, on memrefs) is translated from its
//! *structure* — indexing maps, iterator types, body ops, read through
//! MLIR's API and built node by node ([`term`]) — into a term of
//! `ditto_eqsat`'s language. An elementwise generic that reads a buffer last
//! written by a reduction generic (its only other user) gets that producer's
//! term substituted in, so epilogues (bias, residual, scale) are seen whole.
//! The rules saturate the term; if the cheapest term is a kernel, the generic
//! (and the producer and zero-fill it absorbed) become one `ditto.gemv` or
//! `ditto.gemm`. Anything else is left exactly as it was. Which buffers a
//! product may absorb (a dequantized scratch, an epilogue's input) is
//! [`dataflow`]'s; writing the kernel back is this module's.

mod dataflow;
mod term;

use std::collections::{HashMap, HashSet};

use dataflow::{same_op, Dequantized};
use ditto_dialects::{codebook::Scheme, ditto::Transpose, Scale};
pub use ditto_eqsat::RuleSet;
use ditto_eqsat::{select, CodebookMatrix, Init, Kernel, Term, Trans};
use ditto_ir::melior::{
    ir::{
        operation::{OperationBuilder, OperationLike, OperationRef},
        Value,
    },
    Context,
};

use crate::{
    rewrite::{self, same},
    PassError,
};

/// What the stage did.
#[derive(Debug, Default)]
pub struct SelectReport {
    /// Structured ops looked at.
    pub generics: usize,
    pub gemv: usize,
    pub gemm: usize,
    /// Products with codebook matrices done by fused kernels.
    pub codebook_fused: usize,
    /// Products with codebook matrices done by dequantize-then-BLIS.
    pub codebook_dequantized: usize,
}

impl std::fmt::Display for SelectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kernel selection: {} linalg.generic ops → {} BLIS gemv, {} BLIS gemm",
            self.generics, self.gemv, self.gemm
        )?;
        if self.codebook_fused + self.codebook_dequantized > 0 {
            write!(
                f,
                ", {} fused codebook products, {} dequantize+BLIS",
                self.codebook_fused, self.codebook_dequantized
            )?;
        }
        Ok(())
    }
}

/// How a product with a codebook matrix runs, once kernel selection has
/// recognized it (`cb.gemv`/`cb.gemm` in the e-graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodebookKernel {
    /// A fused kernel that reads Ŵ from its codebooks directly
    /// (`codebook.gemv`/`codebook.gemm`).
    #[default]
    Fused,
    /// Ditto's recipe: the `codebook.dequantize` into f32 scratch stays, and
    /// BLIS runs on the scratch (`ditto.gemv`/`ditto.gemm`).
    Dequantize,
}

impl CodebookKernel {
    /// The value of the `codebook-kernels` pass option.
    pub fn as_str(self) -> &'static str {
        match self {
            CodebookKernel::Fused => "fused",
            CodebookKernel::Dequantize => "dequantize",
        }
    }

    /// [`CodebookKernel::as_str`] backwards.
    pub fn parse(text: &str) -> Option<Self> {
        [CodebookKernel::Fused, CodebookKernel::Dequantize]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// The built-in rules plus those of `files` (`--rules FILE`).
pub fn rule_set(files: &[std::path::PathBuf]) -> Result<RuleSet, PassError> {
    let mut rules = RuleSet::builtin();
    for file in files {
        let user = RuleSet::from_file(file).map_err(|e| PassError::new(e.to_string()))?;
        rules
            .extend(user)
            .map_err(|e| PassError::new(e.to_string()))?;
    }
    Ok(rules)
}

/// Runs kernel selection over every block of `module`; products with a
/// codebook matrix become the kernels `codebook` says.
pub fn select_kernels(
    context: &Context,
    module: &ditto_ir::melior::ir::Module,
    rules: &RuleSet,
    codebook: CodebookKernel,
) -> Result<SelectReport, PassError> {
    let mut report = SelectReport::default();
    let generics = rewrite::collect(module.as_operation(), "linalg.generic");
    report.generics = generics.len();
    let mut erased: HashSet<usize> = HashSet::new();
    // Consumers come after their producers: visit in reverse so that an
    // epilogue gets the first chance to absorb its product.
    for op in generics.into_iter().rev() {
        if erased.contains(&(op.to_raw().ptr as usize)) {
            continue;
        }
        let Some(candidate) = Candidate::build(context, op) else {
            continue;
        };
        let selection = select(&candidate.term, rules);
        let Some(kernel) = selection.kernel else {
            continue;
        };
        if let Some(done) = candidate.write_back(context, op, &kernel, codebook)? {
            match kernel {
                Kernel::Gemv { .. } => report.gemv += 1,
                Kernel::Gemm { .. } => report.gemm += 1,
                Kernel::CodebookGemv { .. } | Kernel::CodebookGemm { .. } => match codebook {
                    CodebookKernel::Fused => report.codebook_fused += 1,
                    CodebookKernel::Dequantize => report.codebook_dequantized += 1,
                },
            }
            erased.extend(done.iter().map(|o| o.to_raw().ptr as usize));
            for dead in done {
                rewrite::erase(dead);
            }
        }
    }
    Ok(report)
}

/// A generic translated to a term, with what the term's names stand for.
struct Candidate<'c, 'a> {
    term: Term,
    /// Buffer name in the term → SSA value.
    buffers: HashMap<String, Value<'c, 'a>>,
    output: Value<'c, 'a>,
    /// Ops the kernel replaces besides the generic itself (producer, fills).
    absorbed: Vec<OperationRef<'c, 'a>>,
    /// The zero fill of the output right before it, if any.
    output_fill: Option<OperationRef<'c, 'a>>,
    /// Inputs read as codebook matrices: the `codebook.dequantize` that
    /// wrote each, its f32 scratch, and the index buffer's name in the term.
    dequantized: Vec<Dequantized<'c, 'a>>,
}

impl<'c, 'a> Candidate<'c, 'a> {
    fn build(context: &'c Context, op: OperationRef<'c, 'a>) -> Option<Self> {
        let mut builder = term::Builder::new();
        let translation = term::translate(context, op, &mut builder, term::Namespace("%b"))?;
        let output = op.operand(op.operand_count().checked_sub(1)?).ok()?;
        let buffers = std::mem::take(&mut builder.buffers);
        Some(Candidate {
            term: builder.finish(translation.root),
            buffers,
            output,
            absorbed: translation.absorbed,
            output_fill: translation.output_fill,
            dequantized: translation.dequantized,
        })
    }

    /// Replaces the generic with the kernel; returns the ops to erase, or
    /// `None` if the kernel cannot be written here.
    fn write_back(
        &self,
        context: &Context,
        op: OperationRef<'c, 'a>,
        kernel: &Kernel,
        how: CodebookKernel,
    ) -> Result<Option<Vec<OperationRef<'c, 'a>>>, PassError> {
        let buffer = |name: &str| self.buffers.get(name).copied();
        let location = op.location();
        let (init, beta) = match kernel {
            Kernel::Gemv { y, beta, .. } | Kernel::CodebookGemv { y, beta, .. } => (y, *beta),
            Kernel::Gemm { c, beta, .. } | Kernel::CodebookGemm { c, beta, .. } => (c, *beta),
        };
        // The scratch a codebook matrix was dequantized into, for Ditto's
        // recipe (BLIS on the dequantized matrix), and whether the
        // dequantization goes away (fused kernels).
        let codebook = |w: &CodebookMatrix| {
            self.dequantized
                .iter()
                .find(|d| d.indices_name == w.indices)
                .cloned()
        };
        let mut dead = vec![op];
        dead.extend(self.absorbed.iter().copied());
        match init {
            Init::Zero => {
                if let Some(fill) = self.output_fill {
                    if !self.absorbed.iter().any(|a| same_op(*a, fill)) {
                        dead.push(fill);
                    }
                }
            }
            Init::Copy(source) => {
                let Some(source) = buffer(source) else {
                    return Ok(None);
                };
                if !same(source, self.output) {
                    rewrite::insert_before(
                        op,
                        OperationBuilder::new("memref.copy", location)
                            .add_operands(&[source, self.output])
                            .build()
                            .expect("memref.copy of two memrefs"),
                    );
                }
            }
            Init::Fill(_) => {}
        }
        let scale = |alpha: f32| Scale { alpha, beta };
        let new = match kernel {
            Kernel::Gemv {
                alpha, a, trans, x, ..
            } => {
                let (Some(a), Some(x)) = (buffer(a), buffer(x)) else {
                    return Ok(None);
                };
                ditto_dialects::ditto::gemv(
                    context,
                    a,
                    x,
                    self.output,
                    scale(*alpha),
                    *trans == Trans::T,
                    location,
                )
            }
            Kernel::Gemm {
                alpha,
                a,
                ta,
                b,
                tb,
                ..
            } => {
                let (Some(a), Some(b)) = (buffer(a), buffer(b)) else {
                    return Ok(None);
                };
                ditto_dialects::ditto::gemm(
                    context,
                    a,
                    b,
                    self.output,
                    scale(*alpha),
                    Transpose {
                        a: *ta == Trans::T,
                        b: *tb == Trans::T,
                    },
                    location,
                )
            }
            Kernel::CodebookGemv { alpha, w, x, .. } | Kernel::CodebookGemm { alpha, w, x, .. } => {
                let (Some(source), Some(x)) = (codebook(w), buffer(x)) else {
                    return Ok(None);
                };
                let vector = matches!(kernel, Kernel::CodebookGemv { .. });
                match how {
                    CodebookKernel::Fused => {
                        dead.push(source.op);
                        let (indices, codebooks) = storage(source.op)?;
                        let build = if vector {
                            ditto_dialects::codebook::gemv
                        } else {
                            ditto_dialects::codebook::gemm
                        };
                        let weight = ditto_dialects::codebook::Weight {
                            indices,
                            codebooks,
                            scheme: scheme(w),
                        };
                        build(context, weight, x, self.output, scale(*alpha), location)
                    }
                    // Ditto's recipe: BLIS on the dequantized scratch, as
                    // y := Ŵ·x or C := X·Ŵᵀ.
                    CodebookKernel::Dequantize if vector => ditto_dialects::ditto::gemv(
                        context,
                        source.scratch,
                        x,
                        self.output,
                        scale(*alpha),
                        false,
                        location,
                    ),
                    CodebookKernel::Dequantize => ditto_dialects::ditto::gemm(
                        context,
                        x,
                        source.scratch,
                        self.output,
                        scale(*alpha),
                        Transpose { a: false, b: true },
                        location,
                    ),
                }
            }
        };
        rewrite::insert_before(op, new);
        Ok(Some(dead))
    }
}

fn scheme(w: &CodebookMatrix) -> Scheme {
    Scheme {
        bits: w.bits,
        block: w.block,
    }
}

/// The index and codebook operands of a `codebook.dequantize`.
fn storage<'c, 'a>(
    dequantize: OperationRef<'c, 'a>,
) -> Result<(Value<'c, 'a>, Value<'c, 'a>), PassError> {
    let operand = |i| {
        dequantize
            .operand(i)
            .map_err(|e| PassError::at(dequantize, e.to_string()))
    };
    Ok((operand(0)?, operand(1)?))
}
