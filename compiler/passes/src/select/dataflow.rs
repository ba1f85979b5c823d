//! Who writes and who reads a buffer, for kernel selection: a scratch matrix
//! dequantized for one product, the reduction that alone produces an
//! epilogue's input, the fill before an op, constants.

use ditto_dialects::codebook::Scheme;
use ditto_ir::melior::ir::{
    attribute::{FloatAttribute, IntegerAttribute},
    operation::{OperationLike, OperationRef, OperationResult},
    Value, ValueLike,
};

use crate::rewrite::{name_of, same, users};

/// A scratch matrix written only by a `codebook.dequantize` and read only by
/// one product.
#[derive(Clone)]
pub(super) struct Dequantized<'c, 'a> {
    pub op: OperationRef<'c, 'a>,
    pub scratch: Value<'c, 'a>,
    /// The index buffer's symbol in the term.
    pub indices_name: String,
}

pub(super) fn same_op(a: OperationRef, b: OperationRef) -> bool {
    a.to_raw().ptr == b.to_raw().ptr
}

pub(super) fn defining_op<'c, 'a>(value: Value<'c, 'a>) -> Option<OperationRef<'c, 'a>> {
    if value.is_block_argument() {
        return None;
    }
    Some(OperationResult::try_from(value).ok()?.owner())
}

/// The value of an `arith.constant` float.
pub(super) fn constant(value: Value) -> Option<f64> {
    let op = defining_op(value)?;
    if name_of(op) != "arith.constant" {
        return None;
    }
    FloatAttribute::try_from(op.attribute("value").ok()?)
        .ok()
        .map(|f| f.value())
}

/// The constant a `linalg.fill` writes.
pub(super) fn fill_value(fill: OperationRef) -> Option<f64> {
    constant(fill.operand(0).ok()?)
}

/// The op that last used `buffer` before `op` in the block.
pub(super) fn previous_writer<'c, 'a>(
    op: OperationRef<'c, 'a>,
    buffer: Value<'c, 'a>,
) -> Option<OperationRef<'c, 'a>> {
    let all = users(op, buffer);
    let position = all.iter().position(|u| same_op(*u, op))?;
    position.checked_sub(1).map(|p| all[p])
}

fn allocated(value: Value) -> bool {
    defining_op(value)
        .is_some_and(|d| matches!(name_of(d).as_str(), "memref.alloca" | "memref.alloc"))
}

/// If `value` is a scratch matrix written only by a `codebook.dequantize`
/// and read only by `consumer`, that op and its scheme.
pub(super) fn dequantized_by<'c, 'a>(
    consumer: OperationRef<'c, 'a>,
    value: Value<'c, 'a>,
) -> Option<(OperationRef<'c, 'a>, Scheme)> {
    if !allocated(value) {
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

/// A generic whose result only `consumer` reads, and the zero fill before it.
pub(super) struct Producer<'c, 'a> {
    pub generic: OperationRef<'c, 'a>,
    pub fill: OperationRef<'c, 'a>,
}

/// If `input` is a scratch buffer written only by a zero fill and a generic
/// before `consumer` uses it, that generic and the fill.
pub(super) fn sole_producer<'c, 'a>(
    consumer: OperationRef<'c, 'a>,
    input: Value<'c, 'a>,
) -> Option<Producer<'c, 'a>> {
    if !allocated(input) {
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
    Some(Producer {
        generic: *producer,
        fill: *fill,
    })
}
