//! `codebook.load` lowers to its structural form: read the index's bits
//! from the packed stream, then the codebook entry, widened to f32
//! (docs/codebook-format.md: weight i sits at bits [i·b, (i+1)·b) of the
//! stream read as one little-endian integer).
//!
//! ```mlir
//! %v = "codebook.load"(%indices, %codebooks, %i) {bits = 4 : i64, block = 256 : i64}
//! // becomes
//! %bit = arith.muli %i, %c4                        // first bit of index i
//! %byte = arith.shrui %bit, %c3                    // its byte, and the next one
//! %next = arith.minui (%byte + 1), (dim(%indices) - 1)
//! %word = b[%byte] | b[%next] << 8                 // 16 bits hold any b ≤ 8 at any offset
//! %code = (%word >> (%bit & 7)) & 15
//! %v = arith.extf %codebooks[%i / 256, %code] : f16 to f32
//! ```
//!
//! A gather reads few weights (one embedding row per token), so this plain
//! scalar form is all it needs; products go to the fused kernels instead.

use ditto_ir::melior::{
    dialect::{arith, memref},
    ir::{
        attribute::IntegerAttribute, operation::OperationLike, Operation, OperationRef, Type,
        Value, ValueLike,
    },
    Context,
};

use crate::{rewrite, PassError};

/// Rewrites every `codebook.load` in `module` into arith and memref ops.
pub fn lower_loads(
    context: &Context,
    module: &ditto_ir::melior::ir::Module,
) -> Result<(), PassError> {
    for op in rewrite::collect(module.as_operation(), "codebook.load") {
        lower_load(context, op)?;
    }
    Ok(())
}

fn lower_load(context: &Context, op: OperationRef) -> Result<(), PassError> {
    let (bits, block) = crate::verify::scheme(op)?;
    let operand = |i: usize| -> Result<Value, PassError> {
        op.operand(i).map_err(|e| PassError::at(op, e.to_string()))
    };
    let (indices, codebooks, i) = (operand(0)?, operand(1)?, operand(2)?);
    let location = op.location();
    let index = Type::index(context);
    let i32_type = Type::parse(context, "i32").expect("i32");
    // Each new op goes right before the load; its one result is what we need.
    let emit = |new: Operation| -> Value {
        let op = rewrite::insert_before(op, new);
        // SAFETY: the op now belongs to the load's block, which outlives this
        // pass, so its result stays valid (melior ties the handle to the
        // short borrow of `op` only).
        unsafe { Value::from_raw(op.result(0).expect("one result").to_raw()) }
    };
    let constant = |value: i64, ty: Type| -> Value {
        emit(arith::constant(
            context,
            IntegerAttribute::new(ty, value).into(),
            location,
        ))
    };

    let bit = emit(arith::muli(i, constant(bits as i64, index), location));
    let byte = emit(arith::shrui(bit, constant(3, index), location));
    let one = constant(1, index);
    let bytes = emit(memref::dim(indices, constant(0, index), location));
    let last = emit(arith::subi(bytes, one, location));
    let next = emit(arith::minui(
        emit(arith::addi(byte, one, location)),
        last,
        location,
    ));
    let low = emit(arith::extui(
        emit(memref::load(indices, &[byte], location)),
        i32_type,
        location,
    ));
    let high = emit(arith::extui(
        emit(memref::load(indices, &[next], location)),
        i32_type,
        location,
    ));
    let word = emit(arith::ori(
        low,
        emit(arith::shli(high, constant(8, i32_type), location)),
        location,
    ));
    let shift = emit(arith::index_cast(
        emit(arith::andi(bit, constant(7, index), location)),
        i32_type,
        location,
    ));
    let code = emit(arith::andi(
        emit(arith::shrui(word, shift, location)),
        constant((1i64 << bits) - 1, i32_type),
        location,
    ));
    let entry = emit(arith::index_cast(code, index, location));
    let codebook = emit(arith::divui(i, constant(block as i64, index), location));
    let half = emit(memref::load(codebooks, &[codebook, entry], location));
    let value = emit(arith::extf(half, Type::float32(context), location));

    rewrite::replace_uses(op.result(0).expect("codebook.load result").into(), value);
    rewrite::erase(op);
    Ok(())
}
