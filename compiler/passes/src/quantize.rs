//! `ditto-quantize` (the IR half): weights used only as matrices of products
//! become codebook weights, dequantized into a scratch right where they are
//! used, so that kernel selection sees the product and can fuse it:
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
//! ```
//!
//! The layer functions must be inlined first (`inline, symbol-dce`), so that
//! each weight and the products using it share a block.

use std::collections::HashMap;

use ditto_dialects::codebook::{self, Scheme};
use ditto_ir::melior::{
    dialect::memref,
    ir::{
        attribute::StringAttribute,
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

/// Whether every use of `value` is as an input of a `linalg.generic` in the
/// same block (a matrix of a product; not an embedding table read by
/// `memref.load`, not a call argument).
fn only_product_inputs(op: OperationRef, value: Value) -> bool {
    let users = users(op, value);
    let total_uses = {
        let mut count = 0;
        let mut use_ = unsafe { mlir_sys::mlirValueGetFirstUse(value.to_raw()) };
        while !use_.ptr.is_null() {
            count += 1;
            use_ = unsafe { mlir_sys::mlirOpOperandGetNextUse(use_) };
        }
        count
    };
    !users.is_empty()
        && users.len() == total_uses
        && users.iter().all(|u| {
            name_of(*u) == "linalg.generic"
                && (0..u.operand_count().saturating_sub(1))
                    .any(|i| u.operand(i).is_ok_and(|o| same(o, value)))
                && u.operand(u.operand_count() - 1)
                    .is_ok_and(|o| !same(o, value))
        })
}

fn weight_name(op: OperationRef) -> Option<String> {
    StringAttribute::try_from(op.attribute("name").ok()?)
        .ok()
        .map(|s| s.value().to_string())
}

/// The rank-2 f32 weights used only as product matrices, each name once.
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
        let shape = crate::verify::f32_shape(&value.r#type().to_string());
        let matrix = match shape.as_deref() {
            Some([Some(n), Some(k)]) if only_product_inputs(op, value) => Some((*n, *k)),
            _ => None,
        };
        match matrix {
            // A tensor used once as a matrix and elsewhere otherwise (a tied
            // embedding) stays f32 everywhere.
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
    let parse = |text: String| {
        MemRefType::try_from(Type::parse(context, &text).expect("memref type parses"))
            .expect("a memref type")
    };
    (
        parse(format!("memref<{bytes}xi8>")),
        parse(format!("memref<{blocks}x{}xf16>", 1u64 << scheme.bits)),
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
        let (n, k) = match crate::verify::f32_shape(&value.r#type().to_string()).as_deref() {
            Some([Some(n), Some(k)]) => (*n as usize, *k as usize),
            _ => {
                return Err(PassError::at(
                    op,
                    "only [n, k] f32 weights can be quantized",
                ))
            }
        };
        if !only_product_inputs(op, value) {
            return Err(PassError::at(
                op,
                format!("\"{name}\" is used other than as the matrix of a product"),
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
