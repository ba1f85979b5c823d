//! `ditto-lower-kernels`: the kernels the e-graph selected become calls of
//! the runtime's C-interface adapters (docs/contracts.md §4):
//!
//! ```mlir
//! "ditto.gemv"(%a, %x, %y) {alpha = 1.0 : f32, beta = 0.0 : f32, transpose_a = false}
//! // becomes
//! %a1 = memref.cast %a : memref<896x896xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
//! ... (x, y likewise)
//! call @ditto_rt_gemv(%a1, %x1, %y1, %alpha, %beta, %transpose_a)
//! ```

use ditto_ir::melior::{
    dialect::{arith, func, memref},
    ir::{
        attribute::{
            BoolAttribute, FlatSymbolRefAttribute, FloatAttribute, IntegerAttribute,
            StringAttribute, TypeAttribute,
        },
        block::BlockLike,
        operation::OperationLike,
        r#type::{FunctionType, MemRefType},
        Attribute, Identifier, Module, Region, Type, Value,
    },
    Context,
};

use crate::{rewrite, PassError};

const MATRIX: &str = "memref<?x?xf32, strided<[?, ?], offset: ?>>";
const VECTOR: &str = "memref<?xf32, strided<[?], offset: ?>>";

/// The runtime entry each kernel op calls, and its memref operand types.
const KERNELS: [(&str, &str, [&str; 3], usize); 2] = [
    ("ditto.gemv", "ditto_rt_gemv", [MATRIX, VECTOR, VECTOR], 1),
    ("ditto.gemm", "ditto_rt_gemm", [MATRIX, MATRIX, MATRIX], 2),
];

pub fn lower_kernels(context: &Context, module: &Module) -> Result<(), PassError> {
    for (op_name, callee, operand_types, transposes) in KERNELS {
        let ops = rewrite::collect(module.as_operation(), op_name);
        if ops.is_empty() {
            continue;
        }
        let memref_types: Vec<Type> = operand_types
            .iter()
            .map(|t| Type::parse(context, t).expect("static type"))
            .collect();
        let f32_type = Type::float32(context);
        let i64_type = Type::parse(context, "i64").expect("static type");
        let mut signature = memref_types.clone();
        signature.extend([f32_type, f32_type]);
        signature.extend(std::iter::repeat_n(i64_type, transposes));
        declare(context, module, callee, &signature);

        for op in ops {
            let location = op.location();
            let mut arguments: Vec<Value> = Vec::new();
            for (index, ty) in memref_types.iter().enumerate() {
                let operand = op
                    .operand(index)
                    .map_err(|e| PassError::at(op, e.to_string()))?;
                let target = MemRefType::try_from(*ty).expect("memref type");
                let cast = rewrite::insert_before(op, memref::cast(operand, target, location));
                arguments.push(cast.result(0).expect("cast result").into());
            }
            for key in ["alpha", "beta"] {
                let value = op
                    .attribute(key)
                    .ok()
                    .and_then(|a| FloatAttribute::try_from(a).ok())
                    .ok_or_else(|| PassError::at(op, format!("{op_name} needs a float `{key}`")))?
                    .value();
                let constant = rewrite::insert_before(
                    op,
                    arith::constant(
                        context,
                        FloatAttribute::new(context, f32_type, value).into(),
                        location,
                    ),
                );
                arguments.push(constant.result(0).expect("constant").into());
            }
            for key in ["transpose_a", "transpose_b"].iter().take(transposes) {
                let flag = op
                    .attribute(key)
                    .ok()
                    .and_then(|a| BoolAttribute::try_from(a).ok())
                    .ok_or_else(|| PassError::at(op, format!("{op_name} needs a bool `{key}`")))?
                    .value();
                let constant = rewrite::insert_before(
                    op,
                    arith::constant(
                        context,
                        IntegerAttribute::new(i64_type, flag as i64).into(),
                        location,
                    ),
                );
                arguments.push(constant.result(0).expect("constant").into());
            }
            rewrite::insert_before(
                op,
                func::call(
                    context,
                    FlatSymbolRefAttribute::new(context, callee),
                    &arguments,
                    &[],
                    location,
                ),
            );
            rewrite::erase(op);
        }
    }
    Ok(())
}

/// `func.func private @callee(...) attributes {llvm.emit_c_interface}`,
/// once per module.
fn declare(context: &Context, module: &Module, callee: &str, inputs: &[Type]) {
    let body = module.body();
    let mut current = body.first_operation();
    while let Some(op) = current {
        if op
            .attribute("sym_name")
            .ok()
            .and_then(|a| StringAttribute::try_from(a).ok())
            .is_some_and(|s| s.value() == callee)
        {
            return;
        }
        current = op.next_in_block();
    }
    let location = ditto_dialects::compiler_location(context);
    body.append_operation(func::func(
        context,
        StringAttribute::new(context, callee),
        TypeAttribute::new(FunctionType::new(context, inputs, &[]).into()),
        Region::new(),
        &[
            (
                Identifier::new(context, "sym_visibility"),
                StringAttribute::new(context, "private").into(),
            ),
            (
                Identifier::new(context, "llvm.emit_c_interface"),
                Attribute::unit(context),
            ),
        ],
        location,
    ));
}
