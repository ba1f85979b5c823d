//! `ditto-lower-weights`: each `ditto.weight` (and each of the two arrays of
//! a `codebook.weight`) becomes a view of the weight blob at the offset the
//! payload layout gives it:
//!
//! ```mlir
//! %w = "ditto.weight"() {name = "blk.0.attn_q.weight"} : () -> memref<896x896xf32>
//! // becomes, with %weights the enclosing function's first argument:
//! %off = arith.constant 1234560 : index
//! %w = memref.view %weights[%off][] : memref<?xi8> to memref<896x896xf32>
//! ```

use ditto_contracts::tensor_names::{self, Part};
use std::collections::HashMap;

use ditto_ir::melior::{
    dialect::arith,
    ir::{
        attribute::{ArrayAttribute, IntegerAttribute, StringAttribute},
        block::BlockLike,
        operation::{
            OperationBuilder, OperationLike, OperationMutLike, OperationRef, OperationRefMut,
        },
        r#type::MemRefType,
        Attribute, RegionLike, Type, ValueLike,
    },
    Context,
};

use crate::{rewrite, PassError};

/// Tensor name → byte offset in the weight blob.
pub type WeightOffsets = HashMap<String, u64>;

/// The blob entries of a weight op: `ditto.weight` has one, named after the
/// tensor; `codebook.weight` has two, `NAME#indices` and `NAME#codebooks`
/// (the names its tensors carry in a quantized weight file).
fn entries(op: OperationRef) -> Result<Vec<(String, usize)>, PassError> {
    let kind = op
        .name()
        .as_string_ref()
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = weight_name(op.attribute("name").ok())
        .ok_or_else(|| PassError::at(op, format!("{kind} without a string `name`")))?;
    Ok(if kind == "codebook.weight" {
        Part::ALL
            .iter()
            .enumerate()
            .map(|(result, &part)| (tensor_names::stored(&name, part), result))
            .collect()
    } else {
        vec![(name, 0)]
    })
}

const WEIGHT_OPS: [&str; 2] = ["ditto.weight", "codebook.weight"];

/// One blob entry a weight op uses.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightUse {
    /// The entry's name in the weight file.
    pub name: String,
    /// Its element type and static shape, if its memref type has both in a
    /// form the blob can hold.
    pub layout: Option<(Element, Vec<usize>)>,
    /// The memref type as printed, for messages.
    pub type_text: String,
}

/// Every blob entry the weight ops of `module` use, with its memref type.
pub fn weights_used(module: &ditto_ir::melior::ir::Module) -> Result<Vec<WeightUse>, PassError> {
    let mut used = Vec::new();
    for kind in WEIGHT_OPS {
        for op in rewrite::collect(module.as_operation(), kind) {
            for (name, result) in entries(op)? {
                let ty = op
                    .result(result)
                    .map_err(|e| PassError::at(op, e.to_string()))?
                    .r#type();
                used.push(WeightUse {
                    name,
                    layout: layout_of(ty),
                    type_text: ty.to_string(),
                });
            }
        }
    }
    Ok(used)
}

/// Alignment of each tensor in the weight blob, in bytes.
pub const TENSOR_ALIGN: u64 = 64;

pub use crate::types::Element;

/// A statically shaped memref type's element type and shape.
fn layout_of(ty: Type) -> Option<(Element, Vec<usize>)> {
    let (element, dims) = crate::types::memref(ty)?;
    let shape: Option<Vec<usize>> = dims
        .into_iter()
        .map(|d| d.and_then(|d| usize::try_from(d).ok()))
        .collect();
    Some((element?, shape?))
}

/// A weight's place in the blob.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub name: String,
    pub element: Element,
    pub shape: Vec<usize>,
    pub offset: u64,
    pub bytes: u64,
}

/// Lays out the weights a module uses (see [`weights_used`]): each once, in
/// order of first use, [`TENSOR_ALIGN`]-aligned. Returns the placements and
/// the blob's size.
pub fn layout(used: &[WeightUse]) -> Result<(Vec<Placement>, u64), PassError> {
    let mut placements: Vec<Placement> = Vec::new();
    let mut next = 0u64;
    for WeightUse {
        name,
        layout,
        type_text,
    } in used
    {
        let (element, shape) = layout.clone().ok_or_else(|| {
            PassError::new(format!(
                "weight \"{name}\" must be a statically shaped memref of f32, f16 or i8, not {type_text}"
            ))
        })?;
        if let Some(first) = placements.iter().find(|p| &p.name == name) {
            if (first.element, &first.shape) != (element, &shape) {
                return Err(PassError::new(format!(
                    "weight \"{name}\" is used as {type_text} and as {} {:?} elsewhere",
                    first.element.name(),
                    first.shape
                )));
            }
            continue;
        }
        let too_large = || {
            PassError::new(format!(
                "weight \"{name}\" ({type_text}) is too large for a weight blob"
            ))
        };
        let bytes = shape
            .iter()
            .try_fold(element.bytes(), |bytes, &extent| {
                bytes.checked_mul(extent as u64)
            })
            .filter(|&bytes| bytes <= i64::MAX as u64)
            .ok_or_else(too_large)?;
        placements.push(Placement {
            name: name.clone(),
            element,
            shape,
            offset: next,
            bytes,
        });
        next = next
            .checked_add(bytes)
            .and_then(|end| end.checked_next_multiple_of(TENSOR_ALIGN))
            .filter(|&end| end <= i64::MAX as u64)
            .ok_or_else(too_large)?;
    }
    Ok((placements, next))
}

/// Tensor name → byte offset, from a [`layout`].
pub fn offsets(placements: &[Placement]) -> WeightOffsets {
    placements
        .iter()
        .map(|p| (p.name.clone(), p.offset))
        .collect()
}

fn weight_name(attribute: Option<Attribute>) -> Option<String> {
    let string = StringAttribute::try_from(attribute?).ok()?;
    Some(ditto_ir::string_value(string))
}

/// The module attribute in which [`lower_weights`] records the offsets it
/// compiled in, `[["NAME", OFFSET], …]` in blob order, so that the payload
/// written next to the code can be checked against them.
pub const LAYOUT_ATTRIBUTE: &str = "ditto.weight_layout";

/// Rewrites every weight op into a `memref.view` of its function's first
/// argument (which must be `memref<?xi8>`) at the offset `placements` give
/// it, and records the offsets in [`LAYOUT_ATTRIBUTE`].
pub fn lower_weights(
    context: &Context,
    module: &ditto_ir::melior::ir::Module,
    placements: &[Placement],
) -> Result<(), PassError> {
    let offsets = offsets(placements);
    lower_weight_ops(context, module, &offsets)?;
    let entries: Vec<Attribute> = placements
        .iter()
        .map(|p| {
            ArrayAttribute::new(
                context,
                &[
                    StringAttribute::new(context, &p.name).into(),
                    IntegerAttribute::new(
                        Type::parse(context, "i64").expect("i64"),
                        p.offset as i64,
                    )
                    .into(),
                ],
            )
            .into()
        })
        .collect();
    let layout = ArrayAttribute::new(context, &entries);
    // SAFETY: the module's own operation, mutated while nothing else borrows it.
    let mut op = unsafe { OperationRefMut::from_raw(module.as_operation().to_raw()) };
    op.set_attribute(LAYOUT_ATTRIBUTE, layout.into());
    Ok(())
}

/// The offsets [`lower_weights`] recorded in `module`, in blob order.
pub fn recorded_layout(
    module: &ditto_ir::melior::ir::Module,
) -> Result<Vec<(String, u64)>, PassError> {
    let bad = || {
        PassError::new(format!(
            "the module's `{LAYOUT_ATTRIBUTE}` is missing or not [[\"NAME\", OFFSET], …]"
        ))
    };
    let layout = module
        .as_operation()
        .attribute(LAYOUT_ATTRIBUTE)
        .ok()
        .and_then(|a| ArrayAttribute::try_from(a).ok())
        .ok_or_else(bad)?;
    (0..layout.len())
        .map(|i| {
            let entry = layout
                .element(i)
                .ok()
                .and_then(|e| ArrayAttribute::try_from(e).ok())
                .filter(|e| e.len() == 2)
                .ok_or_else(bad)?;
            let name = entry
                .element(0)
                .ok()
                .and_then(|n| StringAttribute::try_from(n).ok())
                .ok_or_else(bad)?;
            let offset = entry
                .element(1)
                .ok()
                .and_then(|o| IntegerAttribute::try_from(o).ok())
                .and_then(|o| u64::try_from(o.value()).ok())
                .ok_or_else(bad)?;
            Ok((ditto_ir::string_value(name), offset))
        })
        .collect()
}

fn lower_weight_ops(
    context: &Context,
    module: &ditto_ir::melior::ir::Module,
    offsets: &WeightOffsets,
) -> Result<(), PassError> {
    let blob_type = Type::parse(context, "memref<?xi8>").expect("static type");
    for kind in WEIGHT_OPS {
        for op in rewrite::collect(module.as_operation(), kind) {
            let func = rewrite::enclosing_func(op)
                .ok_or_else(|| PassError::at(op, format!("{kind} outside a function")))?;
            let entry = func
                .region(0)
                .ok()
                .and_then(|r| r.first_block())
                .ok_or_else(|| PassError::at(op, format!("{kind} in a function without a body")))?;
            let blob = entry
                .argument(0)
                .ok()
                .filter(|a| a.r#type() == blob_type)
                .ok_or_else(|| {
                    PassError::at(
                        op,
                        format!("{kind} needs its function's first argument to be the weight blob `memref<?xi8>`"),
                    )
                })?;
            for (name, result) in entries(op)? {
                let offset = *offsets.get(&name).ok_or_else(|| {
                    PassError::at(op, format!("no weight named \"{name}\" in the weight file"))
                })?;
                let value = op
                    .result(result)
                    .map_err(|e| PassError::new(e.to_string()))?;
                let result_type = MemRefType::try_from(value.r#type())
                    .map_err(|_| PassError::at(op, format!("{kind} must produce memrefs")))?;
                let location = op.location();
                let offset_op = rewrite::insert_before(
                    op,
                    arith::constant(
                        context,
                        IntegerAttribute::new(Type::index(context), offset as i64).into(),
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
                rewrite::replace_uses(value.into(), view.result(0).expect("view result").into());
            }
            rewrite::erase(op);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(context: &Context, name: &str, ty: &str) -> WeightUse {
        let ty = Type::parse(context, ty).unwrap();
        WeightUse {
            name: name.into(),
            layout: layout_of(ty),
            type_text: ty.to_string(),
        }
    }

    #[test]
    fn layout_is_in_first_use_order_aligned_and_deduplicated() {
        let context = ditto_ir::create_context().unwrap();
        let used = [
            weight(&context, "a", "memref<3x5xf32>"),
            weight(&context, "b", "memref<7xf32>"),
            weight(&context, "a", "memref<3x5xf32>"),
        ];
        let (placements, total) = layout(&used).unwrap();
        assert_eq!(placements.len(), 2);
        assert_eq!((placements[0].offset, placements[0].bytes), (0, 60));
        assert_eq!((placements[1].offset, placements[1].bytes), (64, 28));
        assert_eq!(placements[1].shape, vec![7]);
        assert_eq!(total, 128);
    }

    #[test]
    fn layout_rejects_dynamic_or_non_f32_weights() {
        let context = ditto_ir::create_context().unwrap();
        for ty in ["memref<?x5xf32>", "memref<5xi32>"] {
            let error = layout(&[weight(&context, "w", ty)]).unwrap_err();
            assert!(error.to_string().contains(ty), "{error}");
        }
    }

    #[test]
    fn layout_rejects_one_name_with_two_types() {
        let context = ditto_ir::create_context().unwrap();
        let used = [
            weight(&context, "a", "memref<3x5xf32>"),
            weight(&context, "a", "memref<5x3xf32>"),
        ];
        let error = layout(&used).unwrap_err().to_string();
        assert!(
            error.contains("weight \"a\" is used as memref<5x3xf32> and as f32 [3, 5] elsewhere"),
            "{error}"
        );
    }

    #[test]
    fn layout_rejects_sizes_beyond_a_blob() {
        let context = ditto_ir::create_context().unwrap();
        let huge = "memref<4294967296x4294967296xf32>";
        let error = layout(&[weight(&context, "w", huge)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("too large for a weight blob"), "{error}");
    }
}
