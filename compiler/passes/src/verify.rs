//! `ditto-verify`: what the IRDL definitions cannot express — f32 elements,
//! the ranks of each operand, and shapes that agree — checked on every
//! `ditto` op, with the op's location in the message.

use ditto_contracts::codebook;
use ditto_ir::melior::{
    ir::{
        attribute::{BoolAttribute, IntegerAttribute},
        operation::{OperationLike, OperationRef},
        Module, ValueLike,
    },
    Context,
};

use crate::{
    rewrite,
    types::{f32_shape, typed_shape, Element},
    PassError,
};

fn operand_shape(
    op: OperationRef,
    index: usize,
    what: &str,
    rank: usize,
) -> Result<Vec<Option<u64>>, PassError> {
    let ty = op
        .operand(index)
        .map_err(|_| PassError::at(op, format!("missing operand `{what}`")))?
        .r#type();
    let shape = f32_shape(ty).ok_or_else(|| {
        PassError::at(
            op,
            format!("operand `{what}` must be a memref of f32, got {ty}"),
        )
    })?;
    if shape.len() != rank {
        return Err(PassError::at(
            op,
            format!("operand `{what}` must have rank {rank}, got {ty}"),
        ));
    }
    Ok(shape)
}

fn integer(op: OperationRef, name: &str) -> Result<i64, PassError> {
    op.attribute(name)
        .ok()
        .and_then(|a| IntegerAttribute::try_from(a).ok())
        .map(|i| i.value())
        .ok_or_else(|| PassError::at(op, format!("missing integer attribute `{name}`")))
}

/// `bits` and `block` of a codebook op, checked against the format.
pub(crate) fn scheme(op: OperationRef) -> Result<(u64, u64), PassError> {
    let bits = integer(op, "bits")?;
    let block = integer(op, "block")?;
    let bits = codebook::check_bits_i64(bits).map_err(|_| {
        let allowed: Vec<String> = codebook::SUPPORTED_BITS.iter().map(u8::to_string).collect();
        PassError::at(
            op,
            format!("bits must be one of {}, got {bits}", allowed.join(", ")),
        )
    })?;
    let block = codebook::check_block_i64(block).map_err(|_| {
        PassError::at(
            op,
            format!("block must be a positive multiple of 8, got {block}"),
        )
    })?;
    Ok((bits as u64, block as u64))
}

/// The index stream and codebooks of a codebook op must hold an `n × k`
/// tensor quantized with (bits, block).
fn check_storage(op: OperationRef, n: Option<u64>, k: Option<u64>) -> Result<(), PassError> {
    let (bits, block) = scheme(op)?;
    let shape = |index: usize, element: Element| -> Result<Vec<Option<u64>>, PassError> {
        let ty = op
            .operand(index)
            .map_err(|e| PassError::at(op, e.to_string()))?
            .r#type();
        typed_shape(ty, element).ok_or_else(|| {
            PassError::at(
                op,
                format!(
                    "operand {index} must be a memref of {}, got {ty}",
                    element.name()
                ),
            )
        })
    };
    let indices = shape(0, Element::I8)?;
    let codebooks = shape(1, Element::F16)?;
    if indices.len() != 1 || codebooks.len() != 2 {
        return Err(PassError::at(
            op,
            "indices must be a 1-D memref of i8 and codebooks a 2-D memref of f16",
        ));
    }
    agree(
        op,
        codebooks[1],
        Some(1 << bits),
        "codebook entries and 2^bits",
    )?;
    if let (Some(n), Some(k)) = (n, k) {
        let format =
            codebook::Format::new_or_empty(n as usize, k as usize, bits as u8, block as usize)
                .map_err(|e| match e {
                    codebook::FormatError::RowNotByteAligned { .. } => PassError::at(
                        op,
                        format!("a row of {k} indices of {bits} bits does not start on a byte"),
                    ),
                    e => PassError::at(op, e.to_string()),
                })?;
        agree(
            op,
            indices[0],
            Some(format.index_bytes() as u64),
            "index bytes and the tensor's size",
        )?;
        agree(
            op,
            codebooks[0],
            Some(format.blocks() as u64),
            "codebook count and the tensor's blocks",
        )?;
    }
    Ok(())
}

fn flag(op: OperationRef, name: &str) -> bool {
    op.attribute(name)
        .ok()
        .and_then(|a| BoolAttribute::try_from(a).ok())
        .is_some_and(|b| b.value())
}

/// Two extents agree unless both are static and differ.
fn agree(op: OperationRef, a: Option<u64>, b: Option<u64>, what: &str) -> Result<(), PassError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(PassError::at(
            op,
            format!("{what} do not agree ({x} vs {y})"),
        )),
        _ => Ok(()),
    }
}

/// Every check of `ditto-verify`: the model contract ([`crate::contract`]),
/// then each project op.
pub fn verify(context: &Context, module: &Module) -> Result<(), PassError> {
    crate::contract::verify(context, module)?;
    for op in rewrite::collect(module.as_operation(), "ditto.weight") {
        let ty = op
            .result(0)
            .map_err(|e| PassError::at(op, e.to_string()))?
            .r#type();
        match f32_shape(ty) {
            Some(shape) if shape.iter().all(Option::is_some) => {}
            _ => {
                return Err(PassError::at(
                    op,
                    format!(
                        "ditto.weight must produce a statically shaped memref of f32, got {ty}"
                    ),
                ))
            }
        }
    }
    for op in rewrite::collect(module.as_operation(), "ditto.gemv") {
        let a = operand_shape(op, 0, "a", 2)?;
        let x = operand_shape(op, 1, "x", 1)?;
        let y = operand_shape(op, 2, "y", 1)?;
        let (rows, cols) = if flag(op, "transpose_a") {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        agree(op, rows, y[0], "the rows of op(a) and the length of y")?;
        agree(op, cols, x[0], "the columns of op(a) and the length of x")?;
    }
    for op in rewrite::collect(module.as_operation(), "ditto.gemm") {
        let a = operand_shape(op, 0, "a", 2)?;
        let b = operand_shape(op, 1, "b", 2)?;
        let c = operand_shape(op, 2, "c", 2)?;
        let (m, k) = if flag(op, "transpose_a") {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        let (k2, n) = if flag(op, "transpose_b") {
            (b[1], b[0])
        } else {
            (b[0], b[1])
        };
        agree(op, k, k2, "the inner dimensions of op(a) and op(b)")?;
        agree(op, m, c[0], "the rows of op(a) and of c")?;
        agree(op, n, c[1], "the columns of op(b) and of c")?;
    }
    for op in rewrite::collect(module.as_operation(), "codebook.weight") {
        scheme(op)?;
    }
    for op in rewrite::collect(module.as_operation(), "codebook.dequantize") {
        let out = operand_shape(op, 2, "out", 2)?;
        check_storage(op, out[0], out[1])?;
    }
    for op in rewrite::collect(module.as_operation(), "codebook.load") {
        check_storage(op, None, None)?;
    }
    for op in rewrite::collect(module.as_operation(), "codebook.gemv") {
        let x = operand_shape(op, 2, "x", 1)?;
        let y = operand_shape(op, 3, "y", 1)?;
        check_storage(op, y[0], x[0])?;
    }
    for op in rewrite::collect(module.as_operation(), "codebook.gemm") {
        let x = operand_shape(op, 2, "x", 2)?;
        let c = operand_shape(op, 3, "c", 2)?;
        agree(op, x[0], c[0], "the rows of x and of c")?;
        check_storage(op, c[1], x[1])?;
    }
    Ok(())
}
