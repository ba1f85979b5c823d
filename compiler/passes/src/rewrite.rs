//! The few IR-surgery primitives the passes share: find ops by name, an op's
//! users in its block, insert before an op, replace a value's uses, erase an op.

use ditto_ir::melior::{
    ir::{
        attribute::DenseI32ArrayAttribute,
        block::BlockLike,
        operation::{OperationBuilder, OperationLike, OperationRef},
        r#type::MemRefType,
        BlockRef, Identifier, Location, Operation, Value, ValueLike,
    },
    Context,
};

/// Every op named `name` nested in `root`, in pre-order.
pub fn collect<'c, 'a>(root: OperationRef<'c, 'a>, name: &str) -> Vec<OperationRef<'c, 'a>> {
    let mut found = Vec::new();
    root.walk(ditto_ir::melior::ir::operation::WalkOrder::PreOrder, |op| {
        if op.name().as_string_ref().as_str() == Ok(name) {
            // SAFETY: the op lives as long as `root`; walk hands out a
            // shorter-lived reference to the same op.
            found.push(unsafe { OperationRef::from_raw(op.to_raw()) });
        }
        ditto_ir::melior::ir::operation::WalkResult::Advance
    });
    found
}

/// An op's name, e.g. `"linalg.generic"`.
pub fn name_of(op: OperationRef) -> String {
    op.name()
        .as_string_ref()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether two handles are the same SSA value.
pub fn same(a: Value, b: Value) -> bool {
    a.to_raw().ptr == b.to_raw().ptr
}

/// Users of `value` in the block of `anchor`, in block order.
pub fn users<'c, 'a>(
    anchor: OperationRef<'c, 'a>,
    value: Value<'c, 'a>,
) -> Vec<OperationRef<'c, 'a>> {
    let mut found = Vec::new();
    let Some(block) = anchor.block() else {
        return found;
    };
    let mut current = block.first_operation();
    while let Some(op) = current {
        if op.operands().any(|o| same(o, value)) {
            found.push(op);
        }
        current = op.next_in_block();
    }
    found
}

/// Inserts `new` right before `anchor` in its block.
pub fn insert_before<'c, 'a>(
    anchor: OperationRef<'c, 'a>,
    new: Operation<'c>,
) -> OperationRef<'c, 'a> {
    let block: BlockRef<'c, 'a> = anchor.block().expect("op in a block");
    block.insert_operation_before(anchor, new)
}

/// Replaces every use of `of` with `with`.
pub fn replace_uses(of: Value, with: Value) {
    // SAFETY: both values are live in the same function.
    unsafe { mlir_sys::mlirValueReplaceAllUsesOfWith(of.to_raw(), with.to_raw()) }
}

/// Removes `op` from its block and destroys it; it must have no uses left.
pub fn erase(op: OperationRef) {
    // SAFETY: the op is detached from its block before it is destroyed and
    // no reference to it is used afterwards.
    unsafe { mlir_sys::mlirOperationDestroy(op.to_raw()) }
}

/// The `func.func` that contains `op`.
pub fn enclosing_func<'c, 'a>(op: OperationRef<'c, 'a>) -> Option<OperationRef<'c, 'a>> {
    let mut current = op.parent_operation();
    while let Some(parent) = current {
        if parent.name().as_string_ref().as_str() == Ok("func.func") {
            return Some(parent);
        }
        current = parent.parent_operation();
    }
    None
}

/// `%m = memref.alloc() : TYPE` for a statically shaped type. (melior's
/// builder names the segment sizes `operand_segment_sizes`, which MLIR 22
/// keeps as a stray attribute.)
pub fn alloc<'c>(
    context: &'c Context,
    r#type: MemRefType<'c>,
    location: Location<'c>,
) -> Operation<'c> {
    OperationBuilder::new("memref.alloc", location)
        .add_attributes(&[(
            Identifier::new(context, "operandSegmentSizes"),
            DenseI32ArrayAttribute::new(context, &[0, 0]).into(),
        )])
        .add_results(&[r#type.into()])
        .build()
        .expect("memref.alloc of a static type")
}
