//! `ditto-lower-weights`: each `ditto.weight` becomes a view of the weight
//! blob at the offset the payload layout gives it:
//!
//! ```mlir
//! %w = "ditto.weight"() {name = "blk.0.attn_q.weight"} : () -> memref<896x896xf32>
//! // becomes, with %weights the enclosing function's first argument:
//! %off = arith.constant 1234560 : index
//! %w = memref.view %weights[%off][] : memref<?xi8> to memref<896x896xf32>
//! ```

use std::collections::HashMap;

use ditto_ir::melior::{
    dialect::arith,
    ir::{
        attribute::{IntegerAttribute, StringAttribute},
        block::BlockLike,
        operation::{OperationBuilder, OperationLike},
        r#type::MemRefType,
        Attribute, RegionLike, Type, ValueLike,
    },
    Context,
};

use crate::{rewrite, PassError};

/// Tensor name → byte offset in the weight blob.
pub type WeightOffsets = HashMap<String, u64>;

/// Every `ditto.weight` in `module` with its name and result type, in order.
pub fn weights_used(
    module: &ditto_ir::melior::ir::Module,
) -> Result<Vec<(String, String)>, PassError> {
    let mut used = Vec::new();
    for op in rewrite::collect(module.as_operation(), "ditto.weight") {
        let name = weight_name(op.attribute("name").ok())
            .ok_or_else(|| PassError::new("ditto.weight without a string `name`"))?;
        let ty = op
            .result(0)
            .map_err(|e| PassError::new(e.to_string()))?
            .r#type();
        used.push((name, ty.to_string()));
    }
    Ok(used)
}

/// Bytes of a statically shaped f32 memref type, e.g. `memref<3x5xf32>` → 60.
pub fn byte_size(ty: &str) -> Option<u64> {
    let shape = crate::verify::f32_shape(ty)?;
    shape
        .into_iter()
        .try_fold(4u64, |bytes, d| d.map(|d| bytes * d))
}

fn weight_name(attribute: Option<Attribute>) -> Option<String> {
    let string = StringAttribute::try_from(attribute?).ok()?;
    Some(string.value().to_string())
}

/// Rewrites every `ditto.weight` into a `memref.view` of its function's
/// first argument (which must be `memref<?xi8>`).
pub fn lower_weights(
    context: &Context,
    module: &ditto_ir::melior::ir::Module,
    offsets: &WeightOffsets,
) -> Result<(), PassError> {
    let blob_type = Type::parse(context, "memref<?xi8>").expect("static type");
    for op in rewrite::collect(module.as_operation(), "ditto.weight") {
        let name = weight_name(op.attribute("name").ok())
            .ok_or_else(|| PassError::at(op, "ditto.weight without a string `name`"))?;
        let offset = *offsets.get(&name).ok_or_else(|| {
            PassError::at(op, format!("no weight named \"{name}\" in the weight file"))
        })?;
        let func = rewrite::enclosing_func(op)
            .ok_or_else(|| PassError::at(op, "ditto.weight outside a function"))?;
        let entry = func
            .region(0)
            .ok()
            .and_then(|r| r.first_block())
            .ok_or_else(|| PassError::at(op, "ditto.weight in a function without a body"))?;
        let blob = entry
            .argument(0)
            .ok()
            .filter(|a| a.r#type() == blob_type)
            .ok_or_else(|| {
                PassError::at(
                    op,
                    "ditto.weight needs its function's first argument to be the weight blob `memref<?xi8>`",
                )
            })?;
        let result = op.result(0).map_err(|e| PassError::new(e.to_string()))?;
        let result_type = MemRefType::try_from(result.r#type())
            .map_err(|_| PassError::at(op, "ditto.weight must produce a memref"))?;
        let location = op.location();
        let index = Type::index(context);
        let offset_op = rewrite::insert_before(
            op,
            arith::constant(
                context,
                IntegerAttribute::new(index, offset as i64).into(),
                location,
            ),
        );
        let offset_value = offset_op.result(0).expect("constant result");
        // Built directly: melior's `memref::view` also attaches a stale
        // `operand_segment_sizes` attribute.
        let view = rewrite::insert_before(
            op,
            OperationBuilder::new("memref.view", location)
                .add_operands(&[blob.into(), offset_value.into()])
                .add_results(&[result_type.into()])
                .build()
                .map_err(|e| PassError::at(op, e.to_string()))?,
        );
        rewrite::replace_uses(result.into(), view.result(0).expect("view result").into());
        rewrite::erase(op);
    }
    Ok(())
}
