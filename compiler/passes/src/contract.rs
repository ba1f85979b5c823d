//! The module against itself and the model contract (docs/contracts.md §1,
//! §3), part of `ditto-verify`:
//!
//! - every weight is declared once: all the ops that read one name agree on
//!   its kind, types and quantization;
//! - in a model module (one with `ditto.arch`), every dimension attribute is
//!   in range and consistent with the others (`ditto_contracts::model::Dims`),
//!   every weight the convention names has the shape the attributes give it
//!   (a codebook weight: the index and codebook sizes of that shape), and the
//!   three entry points take exactly the buffers the runtime sizes from the
//!   attributes.
//!
//! Every error names the weight, argument or attribute, and both values.

use std::collections::HashMap;

use ditto_contracts::{
    codebook::Format,
    model::{attr, Dims, Extent, Tensor, MAX_CTX},
};
use ditto_ir::melior::{
    ir::{
        attribute::{IntegerAttribute, StringAttribute, TypeAttribute},
        block::BlockLike,
        operation::{OperationLike, OperationRef},
        r#type::{FunctionType, IntegerType, MemRefType},
        Module, Type, ValueLike,
    },
    Context,
};

use crate::{rewrite, verify::scheme, PassError};

/// One weight op's declaration of its weight.
struct Declaration<'c, 'a> {
    op: OperationRef<'c, 'a>,
    kind: String,
    types: Vec<Type<'c>>,
    /// `(bits, block)` of a codebook weight.
    scheme: Option<(u64, u64)>,
}

impl Declaration<'_, '_> {
    fn describe(&self) -> String {
        let types: Vec<String> = self.types.iter().map(|t| t.to_string()).collect();
        let scheme = self
            .scheme
            .map(|(bits, block)| format!(" (bits = {bits}, block = {block})"))
            .unwrap_or_default();
        format!("{} {}{scheme}", self.kind, types.join(", "))
    }
}

pub fn verify(context: &Context, module: &Module) -> Result<(), PassError> {
    let weights = declarations(module)?;
    let root = module.as_operation();
    if root.attribute(attr::ARCH).is_err() {
        return Ok(());
    }
    let dims = dims(module)?;
    for (name, declaration) in &weights {
        check_weight(name, declaration, &dims)?;
    }
    check_entries(context, module, &dims)
}

/// Every weight op, one per name, after checking that the others reading
/// the same name declare it alike.
fn declarations<'c, 'a>(
    module: &'a Module<'c>,
) -> Result<Vec<(String, Declaration<'c, 'a>)>, PassError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut unique: Vec<(String, Declaration)> = Vec::new();
    for kind in ["ditto.weight", "codebook.weight"] {
        for op in rewrite::collect(module.as_operation(), kind) {
            let name = op
                .attribute("name")
                .ok()
                .and_then(|a| StringAttribute::try_from(a).ok())
                .map(ditto_ir::string_value)
                .ok_or_else(|| PassError::at(op, format!("{kind} without a string `name`")))?;
            let declaration = Declaration {
                op,
                kind: kind.to_string(),
                types: op.results().map(|r| r.r#type()).collect(),
                scheme: if kind == "codebook.weight" {
                    Some(scheme(op)?)
                } else {
                    None
                },
            };
            match seen.get(&name) {
                Some(&first) => {
                    let first = &unique[first].1;
                    if first.kind != declaration.kind
                        || first.types != declaration.types
                        || first.scheme != declaration.scheme
                    {
                        return Err(PassError::at(
                            op,
                            format!(
                                "weight \"{name}\" is declared as {} here but as {} at {}",
                                declaration.describe(),
                                first.describe(),
                                first.op.location()
                            ),
                        ));
                    }
                }
                None => {
                    seen.insert(name.clone(), unique.len());
                    unique.push((name, declaration));
                }
            }
        }
    }
    Ok(unique)
}

/// The model's dimensions from the module's attributes, checked with
/// `ditto.max_ctx`.
fn dims(module: &Module) -> Result<Dims, PassError> {
    let root = module.as_operation();
    let integer = |key: &str| -> Result<usize, PassError> {
        let value = root
            .attribute(key)
            .ok()
            .and_then(|a| IntegerAttribute::try_from(a).ok())
            .map(|i| i.value())
            .ok_or_else(|| {
                PassError::at(
                    root,
                    format!("the model module has no integer attribute {key}"),
                )
            })?;
        usize::try_from(value)
            .map_err(|_| PassError::at(root, format!("{key} = {value} is negative")))
    };
    let dims = Dims {
        n_layers: integer(attr::N_LAYERS)?,
        d_model: integer(attr::D_MODEL)?,
        n_heads: integer(attr::N_HEADS)?,
        n_kv_heads: integer(attr::N_KV_HEADS)?,
        head_dim: integer(attr::HEAD_DIM)?,
        ffn: integer(attr::FFN)?,
        vocab: integer(attr::VOCAB)?,
    };
    dims.check().map_err(|e| PassError::at(root, e))?;
    let max_ctx = integer(attr::MAX_CTX)?;
    if !(1..=MAX_CTX).contains(&max_ctx) {
        return Err(PassError::at(
            root,
            format!(
                "{} = {max_ctx} is not between 1 and {MAX_CTX}",
                attr::MAX_CTX
            ),
        ));
    }
    Ok(dims)
}

fn shape_text(values: &[usize]) -> String {
    let values: Vec<String> = values.iter().map(usize::to_string).collect();
    format!("[{}]", values.join(", "))
}

fn sources(shape: &[Extent]) -> String {
    let from: Vec<&str> = shape.iter().map(|e| e.from).collect();
    from.join("; ")
}

/// A weight the convention names has the shape the attributes give it.
fn check_weight(name: &str, declaration: &Declaration, dims: &Dims) -> Result<(), PassError> {
    let op = declaration.op;
    let expected = match dims.tensor(name) {
        Tensor::Shaped(shape) => shape,
        Tensor::NoSuchLayer(layer) => {
            return Err(PassError::at(
                op,
                format!(
                    "weight \"{name}\" is of layer {layer}, but {} = {}",
                    attr::N_LAYERS,
                    dims.n_layers
                ),
            ))
        }
        Tensor::Other => return Ok(()),
    };
    let values: Vec<usize> = expected.iter().map(|e| e.value).collect();
    let mismatch = |actual: String| {
        PassError::at(
            op,
            format!(
                "weight \"{name}\" is {actual}, but the module's attributes make it {} ({})",
                shape_text(&values),
                sources(&expected)
            ),
        )
    };
    match declaration.scheme {
        None => {
            let shape = declaration
                .types
                .first()
                .and_then(|&t| crate::types::f32_shape(t));
            let matches = shape.as_ref().is_some_and(|s| {
                s.len() == values.len() && s.iter().zip(&values).all(|(a, &b)| *a == Some(b as u64))
            });
            if !matches {
                return Err(mismatch(declaration.describe()));
            }
        }
        Some((bits, block)) => {
            let [n, k] = values[..] else {
                return Err(mismatch(format!(
                    "quantized ({}), which only a matrix can be",
                    declaration.describe()
                )));
            };
            let format = Format::new_or_empty(n, k, bits as u8, block as usize)
                .map_err(|e| PassError::at(op, format!("weight \"{name}\": {e}")))?;
            let storage = |index: usize| {
                declaration
                    .types
                    .get(index)
                    .and_then(|&t| crate::types::memref(t))
                    .map(|(_, shape)| shape)
            };
            let indices_ok = storage(0) == Some(vec![Some(format.index_bytes() as u64)]);
            let codebooks_ok = storage(1)
                .is_some_and(|shape| shape.first() == Some(&Some(format.blocks() as u64)));
            if !indices_ok || !codebooks_ok {
                return Err(mismatch(format!(
                    "stored as {}, not as {} index bytes and {} codebooks",
                    declaration.describe(),
                    format.index_bytes(),
                    format.blocks()
                )));
            }
        }
    }
    Ok(())
}

/// One argument of an entry point: its name in docs/contracts.md §3, the
/// type the runtime passes, and the attributes that type comes from.
struct Argument<'c> {
    name: &'static str,
    ty: Type<'c>,
    from: &'static str,
}

/// The entry points take exactly the buffers the runtime sizes from the
/// attributes (docs/contracts.md §3).
fn check_entries(context: &Context, module: &Module, dims: &Dims) -> Result<(), PassError> {
    let dynamic = ditto_ir::dynamic_size();
    let f32_type = Type::float32(context);
    fn memref<'c>(element: Type<'c>, shape: &[i64]) -> Type<'c> {
        MemRefType::new(element, shape, None, None).into()
    }
    let (d, vocab) = (dims.d_model as i64, dims.vocab as i64);
    let cache = memref(
        f32_type,
        &[
            dims.n_layers as i64,
            dynamic,
            dims.n_kv_heads as i64,
            dims.head_dim as i64,
        ],
    );
    let cache_from = "ditto.n_layers, ?, ditto.n_kv_heads, ditto.head_dim";
    let blob = Argument {
        name: "weights",
        ty: memref(IntegerType::new(context, 8).into(), &[dynamic]),
        from: "the weight blob",
    };
    let index = |name| Argument {
        name,
        ty: Type::index(context),
        from: "an index",
    };
    let caches = || {
        [
            Argument {
                name: "k_cache",
                ty: cache,
                from: cache_from,
            },
            Argument {
                name: "v_cache",
                ty: cache,
                from: cache_from,
            },
        ]
    };
    let hidden = Argument {
        name: "hidden",
        ty: memref(f32_type, &[dynamic, d]),
        from: "?, ditto.d_model",
    };
    let [k, v] = caches();
    let decode = vec![
        blob,
        k,
        v,
        index("token"),
        index("pos"),
        Argument {
            name: "logits",
            ty: memref(f32_type, &[vocab]),
            from: "ditto.vocab",
        },
    ];
    let [k, v] = caches();
    let prefill = vec![
        Argument {
            name: "weights",
            ty: decode[0].ty,
            from: decode[0].from,
        },
        k,
        v,
        Argument {
            name: "tokens",
            ty: memref(IntegerType::new(context, 32).into(), &[dynamic]),
            from: "?",
        },
        index("pos"),
        Argument {
            name: "hidden",
            ty: hidden.ty,
            from: hidden.from,
        },
    ];
    let lm_head = vec![
        Argument {
            name: "weights",
            ty: decode[0].ty,
            from: decode[0].from,
        },
        hidden,
        Argument {
            name: "logits",
            ty: memref(f32_type, &[dynamic, vocab]),
            from: "?, ditto.vocab",
        },
    ];
    for (entry, expected) in [
        ("ditto_decode", decode),
        ("ditto_prefill", prefill),
        ("ditto_lm_head", lm_head),
    ] {
        check_entry(module, entry, &expected)?;
    }
    Ok(())
}

fn check_entry(module: &Module, entry: &str, expected: &[Argument]) -> Result<(), PassError> {
    let root = module.as_operation();
    let function = functions(module)
        .into_iter()
        .find(|(name, _)| name == entry)
        .map(|(_, op)| op)
        .ok_or_else(|| {
            PassError::at(
                root,
                format!(
                    "the model module has no function @{entry}, an entry point of the executable"
                ),
            )
        })?;
    let ty = function
        .attribute("function_type")
        .ok()
        .and_then(|a| TypeAttribute::try_from(a).ok())
        .and_then(|t| FunctionType::try_from(t.value()).ok())
        .ok_or_else(|| PassError::at(function, format!("@{entry} has no function type")))?;
    let arguments: Vec<String> = expected.iter().map(|a| a.name).map(String::from).collect();
    if ty.input_count() != expected.len() || ty.result_count() != 0 {
        return Err(PassError::at(
            function,
            format!(
                "@{entry} must take {} arguments ({}) and return nothing, not {ty}",
                expected.len(),
                arguments.join(", ")
            ),
        ));
    }
    for (i, argument) in expected.iter().enumerate() {
        let actual = ty
            .input(i)
            .map_err(|e| PassError::at(function, e.to_string()))?;
        if actual != argument.ty {
            return Err(PassError::at(
                function,
                format!(
                    "@{entry}'s argument {i} (%{}) is {actual}, but the module's attributes make it {} ({})",
                    argument.name, argument.ty, argument.from
                ),
            ));
        }
    }
    Ok(())
}

/// The module's top-level functions by name.
fn functions<'c, 'a>(module: &'a Module<'c>) -> Vec<(String, OperationRef<'c, 'a>)> {
    let mut found = Vec::new();
    let mut next = module.body().first_operation();
    while let Some(op) = next {
        if op.name().as_string_ref().as_str() == Ok("func.func") {
            if let Some(name) = op
                .attribute("sym_name")
                .ok()
                .and_then(|a| StringAttribute::try_from(a).ok())
            {
                found.push((ditto_ir::string_value(name), op));
            }
        }
        next = op.next_in_block();
    }
    found
}
