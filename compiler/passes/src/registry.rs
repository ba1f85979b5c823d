//! dittoc's passes as MLIR knows them: each pass's argument, options and the
//! function that runs it, registered with MLIR's pass registry by
//! [`register`]. After that, a pipeline such as
//!
//! ```text
//! builtin.module(ditto-select-kernels{codebook-kernels=dequantize},ditto-lower-kernels,canonicalize)
//! ```
//!
//! is parsed and run by MLIR alone (`ditto-opt --pass-pipeline=…`, and
//! dittoc's one pipeline string in `compiler/codegen/src/pipeline.rs`).

use std::sync::Once;

use ditto_dialects::codebook::Scheme;
use ditto_ir::{
    melior::{ir::Module, Context},
    pass::{self, PassDefinition, PassOption, PassOptions},
    PassError,
};

use crate::select::CodebookKernel;

/// Registers every pass of this crate (once per process; later calls do
/// nothing).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for definition in PASSES {
            pass::register(definition);
        }
    });
}

/// Every pass of this crate.
pub const PASSES: [&PassDefinition; 5] = [
    &SELECT_KERNELS,
    &LOWER_KERNELS,
    &LOWER_WEIGHTS,
    &VERIFY,
    &QUANTIZE,
];

fn no_options(_: &PassOptions) -> Result<(), String> {
    Ok(())
}

/// `ditto-select-kernels`: the e-graph stage ([`crate::select`]).
pub static SELECT_KERNELS: PassDefinition = PassDefinition {
    argument: c"ditto-select-kernels",
    name: c"DittoSelectKernels",
    description: c"Select BLIS and codebook kernels for linalg.generic ops with an e-graph",
    options: &[
        PassOption {
            name: c"codebook-kernels",
            description: c"How products with codebook matrices run: fused, or dequantize (Ditto's recipe: dequantize to f32, then BLIS)",
            default: c"fused",
        },
        PassOption {
            name: c"rules",
            description: c"Extra rule files, comma-separated",
            default: c"",
        },
        PassOption {
            name: c"report",
            description: c"Print what was selected to stderr",
            default: c"false",
        },
    ],
    check: |options| {
        select_options(options)?;
        Ok(())
    },
    run: |context, module, options| {
        let (codebook, files, report) = select_options(options).map_err(PassError::new)?;
        let rules = crate::select::rule_set(&files)?;
        let selected = crate::select::select_kernels(context, module, &rules, codebook)?;
        if report {
            eprintln!("{selected}");
        }
        Ok(())
    },
};

type SelectOptions = (CodebookKernel, Vec<std::path::PathBuf>, bool);

fn select_options(options: &PassOptions) -> Result<SelectOptions, String> {
    let codebook = options.get("codebook-kernels");
    let codebook = CodebookKernel::parse(codebook)
        .ok_or_else(|| format!("codebook-kernels={codebook}: expected `fused` or `dequantize`"))?;
    let files = options
        .get("rules")
        .split(',')
        .filter(|f| !f.is_empty())
        .map(std::path::PathBuf::from)
        .collect();
    let report = boolean(options, "report")?;
    Ok((codebook, files, report))
}

fn boolean(options: &PassOptions, name: &str) -> Result<bool, String> {
    match options.get(name) {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("{name}={other}: expected `true` or `false`")),
    }
}

/// `ditto-lower-kernels`: kernel ops become runtime calls ([`crate::kernels`]).
pub static LOWER_KERNELS: PassDefinition = PassDefinition {
    argument: c"ditto-lower-kernels",
    name: c"DittoLowerKernels",
    description: c"Lower ditto and codebook kernel ops to calls of the runtime",
    options: &[],
    check: no_options,
    run: |context, module, _| crate::kernels::lower_kernels(context, module),
};

/// `ditto-lower-weights`: weight ops become views of the weight blob at the
/// offsets of dittoc's payload layout ([`crate::weights`]).
pub static LOWER_WEIGHTS: PassDefinition = PassDefinition {
    argument: c"ditto-lower-weights",
    name: c"DittoLowerWeights",
    description: c"Lower ditto.weight and codebook.weight ops to views of the weight blob",
    options: &[],
    check: no_options,
    run: |context, module, _| lower_weights(context, module),
};

fn lower_weights(context: &Context, module: &Module) -> Result<(), PassError> {
    let used = crate::weights::weights_used(module)?;
    let (placements, _) = crate::weights::layout(&used)?;
    crate::weights::lower_weights(context, module, &placements)
}

/// `ditto-verify`: what the IRDL definitions cannot express ([`crate::verify`]).
pub static VERIFY: PassDefinition = PassDefinition {
    argument: c"ditto-verify",
    name: c"DittoVerify",
    description: c"Check the ditto and codebook ops beyond their IRDL definitions (f32 elements, ranks, agreeing shapes)",
    options: &[],
    check: no_options,
    run: |context, module, _| crate::verify::verify(context, module),
};

/// `ditto-quantize`: the IR rewrite of quantization alone, without weight
/// data ([`crate::quantize`]): every weight used only as a product matrix,
/// with the scheme of the options. (`dittoc quantize` runs the same rewrite
/// with the scheme it chose per weight, and writes the weights.)
pub static QUANTIZE: PassDefinition = PassDefinition {
    argument: c"ditto-quantize",
    name: c"DittoQuantize",
    description: c"Rewrite f32 product weights into codebook weights (IR only)",
    options: &[
        PassOption {
            name: c"bits",
            description: c"Bits per index (2, 3, 4, 5, 6 or 8)",
            default: c"4",
        },
        PassOption {
            name: c"block",
            description: c"Weights per codebook (a positive multiple of 8)",
            default: c"256",
        },
    ],
    check: |options| quantize_scheme(options).map(|_| ()),
    run: |context, module, options| {
        let scheme = quantize_scheme(options).map_err(PassError::new)?;
        let plan = crate::quantize::quantizable_weights(module)?
            .into_iter()
            .map(|q| (q.name, scheme))
            .collect();
        crate::quantize::apply(context, module, &plan)
    },
};

fn quantize_scheme(options: &PassOptions) -> Result<Scheme, String> {
    let integer = |name: &str| {
        let text = options.get(name);
        text.parse::<i64>()
            .map_err(|_| format!("{name}={text}: expected an integer"))
    };
    let bits = ditto_contracts::codebook::check_bits_i64(integer("bits")?)
        .map_err(|e| format!("bits: {e}"))?;
    let block = ditto_contracts::codebook::check_block_i64(integer("block")?)
        .map_err(|e| format!("block: {e}"))?;
    Ok(Scheme {
        bits,
        block: block as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(
        definition: &'static PassDefinition,
        values: &[(&str, &'static str)],
    ) -> PassOptions<'static> {
        let defaults = PassOptions::defaults(definition.options);
        let values = definition
            .options
            .iter()
            .map(|o| {
                let name = o.name.to_str().unwrap();
                values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| defaults.get(name))
            })
            .collect();
        PassOptions::new(definition.options, values)
    }

    #[test]
    fn defaults_are_valid() {
        for definition in PASSES {
            let defaults = PassOptions::defaults(definition.options);
            assert_eq!(
                (definition.check)(&defaults),
                Ok(()),
                "{:?}",
                definition.argument
            );
        }
    }

    #[test]
    fn quantize_options_out_of_range_are_refused() {
        for (values, expected) in [
            (vec![("bits", "255")], "bits = 255"),
            (vec![("bits", "7")], "bits = 7"),
            (vec![("block", "0")], "block length 0"),
            (vec![("block", "12")], "block length 12"),
            (
                vec![("block", "99999999999999999999")],
                "expected an integer",
            ),
            (vec![("bits", "four")], "bits=four"),
        ] {
            let error = (QUANTIZE.check)(&options(&QUANTIZE, &values)).unwrap_err();
            assert!(error.contains(expected), "{values:?}: {error}");
        }
        let ok = options(&QUANTIZE, &[("bits", "3"), ("block", "64")]);
        assert_eq!(quantize_scheme(&ok), Ok(Scheme { bits: 3, block: 64 }));
    }

    #[test]
    fn select_options_are_parsed() {
        let parsed = select_options(&options(
            &SELECT_KERNELS,
            &[
                ("codebook-kernels", "dequantize"),
                ("rules", "a.rules,b.rules"),
                ("report", "true"),
            ],
        ))
        .unwrap();
        assert_eq!(parsed.0, CodebookKernel::Dequantize);
        assert_eq!(
            parsed.1,
            vec![std::path::PathBuf::from("a.rules"), "b.rules".into()]
        );
        assert!(parsed.2);
        let bad =
            (SELECT_KERNELS.check)(&options(&SELECT_KERNELS, &[("codebook-kernels", "fast")]))
                .unwrap_err();
        assert!(bad.contains("codebook-kernels=fast"), "{bad}");
    }
}
