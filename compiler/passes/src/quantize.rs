//! `ditto-quantize` (the IR half): weights used only as matrices of products
//! or by element loads become codebook weights. A product gets the weight
//! dequantized into a scratch right where it is used, so that kernel
//! selection sees the product and can fuse it; an element load (the
//! embedding gather) becomes a `codebook.load`:
//!
//! ```mlir
//! %w = "ditto.weight"() {name = "blk.0.ffn_up.weight"} : () -> memref<96x64xf32>
//! ... linalg.generic ins(%x, %w ...)
//! // becomes
//! %q, %cb = "codebook.weight"() {name = "blk.0.ffn_up.weight", bits = 4, block = 256}
//!     : () -> (memref<3072xi8>, memref<24x16xf16>)
//! ...
//! %w = memref.alloc() : memref<96x64xf32>
//! "codebook.dequantize"(%q, %cb, %w) {bits = 4, block = 256}
//! linalg.generic ins(%x, %w ...)
//! memref.dealloc %w
//!
//! %e = memref.load %emb[%token, %col]
//! // becomes
//! %e = "codebook.load"(%q, %cb, %token·K + %col) {bits = 4, block = 256}
//! ```
//!
//! The layer functions must be inlined first (`inline, symbol-dce`), so that
//! each weight and the products using it share a block.

use std::collections::HashMap;

use ditto_dialects::codebook::{self, Scheme};
use ditto_ir::melior::{
    dialect::{arith, memref},
    ir::{
        attribute::{IntegerAttribute, StringAttribute},
        block::BlockLike,
        operation::{OperationLike, OperationRef},
        r#type::MemRefType,
        Type, Value, ValueLike,
    },
    Context,
};

use crate::{
    rewrite::{self, name_of, same, users},
    PassError,
};

/// A weight that can be quantized: its name and shape `[n, k]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantizable {
    pub name: String,
    pub n: usize,
    pub k: usize,
}

/// How a weight is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// An input of a `linalg.generic` in the weight's block: the matrix of a
    /// product (it gets a dequantized scratch the e-graph can fuse).
    Product,
    /// `memref.load %w[%row, %col]` anywhere below the weight: a gather of
    /// rows, an embedding lookup (it becomes a `codebook.load`).
    Element,
    /// Anything else (a call argument, a store, a view): not quantizable.
    Other,
}

/// Every use of `value`, by operation, classified.
fn uses<'c, 'a>(
    op: OperationRef<'c, 'a>,
    value: Value<'c, 'a>,
) -> Vec<(OperationRef<'c, 'a>, Use)> {
    let block = op.block();
    let mut found = Vec::new();
    // SAFETY: walking the use list of a live value; each owner is an op of
    // the same module, alive as long as `op`.
    let mut use_ = unsafe { mlir_sys::mlirValueGetFirstUse(value.to_raw()) };
    while !use_.ptr.is_null() {
        let owner = unsafe { OperationRef::from_raw(mlir_sys::mlirOpOperandGetOwner(use_)) };
        let position = unsafe { mlir_sys::mlirOpOperandGetOperandNumber(use_) } as usize;
        let kind = match name_of(owner).as_str() {
            "linalg.generic" if owner.block() == block && position + 1 < owner.operand_count() => {
                Use::Product
            }
            "memref.load" if position == 0 && owner.operand_count() == 3 => Use::Element,
            _ => Use::Other,
        };
        found.push((owner, kind));
        use_ = unsafe { mlir_sys::mlirOpOperandGetNextUse(use_) };
    }
    found
}

/// Whether `value` is read only as product matrices and by element loads
/// (at least once), and so can live as a codebook weight.
fn quantizable_uses(op: OperationRef, value: Value) -> bool {
    let uses = uses(op, value);
    !uses.is_empty() && uses.iter().all(|(_, kind)| *kind != Use::Other)
}

fn weight_name(op: OperationRef) -> Option<String> {
    StringAttribute::try_from(op.attribute("name").ok()?)
        .ok()
        .map(ditto_ir::string_value)
}

/// The rank-2 f32 weights read only as product matrices or element by
/// element (an embedding table, tied to the LM head or not), each name once.
pub fn quantizable_weights(
    module: &ditto_ir::melior::ir::Module,
) -> Result<Vec<Quantizable>, PassError> {
    let mut found: Vec<Quantizable> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    for op in rewrite::collect(module.as_operation(), "ditto.weight") {
        let name =
            weight_name(op).ok_or_else(|| PassError::at(op, "ditto.weight without a name"))?;
        let value: Value = op
            .result(0)
            .map_err(|e| PassError::at(op, e.to_string()))?
            .into();
        let shape = crate::types::f32_shape(value.r#type());
        let matrix = match shape.as_deref() {
            Some([Some(n), Some(k)]) if quantizable_uses(op, value) => Some((*n, *k)),
            _ => None,
        };
        match matrix {
            // A tensor read otherwise anywhere (a call argument, a view)
            // stays f32 everywhere.
            Some((n, k)) if !excluded.contains(&name) => {
                if !found.iter().any(|q| q.name == name) {
                    found.push(Quantizable {
                        name,
                        n: n as usize,
                        k: k as usize,
                    });
                }
            }
            _ => {
                found.retain(|q| q.name != name);
                excluded.push(name);
            }
        }
    }
    Ok(found)
}

/// The index and codebook array types of an `[n, k]` tensor under `scheme`.
pub fn storage_types<'c>(
    context: &'c Context,
    n: usize,
    k: usize,
    scheme: Scheme,
) -> (MemRefType<'c>, MemRefType<'c>) {
    let count = (n * k) as u64;
    let bytes = (count * scheme.bits as u64).div_ceil(8);
    let blocks = count.div_ceil(scheme.block);
    let i8 = ditto_ir::melior::ir::r#type::IntegerType::new(context, 8).into();
    (
        MemRefType::new(i8, &[bytes as i64], None, None),
        MemRefType::new(
            Type::float16(context),
            &[blocks as i64, 1i64 << scheme.bits],
            None,
            None,
        ),
    )
}

/// Rewrites every `ditto.weight` named in `plan` into a `codebook.weight`
/// with the planned scheme, dequantized into a scratch matrix right before
/// each use and freed right after it.
pub fn apply(
    context: &Context,
    module: &ditto_ir::melior::ir::Module,
    plan: &HashMap<String, Scheme>,
) -> Result<(), PassError> {
    for op in rewrite::collect(module.as_operation(), "ditto.weight") {
        let Some(name) = weight_name(op) else {
            continue;
        };
        let Some(&scheme) = plan.get(&name) else {
            continue;
        };
        let value: Value = op
            .result(0)
            .map_err(|e| PassError::at(op, e.to_string()))?
            .into();
        let dense = MemRefType::try_from(value.r#type())
            .map_err(|_| PassError::at(op, "ditto.weight must produce a memref"))?;
        let (n, k) = match crate::types::f32_shape(value.r#type()).as_deref() {
            Some([Some(n), Some(k)]) => (*n as usize, *k as usize),
            _ => {
                return Err(PassError::at(
                    op,
                    "only [n, k] f32 weights can be quantized",
                ))
            }
        };
        if !quantizable_uses(op, value) {
            return Err(PassError::at(
                op,
                format!(
                    "\"{name}\" is used other than as the matrix of a product or by element loads"
                ),
            ));
        }
        let location = op.location();
        let (indices_type, codebooks_type) = storage_types(context, n, k, scheme);
        let weight = rewrite::insert_before(
            op,
            codebook::weight(
                context,
                &name,
                scheme,
                indices_type,
                codebooks_type,
                location,
            ),
        );
        let indices: Value = weight.result(0).expect("indices").into();
        let codebooks: Value = weight.result(1).expect("codebooks").into();
        for (load, _) in uses(op, value)
            .into_iter()
            .filter(|(_, kind)| *kind == Use::Element)
        {
            replace_load(context, load, indices, codebooks, k, scheme)?;
        }
        for user in users(op, value) {
            let scratch = rewrite::insert_before(user, rewrite::alloc(context, dense, location));
            let scratch: Value = scratch.result(0).expect("alloc result").into();
            rewrite::insert_before(
                user,
                codebook::dequantize(context, indices, codebooks, scratch, scheme, location),
            );
            // The user reads the scratch instead of the dense weight.
            for i in 0..user.operand_count() {
                if user.operand(i).is_ok_and(|o| same(o, value)) {
                    unsafe {
                        mlir_sys::mlirOperationSetOperand(
                            user.to_raw(),
                            i as isize,
                            scratch.to_raw(),
                        )
                    };
                }
            }
            let block = user.block().expect("op in a block");
            block.insert_operation_after(user, memref::dealloc(scratch, location));
        }
        rewrite::erase(op);
    }
    Ok(())
}

/// `%v = memref.load %w[%row, %col]` becomes
/// `%v = "codebook.load"(%indices, %codebooks, %row·k + %col)`.
fn replace_load(
    context: &Context,
    load: OperationRef,
    indices: Value,
    codebooks: Value,
    k: usize,
    scheme: Scheme,
) -> Result<(), PassError> {
    let location = load.location();
    let operand = |i: usize| -> Result<Value, PassError> {
        load.operand(i)
            .map_err(|e| PassError::at(load, e.to_string()))
    };
    let (row, col) = (operand(1)?, operand(2)?);
    let index = Type::index(context);
    let k = rewrite::insert_before(
        load,
        arith::constant(
            context,
            IntegerAttribute::new(index, k as i64).into(),
            location,
        ),
    );
    let start = rewrite::insert_before(
        load,
        arith::muli(row, k.result(0).expect("constant").into(), location),
    );
    let i = rewrite::insert_before(
        load,
        arith::addi(start.result(0).expect("muli").into(), col, location),
    );
    let value = rewrite::insert_before(
        load,
        codebook::load(
            context,
            indices,
            codebooks,
            i.result(0).expect("addi").into(),
            scheme,
            location,
        ),
    );
    rewrite::replace_uses(
        load.result(0).expect("memref.load result").into(),
        value.result(0).expect("codebook.load result").into(),
    );
    rewrite::erase(load);
    Ok(())
}
