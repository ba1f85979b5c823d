//! `ditto-select-kernels`: the e-graph stage's MLIR side.
//!
//! Each `linalg.generic` (one output, on memrefs) is translated from its
//! *structure* — indexing maps, iterator types, body ops — into a term of
//! `ditto_eqsat`'s language. An elementwise generic that reads a buffer last
//! written by a reduction generic (its only other user) gets that producer's
//! term substituted in, so epilogues (bias, residual, scale) are seen whole.
//! The rules saturate the term; if the cheapest term is a kernel, the generic
//! (and the producer and zero-fill it absorbed) become one `ditto.gemv` or
//! `ditto.gemm`. Anything else is left exactly as it was.

use std::collections::{HashMap, HashSet};

use ditto_dialects::codebook::Scheme;
pub use ditto_eqsat::RuleSet;
use ditto_eqsat::{select, CodebookMatrix, Init, Kernel, Term, Trans};
use ditto_ir::melior::{
    ir::{
        attribute::{FloatAttribute, IntegerAttribute},
        block::{BlockArgument, BlockLike},
        operation::{OperationBuilder, OperationLike, OperationRef},
        RegionLike, Value, ValueLike,
    },
    Context,
};

use crate::{
    rewrite::{self, name_of, same, users},
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
        let Some(candidate) = Candidate::build(op) else {
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

/// A scratch matrix written only by a `codebook.dequantize` and read only by
/// one product.
#[derive(Clone)]
struct Dequantized<'c, 'a> {
    op: OperationRef<'c, 'a>,
    scratch: Value<'c, 'a>,
    indices_name: String,
}

/// `affine_map<(d0, d1) -> (d0, d1 floordiv 2)>` → ["d0", "(floordiv d1 2)"].
fn map_results(map: &str) -> Option<Vec<String>> {
    let arrow = map.find("->")?;
    let results = map[arrow + 2..].trim();
    let inner = results
        .strip_prefix('(')?
        .trim_end_matches('>')
        .strip_suffix(')')?;
    if inner.trim().is_empty() {
        return Some(vec![]);
    }
    inner
        .split(',')
        .map(|e| {
            let e = e.trim();
            let words: Vec<&str> = e.split_whitespace().collect();
            match words.as_slice() {
                [d] if is_dim(d) || d.parse::<i64>().is_ok() => Some(d.to_string()),
                [d, "floordiv", c] if is_dim(d) => Some(format!("(floordiv {d} {c})")),
                [d, "mod", c] if is_dim(d) => Some(format!("(mod {d} {c})")),
                _ => Some("opaque".to_string()),
            }
        })
        .collect()
}

fn is_dim(s: &str) -> bool {
    s.strip_prefix('d')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The maps of a generic, one string per operand.
fn indexing_maps(op: OperationRef) -> Option<Vec<String>> {
    let text = op.attribute("indexing_maps").ok()?.to_string();
    Some(
        text.split("affine_map<")
            .skip(1)
            .map(|m| m.trim_end_matches([',', ' ', ']']).to_string())
            .collect(),
    )
}

impl<'c, 'a> Candidate<'c, 'a> {
    fn build(op: OperationRef<'c, 'a>) -> Option<Self> {
        let maps = indexing_maps(op)?;
        let operand_count = op.operand_count();
        if maps.len() != operand_count || operand_count == 0 || op.result_count() != 0 {
            return None;
        }
        let iterators = op.attribute("iterator_types").ok()?.to_string();
        let reductions: Vec<String> = iterators
            .split(',')
            .enumerate()
            .filter(|(_, it)| it.contains("reduction"))
            .map(|(i, _)| format!("d{i}"))
            .collect();
        let body = op.region(0).ok()?.first_block()?;
        let output_index = operand_count - 1;
        let output = op.operand(output_index).ok()?;

        let mut buffers: HashMap<String, Value<'c, 'a>> = HashMap::new();
        let mut reads: Vec<String> = Vec::new();
        let mut dequantized = Vec::new();
        for (i, map) in maps.iter().enumerate() {
            let value = op.operand(i).ok()?;
            let index = map_results(map)?.join(" ");
            let source = match (i < output_index)
                .then(|| dequantized_by(op, value))
                .flatten()
            {
                Some((dequantize, scheme)) => {
                    let indices = buffer_name(&mut buffers, dequantize.operand(0).ok()?);
                    let codebooks = buffer_name(&mut buffers, dequantize.operand(1).ok()?);
                    dequantized.push(Dequantized {
                        op: dequantize,
                        scratch: value,
                        indices_name: indices.clone(),
                    });
                    format!(
                        "(cb.matrix {indices} {codebooks} {} {})",
                        scheme.bits, scheme.block
                    )
                }
                None => buffer_name(&mut buffers, value),
            };
            reads.push(format!("(read {source} (ix {index}))"));
        }
        let out_ix = format!("(ix {})", map_results(&maps[output_index])?.join(" "));

        // The body's yield, as an expression over the block arguments.
        let yield_op = body.terminator()?;
        let yielded = yield_op.operand(0).ok()?;
        let out_arg = body.argument(output_index).ok()?;
        let expr = |v: Value<'c, 'a>| expression(v, &reads, body);
        let mut absorbed = Vec::new();
        let output_fill = previous_writer(op, output).filter(|w| name_of(*w) == "linalg.fill");

        let value_term = if reductions.is_empty() {
            // Elementwise: substitute a product that only feeds this op,
            // read as an input or, in place, through the output.
            let mut text = expr(yielded)?;
            for (i, read) in reads.iter().enumerate() {
                let input = op.operand(i).ok()?;
                let read_ix = read.split_once(" (ix").map(|(_, ix)| format!("(ix{ix}"));
                let Some(read_ix) = read_ix else { continue };
                if let Some((producer, acc, fill, names, inner)) =
                    sole_producer(op, input, &read_ix)
                {
                    text = text.replace(read.as_str(), &acc);
                    buffers.extend(names);
                    dequantized.extend(inner);
                    absorbed.push(producer);
                    absorbed.extend(fill);
                    break;
                }
            }
            text
        } else {
            // Reduction: body must be out + E with E free of out.
            let add = defining_op(yielded)?;
            if name_of(add) != "arith.addf" {
                return None;
            }
            let (l, r) = (add.operand(0).ok()?, add.operand(1).ok()?);
            let summand = if same(l, out_arg.into()) {
                r
            } else if same(r, out_arg.into()) {
                l
            } else {
                return None;
            };
            let e = expr(summand)?;
            if e.contains(&reads[output_index]) {
                return None;
            }
            let init = match output_fill.and_then(fill_value) {
                Some(value) => format!("(fill {})", number(value)),
                None => reads[output_index].clone(),
            };
            format!("(acc {init} (sum (ix {}) {e}))", reductions.join(" "))
        };
        let term = format!("(gen {out_ix} {value_term})").parse().ok()?;
        Some(Candidate {
            term,
            buffers,
            output,
            absorbed,
            output_fill,
            dequantized,
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
                    *alpha,
                    beta,
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
                    *alpha,
                    beta,
                    *ta == Trans::T,
                    *tb == Trans::T,
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
                        let (q, cb) = storage(source.op)?;
                        let build = if vector {
                            ditto_dialects::codebook::gemv
                        } else {
                            ditto_dialects::codebook::gemm
                        };
                        build(
                            context,
                            q,
                            cb,
                            x,
                            self.output,
                            scheme(w),
                            *alpha,
                            beta,
                            location,
                        )
                    }
                    // Ditto's recipe: BLIS on the dequantized scratch, as
                    // y := Ŵ·x or C := X·Ŵᵀ.
                    CodebookKernel::Dequantize if vector => ditto_dialects::ditto::gemv(
                        context,
                        source.scratch,
                        x,
                        self.output,
                        *alpha,
                        beta,
                        false,
                        location,
                    ),
                    CodebookKernel::Dequantize => ditto_dialects::ditto::gemm(
                        context,
                        x,
                        source.scratch,
                        self.output,
                        *alpha,
                        beta,
                        false,
                        true,
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

/// If `value` is a scratch matrix written only by a `codebook.dequantize`
/// and read only by `consumer`, that op and its scheme.
fn dequantized_by<'c, 'a>(
    consumer: OperationRef<'c, 'a>,
    value: Value<'c, 'a>,
) -> Option<(OperationRef<'c, 'a>, Scheme)> {
    let definition = defining_op(value)?;
    if !matches!(
        name_of(definition).as_str(),
        "memref.alloca" | "memref.alloc"
    ) {
        return None;
    }
    let all: Vec<_> = users(consumer, value)
        .into_iter()
        .filter(|u| name_of(*u) != "memref.dealloc")
        .collect();
    let [dequantize, last] = all.as_slice() else {
        return None;
    };
    if name_of(*dequantize) != "codebook.dequantize"
        || !same_op(*last, consumer)
        || !dequantize.operand(2).is_ok_and(|out| same(out, value))
    {
        return None;
    }
    let integer = |name: &str| {
        dequantize
            .attribute(name)
            .ok()
            .and_then(|a| IntegerAttribute::try_from(a).ok())
            .map(|i| i.value())
    };
    Some((
        *dequantize,
        Scheme {
            bits: u8::try_from(integer("bits")?).ok()?,
            block: u64::try_from(integer("block")?).ok()?,
        },
    ))
}

fn same_op(a: OperationRef, b: OperationRef) -> bool {
    a.to_raw().ptr == b.to_raw().ptr
}

fn buffer_name<'c, 'a>(
    buffers: &mut HashMap<String, Value<'c, 'a>>,
    value: Value<'c, 'a>,
) -> String {
    if let Some((name, _)) = buffers.iter().find(|(_, v)| same(**v, value)) {
        return name.clone();
    }
    let name = format!("%b{}", buffers.len());
    buffers.insert(name.clone(), value);
    name
}

fn defining_op<'c, 'a>(value: Value<'c, 'a>) -> Option<OperationRef<'c, 'a>> {
    if value.is_block_argument() {
        return None;
    }
    let result = ditto_ir::melior::ir::operation::OperationResult::try_from(value).ok()?;
    Some(result.owner())
}

fn number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The value of an `arith.constant` float.
fn constant(value: Value) -> Option<f64> {
    let op = defining_op(value)?;
    if name_of(op) != "arith.constant" {
        return None;
    }
    FloatAttribute::try_from(op.attribute("value").ok()?)
        .ok()
        .map(|f| f.value())
}

/// The constant a `linalg.fill` writes.
fn fill_value(fill: OperationRef) -> Option<f64> {
    constant(fill.operand(0).ok()?)
}

/// A body value as a term over the reads of the generic's operands.
fn expression<'c, 'a>(
    value: Value<'c, 'a>,
    reads: &[String],
    body: ditto_ir::melior::ir::BlockRef<'c, 'a>,
) -> Option<String> {
    if value.is_block_argument() {
        let argument = BlockArgument::try_from(value).ok()?;
        if argument.owner().to_raw().ptr != body.to_raw().ptr {
            return None;
        }
        return reads.get(argument.argument_number()).cloned();
    }
    if let Some(c) = constant(value) {
        return Some(number(c));
    }
    let op = defining_op(value)?;
    let operator = match name_of(op).as_str() {
        "arith.mulf" => "*",
        "arith.addf" => "+",
        "arith.subf" => "-",
        "arith.divf" => "/",
        "arith.maximumf" => "max",
        "arith.negf" => "neg",
        _ => {
            let mut args = Vec::new();
            for operand in op.operands() {
                args.push(expression(operand, reads, body).unwrap_or_else(|| "opaque".into()));
            }
            let name = name_of(op).replace('.', "_");
            return Some(format!("(fn {name} {})", args.join(" ")).replace(" )", ")"));
        }
    };
    let mut args = Vec::new();
    for operand in op.operands() {
        args.push(expression(operand, reads, body)?);
    }
    Some(format!("({operator} {})", args.join(" ")))
}

/// The op that last used `buffer` before `op` in the block.
fn previous_writer<'c, 'a>(
    op: OperationRef<'c, 'a>,
    buffer: Value<'c, 'a>,
) -> Option<OperationRef<'c, 'a>> {
    let all = users(op, buffer);
    let position = all.iter().position(|u| same_op(*u, op))?;
    position.checked_sub(1).map(|p| all[p])
}

/// If `input` is a scratch buffer written only by a zero fill and a reduction
/// generic before `consumer` uses it, that generic, its term's value
/// `(acc (fill 0) (sum ...))`, and the fill.
#[allow(clippy::type_complexity)]
fn sole_producer<'c, 'a>(
    consumer: OperationRef<'c, 'a>,
    input: Value<'c, 'a>,
    read_ix: &str,
) -> Option<(
    OperationRef<'c, 'a>,
    String,
    Option<OperationRef<'c, 'a>>,
    Vec<(String, Value<'c, 'a>)>,
    Vec<Dequantized<'c, 'a>>,
)> {
    let definition = defining_op(input)?;
    if !matches!(
        name_of(definition).as_str(),
        "memref.alloca" | "memref.alloc"
    ) {
        return None;
    }
    let all: Vec<_> = users(consumer, input)
        .into_iter()
        .filter(|u| name_of(*u) != "memref.dealloc")
        .collect();
    // Up to the consumer, exactly: fill, producer, consumer. Later users see
    // the buffer only if the consumer writes it in place (its final value is
    // then the kernel's result).
    let [fill, producer, last, later @ ..] = all.as_slice() else {
        return None;
    };
    let in_place = consumer
        .operand(consumer.operand_count() - 1)
        .is_ok_and(|out| same(out, input));
    if !same_op(*last, consumer)
        || (!later.is_empty() && !in_place)
        || name_of(*fill) != "linalg.fill"
        || name_of(*producer) != "linalg.generic"
        || fill_value(*fill) != Some(0.0)
    {
        return None;
    }
    let candidate = Candidate::build(*producer)?;
    if !same(candidate.output, input) {
        return None;
    }
    // The producer's term is (gen IX VALUE); the consumer needs VALUE, with
    // the producer's buffers renamed into the consumer's namespace.
    let text = ditto_eqsat::pretty(&candidate.term);
    let (ix, value) = text.strip_prefix("(gen ")?.split_once(") ")?;
    // The consumer must read the product at the product's own indices.
    if format!("{ix})") != read_ix.trim_end_matches(')').to_string() + ")" {
        return None;
    }
    let mut renamed = value.strip_suffix(')').unwrap_or(value).to_string();
    let mut names: Vec<_> = candidate.buffers.into_iter().collect();
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut mapped = Vec::new();
    let mut dequantized = candidate.dequantized;
    for (name, v) in names {
        let new_name = format!("%p{}", v.to_raw().ptr as usize);
        renamed = renamed.replace(name.as_str(), &new_name);
        for d in dequantized.iter_mut().filter(|d| d.indices_name == name) {
            d.indices_name = new_name.clone();
        }
        mapped.push((new_name, v));
    }
    Some((*producer, renamed, Some(*fill), mapped, dequantized))
}
