//! `ditto-verify`: what the IRDL definitions cannot express — f32 elements,
//! the ranks of each operand, and shapes that agree — checked on every
//! `ditto` op, with the op's location in the message.

use ditto_ir::melior::ir::{
    attribute::BoolAttribute,
    operation::{OperationLike, OperationRef},
    Module, ValueLike,
};

use crate::{rewrite, PassError};

/// A memref type's shape (`None` for a dynamic extent) if its elements are f32.
pub fn f32_shape(ty: &str) -> Option<Vec<Option<u64>>> {
    let inner = ty.strip_prefix("memref<")?;
    let dims_and_element = inner.split([',', '>']).next()?;
    let mut parts: Vec<&str> = dims_and_element.split('x').collect();
    if parts.pop()? != "f32" {
        return None;
    }
    Some(parts.iter().map(|d| d.parse().ok()).collect())
}

fn operand_shape(
    op: OperationRef,
    index: usize,
    what: &str,
    rank: usize,
) -> Result<Vec<Option<u64>>, PassError> {
    let ty = op
        .operand(index)
        .map_err(|_| PassError::at(op, format!("missing operand `{what}`")))?
        .r#type()
        .to_string();
    let shape = f32_shape(&ty).ok_or_else(|| {
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

pub fn verify(module: &Module) -> Result<(), PassError> {
    for op in rewrite::collect(module.as_operation(), "ditto.weight") {
        let ty = op
            .result(0)
            .map_err(|e| PassError::at(op, e.to_string()))?
            .r#type()
            .to_string();
        match f32_shape(&ty) {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::f32_shape;

    #[test]
    fn shapes() {
        assert_eq!(f32_shape("memref<4x8xf32>"), Some(vec![Some(4), Some(8)]));
        assert_eq!(
            f32_shape("memref<?x8xf32, strided<[8, 1], offset: ?>>"),
            Some(vec![None, Some(8)])
        );
        assert_eq!(f32_shape("memref<4xf16>"), None);
        assert_eq!(f32_shape("memref<f32>"), Some(vec![]));
    }
}
