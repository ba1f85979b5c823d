//! A `linalg.generic` as a term of `ditto_eqsat`'s language, read from the
//! op's structure through MLIR's API: indexing maps as affine maps, iterator
//! types as attributes, the body as ops and values. The term is built node
//! by node; each buffer is a symbol standing for one SSA value.

use std::collections::HashMap;

use ditto_eqsat::{Lang, Num, Term};
use ditto_ir::melior::{
    ir::{
        attribute::ArrayAttribute,
        block::{BlockArgument, BlockLike},
        operation::{OperationLike, OperationRef},
        AffineExpr, AffineMap, Attribute, AttributeLike, BlockRef, RegionLike, Value, ValueLike,
    },
    Context,
};
use egg::{Id, Language, RecExpr, Symbol};

use super::dataflow::{self, Dequantized};
use crate::rewrite::{name_of, same};

/// A term under construction, and what its buffer symbols stand for.
pub(super) struct Builder<'c, 'a> {
    nodes: RecExpr<Lang>,
    /// Buffer symbol → SSA value.
    pub buffers: HashMap<String, Value<'c, 'a>>,
}

/// One generic's buffers get symbols with one prefix (`%b0`, `%b1`, … for
/// the op itself; `%p0`, … for a producer substituted into it), so the two
/// ops' names never collide.
#[derive(Clone, Copy)]
pub(super) struct Namespace(pub &'static str);

impl<'c, 'a> Builder<'c, 'a> {
    pub fn new() -> Self {
        Builder {
            nodes: RecExpr::default(),
            buffers: HashMap::new(),
        }
    }

    fn add(&mut self, node: Lang) -> Id {
        self.nodes.add(node)
    }

    fn symbol(&mut self, name: &str) -> Id {
        self.add(Lang::Symbol(Symbol::from(name)))
    }

    /// A number; a NaN or an infinity stays a symbol the rules never match.
    fn number(&mut self, value: f64) -> Id {
        match Num::new(value) {
            Some(n) => self.add(Lang::Num(n)),
            None => self.symbol(&value.to_string()),
        }
    }

    fn opaque(&mut self) -> Id {
        self.add(Lang::Opaque(Box::new([])))
    }

    /// The symbol of buffer `value` in `namespace` (one per value).
    pub fn buffer(&mut self, namespace: Namespace, value: Value<'c, 'a>) -> Id {
        let existing = self
            .buffers
            .iter()
            .find(|(name, v)| name.starts_with(namespace.0) && same(**v, value))
            .map(|(name, _)| name.clone());
        let name = existing.unwrap_or_else(|| {
            let count = self
                .buffers
                .keys()
                .filter(|n| n.starts_with(namespace.0))
                .count();
            let name = format!("{}{count}", namespace.0);
            self.buffers.insert(name.clone(), value);
            name
        });
        self.symbol(&name)
    }

    /// The symbol `id` holds (a buffer's name).
    pub fn symbol_name(&self, id: Id) -> String {
        self.nodes[id].to_string()
    }

    /// The term rooted at `root`, as a tree in post-order (children left to
    /// right before their parent): the form a printed term parses back to.
    pub fn finish(self, root: Id) -> Term {
        fn emit(from: &RecExpr<Lang>, id: Id, to: &mut RecExpr<Lang>) -> Id {
            let node = from[id].clone().map_children(|child| emit(from, child, to));
            to.add(node)
        }
        let mut tree = RecExpr::default();
        emit(&self.nodes, root, &mut tree);
        tree
    }
}

/// A generic's structure: one affine map per operand, the reduction dims.
pub(super) struct Structure<'c, 'a> {
    pub maps: Vec<AffineMap<'c>>,
    pub reductions: Vec<usize>,
    pub body: BlockRef<'c, 'a>,
    /// The last operand (the only output).
    pub output: Value<'c, 'a>,
}

impl<'c, 'a> Structure<'c, 'a> {
    pub fn of(context: &'c Context, op: OperationRef<'c, 'a>) -> Option<Self> {
        let maps = array(op.attribute("indexing_maps").ok()?)?
            .into_iter()
            .map(affine_map)
            .collect::<Option<Vec<_>>>()?;
        let operands = op.operand_count();
        if maps.len() != operands || operands == 0 || op.result_count() != 0 {
            return None;
        }
        let reduction = Attribute::parse(context, "#linalg.iterator_type<reduction>")?;
        let reductions = array(op.attribute("iterator_types").ok()?)?
            .into_iter()
            .enumerate()
            .filter(|(_, iterator)| *iterator == reduction)
            .map(|(dim, _)| dim)
            .collect();
        Some(Structure {
            maps,
            reductions,
            body: op.region(0).ok()?.first_block()?,
            output: op.operand(operands - 1).ok()?,
        })
    }

    pub fn output_index(&self) -> usize {
        self.maps.len() - 1
    }

    /// The results of operand `i`'s map: its index into the operand.
    pub fn index(&self, i: usize) -> Vec<AffineExpr<'c>> {
        results(self.maps[i])
    }
}

fn array(attribute: Attribute) -> Option<Vec<Attribute>> {
    let array = ArrayAttribute::try_from(attribute).ok()?;
    (0..array.len()).map(|i| array.element(i).ok()).collect()
}

fn affine_map(attribute: Attribute) -> Option<AffineMap> {
    // SAFETY: a live attribute, checked to be an affine map attribute.
    unsafe {
        if !mlir_sys::mlirAttributeIsAAffineMap(attribute.to_raw()) {
            return None;
        }
        Some(AffineMap::from_raw(mlir_sys::mlirAffineMapAttrGetValue(
            attribute.to_raw(),
        )))
    }
}

fn results(map: AffineMap) -> Vec<AffineExpr> {
    (0..map.result_count())
        .filter_map(|i| map.result(i).ok())
        .collect()
}

/// `(ix e…)` of affine expressions: dims, constants, `dK floordiv C`,
/// `dK mod C`; anything else is `opaque`.
fn index_tuple(builder: &mut Builder, exprs: &[AffineExpr]) -> Id {
    let ids: Vec<Id> = exprs.iter().map(|e| index_expr(builder, *e)).collect();
    builder.add(Lang::Ix(ids.into_boxed_slice()))
}

fn index_expr(builder: &mut Builder, e: AffineExpr) -> Id {
    let dim =
        |builder: &mut Builder, e: AffineExpr| builder.symbol(&format!("d{}", e.dim_position()));
    if e.is_dim() {
        dim(builder, e)
    } else if e.is_constant() {
        builder.number(e.constant_value() as f64)
    } else if (e.is_floor_div() || e.is_mod()) && e.lhs().is_dim() && e.rhs().is_constant() {
        let lhs = dim(builder, e.lhs());
        let rhs = builder.number(e.rhs().constant_value() as f64);
        builder.add(if e.is_floor_div() {
            Lang::FloorDiv([lhs, rhs])
        } else {
            Lang::Mod([lhs, rhs])
        })
    } else {
        builder.opaque()
    }
}

/// What [`translate`] made of a generic.
pub(super) struct Translation<'c, 'a> {
    /// `(gen IX VALUE)`.
    pub root: Id,
    /// VALUE alone.
    pub value: Id,
    /// Ops the term absorbed besides the generic (a producer, its fill).
    pub absorbed: Vec<OperationRef<'c, 'a>>,
    /// The zero fill of the output right before the generic, if any.
    pub output_fill: Option<OperationRef<'c, 'a>>,
    /// Inputs read as codebook matrices.
    pub dequantized: Vec<Dequantized<'c, 'a>>,
}

/// Translates `op` into `builder`; `None` if it is not a generic the
/// language can express.
pub(super) fn translate<'c, 'a>(
    context: &'c Context,
    op: OperationRef<'c, 'a>,
    builder: &mut Builder<'c, 'a>,
    namespace: Namespace,
) -> Option<Translation<'c, 'a>> {
    translate_structure(context, op, Structure::of(context, op)?, builder, namespace)
}

/// [`translate`] of an op whose structure is read already.
fn translate_structure<'c, 'a>(
    context: &'c Context,
    op: OperationRef<'c, 'a>,
    structure: Structure<'c, 'a>,
    builder: &mut Builder<'c, 'a>,
    namespace: Namespace,
) -> Option<Translation<'c, 'a>> {
    let output_index = structure.output_index();
    let mut dequantized = Vec::new();
    let mut reads: Vec<Id> = Vec::new();
    for i in 0..structure.maps.len() {
        let value = op.operand(i).ok()?;
        let source = match (i < output_index)
            .then(|| dataflow::dequantized_by(op, value))
            .flatten()
        {
            Some((dequantize, scheme)) => {
                let indices = builder.buffer(namespace, dequantize.operand(0).ok()?);
                let codebooks = builder.buffer(namespace, dequantize.operand(1).ok()?);
                dequantized.push(Dequantized {
                    op: dequantize,
                    scratch: value,
                    indices_name: builder.symbol_name(indices),
                });
                let bits = builder.number(scheme.bits as f64);
                let block = builder.number(scheme.block as f64);
                builder.add(Lang::CbMatrix([indices, codebooks, bits, block]))
            }
            None => builder.buffer(namespace, value),
        };
        let ix = index_tuple(builder, &structure.index(i));
        reads.push(builder.add(Lang::Read([source, ix])));
    }
    // Operands read as the same buffer at the same index: one read.
    let same_read = |i: usize, j: usize| {
        op.operand(i)
            .ok()
            .zip(op.operand(j).ok())
            .is_some_and(|(a, b)| same(a, b))
            && structure.index(i) == structure.index(j)
    };

    let body = structure.body;
    let yielded = body.terminator()?.operand(0).ok()?;
    let out_arg: Value = body.argument(output_index).ok()?.into();
    let output_fill =
        dataflow::previous_writer(op, structure.output).filter(|w| name_of(*w) == "linalg.fill");
    let mut absorbed = Vec::new();

    let value = if structure.reductions.is_empty() {
        // Elementwise: substitute a product that only feeds this op, read as
        // an input or, in place, through the output.
        // The whole expression must translate before anything is absorbed.
        expression(builder, yielded, &reads, body)?;
        let mut reads = reads;
        for i in 0..reads.len() {
            let input = op.operand(i).ok()?;
            let Some(producer) = dataflow::sole_producer(op, input) else {
                continue;
            };
            let Some(product) = producer_value(
                context,
                producer.generic,
                input,
                &structure.index(i),
                builder,
            ) else {
                continue;
            };
            for (j, read) in reads.iter_mut().enumerate() {
                if same_read(i, j) {
                    *read = product.value;
                }
            }
            dequantized.extend(product.dequantized);
            absorbed.push(producer.generic);
            absorbed.push(producer.fill);
            break;
        }
        expression(builder, yielded, &reads, body)?
    } else {
        // Reduction: the body must be out + E, E free of out.
        let add = dataflow::defining_op(yielded)?;
        if name_of(add) != "arith.addf" {
            return None;
        }
        let (l, r) = (add.operand(0).ok()?, add.operand(1).ok()?);
        let summand = if same(l, out_arg) {
            r
        } else if same(r, out_arg) {
            l
        } else {
            return None;
        };
        let e = expression(builder, summand, &reads, body)?;
        let outputs: Vec<Id> = (0..reads.len())
            .filter(|&j| same_read(output_index, j))
            .map(|j| reads[j])
            .collect();
        if builder.reaches(e, &outputs) {
            return None;
        }
        let init = match output_fill.and_then(dataflow::fill_value) {
            Some(value) => {
                let c = builder.number(value);
                builder.add(Lang::Fill(c))
            }
            None => reads[output_index],
        };
        let dims: Vec<Id> = structure
            .reductions
            .iter()
            .map(|d| builder.symbol(&format!("d{d}")))
            .collect();
        let dims = builder.add(Lang::Ix(dims.into_boxed_slice()));
        let sum = builder.add(Lang::Sum([dims, e]));
        builder.add(Lang::Acc([init, sum]))
    };
    let out_ix = index_tuple(builder, &structure.index(output_index));
    let root = builder.add(Lang::Gen([out_ix, value]));
    Some(Translation {
        root,
        value,
        absorbed,
        output_fill,
        dequantized,
    })
}

/// The value `producer` computes into `input`, translated into `builder`
/// under its own buffer names (`%p…`, shared by producers of producers), if
/// the consumer reads it at the producer's own output index.
fn producer_value<'c, 'a>(
    context: &'c Context,
    producer: OperationRef<'c, 'a>,
    input: Value<'c, 'a>,
    read_index: &[AffineExpr<'c>],
    builder: &mut Builder<'c, 'a>,
) -> Option<Translation<'c, 'a>> {
    let structure = Structure::of(context, producer)?;
    if !same(structure.output, input) || structure.index(structure.output_index()) != read_index {
        return None;
    }
    translate_structure(context, producer, structure, builder, Namespace("%p"))
}

impl Builder<'_, '_> {
    /// Whether the term under `root` contains any of `targets`.
    fn reaches(&self, root: Id, targets: &[Id]) -> bool {
        targets.contains(&root)
            || self.nodes[root]
                .children()
                .iter()
                .any(|&c| self.reaches(c, targets))
    }
}

/// A body value as a term over the reads of the generic's operands.
fn expression<'c, 'a>(
    builder: &mut Builder<'c, 'a>,
    value: Value<'c, 'a>,
    reads: &[Id],
    body: BlockRef<'c, 'a>,
) -> Option<Id> {
    if value.is_block_argument() {
        let argument = BlockArgument::try_from(value).ok()?;
        if argument.owner().to_raw().ptr != body.to_raw().ptr {
            return None;
        }
        return reads.get(argument.argument_number()).copied();
    }
    if let Some(c) = dataflow::constant(value) {
        return Some(builder.number(c));
    }
    let op = dataflow::defining_op(value)?;
    let name = name_of(op);
    let binary = |l, r| match name.as_str() {
        "arith.mulf" => Some(Lang::Mul([l, r])),
        "arith.addf" => Some(Lang::Add([l, r])),
        "arith.subf" => Some(Lang::Sub([l, r])),
        "arith.divf" => Some(Lang::Div([l, r])),
        "arith.maximumf" => Some(Lang::Max([l, r])),
        _ => None,
    };
    let known = matches!(
        name.as_str(),
        "arith.mulf" | "arith.addf" | "arith.subf" | "arith.divf" | "arith.maximumf" | "arith.negf"
    );
    if !known {
        // Any other scalar op: `(fn NAME args…)`, opaque to the built-ins.
        let function = builder.symbol(&name.replace('.', "_"));
        let mut children = vec![function];
        for operand in op.operands() {
            let arg = expression(builder, operand, reads, body).unwrap_or_else(|| builder.opaque());
            children.push(arg);
        }
        return Some(builder.add(Lang::Fn(children.into_boxed_slice())));
    }
    let mut args = Vec::new();
    for operand in op.operands() {
        args.push(expression(builder, operand, reads, body)?);
    }
    let node = match (name.as_str(), args.as_slice()) {
        ("arith.negf", [a]) => Lang::Neg(*a),
        (_, [l, r]) => binary(*l, *r)?,
        _ => return None,
    };
    Some(builder.add(node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite;

    const BIAS_EPILOGUE: &str = r#"
func.func @gemv_bias(%a: memref<8x4xf32>, %x: memref<4xf32>, %b: memref<8xf32>, %y: memref<8xf32>) {
  %zero = arith.constant 0.0 : f32
  %t = memref.alloca() : memref<8xf32>
  linalg.fill ins(%zero : f32) outs(%t : memref<8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (k)>, affine_map<(i, k) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%a, %x : memref<8x4xf32>, memref<4xf32>) outs(%t : memref<8xf32>) {
  ^bb0(%av: f32, %xv: f32, %acc: f32):
    %p = arith.mulf %av, %xv : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i floordiv 2)>, affine_map<(i) -> (i)>],
                  iterator_types = ["parallel"]}
      ins(%t, %b : memref<8xf32>, memref<8xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%tv: f32, %bv: f32, %out: f32):
    %e = math.exp %bv : f32
    %r = arith.addf %tv, %e : f32
    linalg.yield %r : f32
  }
  return
}"#;

    /// The terms of both generics, read from their structure: maps (with a
    /// floordiv), reduction dims, body ops, an opaque op, and the producer
    /// substituted into its epilogue under its own buffer names.
    #[test]
    fn generics_become_terms_node_by_node() {
        let context = ditto_ir::create_context().unwrap();
        let module = ditto_ir::parse_module(&context, BIAS_EPILOGUE, "t.mlir").unwrap();
        let generics = rewrite::collect(module.as_operation(), "linalg.generic");
        let term = |op| {
            let mut builder = Builder::new();
            let t = translate(&context, op, &mut builder, Namespace("%b")).unwrap();
            let names: Vec<String> = {
                let mut n: Vec<_> = builder.buffers.keys().cloned().collect();
                n.sort();
                n
            };
            (
                ditto_eqsat::pretty(&builder.finish(t.root)),
                names,
                t.absorbed.len(),
            )
        };
        assert_eq!(
            term(generics[0]),
            (
                "(gen (ix d0) (acc (fill 0) (sum (ix d1) (* (read %b0 (ix d0 d1)) (read %b1 (ix d1))))))".into(),
                vec!["%b0".into(), "%b1".into(), "%b2".into()],
                0
            )
        );
        assert_eq!(
            term(generics[1]),
            (
                "(gen (ix d0) (+ (acc (fill 0) (sum (ix d1) (* (read %p0 (ix d0 d1)) (read %p1 (ix d1))))) (fn math_exp (read %b1 (ix (floordiv d0 2))))))".into(),
                vec!["%b0".into(), "%b1".into(), "%b2".into(), "%p0".into(), "%p1".into(), "%p2".into()],
                2
            )
        );
    }

    /// The finished term is a tree in post-order, as a printed term parses
    /// back: e-class numbering, and so extraction's tie-breaking, is that of
    /// the parsed text.
    #[test]
    fn the_finished_term_is_the_parsed_text() {
        let context = ditto_ir::create_context().unwrap();
        let module = ditto_ir::parse_module(&context, BIAS_EPILOGUE, "t.mlir").unwrap();
        for op in rewrite::collect(module.as_operation(), "linalg.generic") {
            let mut builder = Builder::new();
            let t = translate(&context, op, &mut builder, Namespace("%b")).unwrap();
            let term = builder.finish(t.root);
            let parsed: Term = ditto_eqsat::pretty(&term).parse().unwrap();
            assert_eq!(term.as_ref(), parsed.as_ref());
        }
    }
}
