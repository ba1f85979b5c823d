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
//!
//! The codebook ops (`codebook.gemv`, `codebook.gemm`, `codebook.dequantize`)
//! lower the same way to `ditto_rt_cb_*` (docs/codebook-format.md);
//! `codebook.load` becomes plain arith and memref ops ([`crate::lookup`]).

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

use ditto_contracts::kernel_abi::{Operand, Scalar, KERNELS};

use crate::{rewrite, PassError};

/// The type an operand is cast to before the call: a fully dynamic strided
/// memref of its element type and rank.
fn operand_type(context: &Context, operand: Operand) -> Type<'_> {
    let element = operand.element.name();
    let dims = "?x".repeat(operand.rank);
    let strides = vec!["?"; operand.rank].join(", ");
    let text = format!("memref<{dims}{element}, strided<[{strides}], offset: ?>>");
    Type::parse(context, &text).expect("a well-formed memref type")
}

pub fn lower_kernels(context: &Context, module: &Module) -> Result<(), PassError> {
    let f32_type = Type::float32(context);
    let i64_type = Type::parse(context, "i64").expect("static type");
    for abi in KERNELS {
        let ops = rewrite::collect(module.as_operation(), abi.op);
        if ops.is_empty() {
            continue;
        }
        let memref_types: Vec<Type> = abi
            .memrefs
            .iter()
            .map(|&operand| operand_type(context, operand))
            .collect();
        let mut signature = memref_types.clone();
        signature.extend(abi.scalars.iter().map(|s| match s {
            Scalar::F32(_) => f32_type,
            Scalar::I64(_) | Scalar::Flag(_) => i64_type,
        }));
        declare(context, module, abi.callee, &signature);

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
            for scalar in abi.scalars {
                let missing = |key: &str, kind: &str| {
                    PassError::at(op, format!("{} needs {kind} `{key}`", abi.op))
                };
                let attribute: Attribute = match *scalar {
                    Scalar::F32(key) => {
                        let value = op
                            .attribute(key)
                            .ok()
                            .and_then(|a| FloatAttribute::try_from(a).ok())
                            .ok_or_else(|| missing(key, "a float"))?
                            .value();
                        FloatAttribute::new(context, f32_type, value).into()
                    }
                    Scalar::I64(key) => {
                        let value = op
                            .attribute(key)
                            .ok()
                            .and_then(|a| IntegerAttribute::try_from(a).ok())
                            .ok_or_else(|| missing(key, "an integer"))?
                            .value();
                        IntegerAttribute::new(i64_type, value).into()
                    }
                    Scalar::Flag(key) => {
                        let flag = op
                            .attribute(key)
                            .ok()
                            .and_then(|a| BoolAttribute::try_from(a).ok())
                            .ok_or_else(|| missing(key, "a bool"))?
                            .value();
                        IntegerAttribute::new(i64_type, flag as i64).into()
                    }
                };
                let constant =
                    rewrite::insert_before(op, arith::constant(context, attribute, location));
                arguments.push(constant.result(0).expect("constant").into());
            }
            rewrite::insert_before(
                op,
                func::call(
                    context,
                    FlatSymbolRefAttribute::new(context, abi.callee),
                    &arguments,
                    &[],
                    location,
                ),
            );
            rewrite::erase(op);
        }
    }
    crate::lookup::lower_loads(context, module)
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
