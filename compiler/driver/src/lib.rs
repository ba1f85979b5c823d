//! Command-line pieces shared by the `dittoc` and `ditto-opt` drivers (the
//! checks of dittoc's flags: [`flags`]), and the stages they compose
//! (`quantize`, `datastore`).

pub mod datastore;
pub mod flags;
pub mod quantize;

use clap::ValueEnum;
use ditto_passes::select::CodebookKernel;

/// `--codebook-kernels`: how products with codebook-quantized weights run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CodebookKernels {
    /// Fused kernels that read the codebooks directly.
    Fused,
    /// Ditto's recipe: dequantize to f32, then BLIS.
    Dequantize,
}

impl From<CodebookKernels> for CodebookKernel {
    fn from(kind: CodebookKernels) -> Self {
        match kind {
            CodebookKernels::Fused => CodebookKernel::Fused,
            CodebookKernels::Dequantize => CodebookKernel::Dequantize,
        }
    }
}
