//! The cost model used to extract the cheapest term from the e-graph.
//!
//! The numbers are ordinal, not cycle estimates. They only have to order the
//! alternatives an e-class can hold, and the order is:
//!
//! 1. a kernel call (`blas.gemv`, `blas.gemm`, `cb.gemv`, `cb.gemm`) with
//!    plain operands — about 20 (whether a codebook product then runs fused
//!    or as Ditto's dequantize-then-BLAS recipe is an option of the lowering,
//!    not a choice the e-graph makes);
//! 2. a kernel call plus whole-output passes (`tensor.add`, `tensor.scale`)
//!    that a rule could not fold into it — at least [`TENSOR_PASS`];
//! 3. anything with a loop nest (`gen`) — at least [`LOOP_NEST`].
//!
//! Why: a BLIS `sgemv`/`sgemm` call runs a vectorized, cache-blocked
//! micro-kernel near memory bandwidth (GEMV) or near peak FLOPs (GEMM), while
//! `linalg.generic` lowered to loops runs a scalar FMA per element (the
//! reduction order of `sum` blocks vectorization without fast-math): 10–50×
//! slower for the matrix sizes of a language model. An extra elementwise
//! pass over the output (bias add, scale) is cheap next to the product
//! (one pass over m values versus m·k), but still a loop the kernel could
//! have done for free through BETA and ALPHA, so it ranks between the two.
//! Inside a term, scalar operators cost 1 each so that, between two loop
//! nests, the one doing less work per element wins.

use egg::{CostFunction, Id, Language};

use crate::lang::Lang;

/// A symbol or number.
pub const LEAF: u64 = 1;
/// One scalar or index operation (`+ - * / neg max read acc fill ix floordiv mod`).
pub const SCALAR_OP: u64 = 1;
/// An opaque scalar function (`fn`: exp, rsqrt, …) or `opaque`.
pub const SCALAR_FN: u64 = 4;
/// A reduction loop (`sum`), inside a loop nest.
pub const REDUCTION_LOOP: u64 = 100;
/// A library kernel call.
pub const KERNEL_CALL: u64 = 10;
/// A whole-output elementwise pass (`tensor.add`, `tensor.scale`).
pub const TENSOR_PASS: u64 = 1_000;
/// A loop nest (`gen`).
pub const LOOP_NEST: u64 = 10_000;

/// The cost function: [`KERNEL_CALL`] ≪ [`TENSOR_PASS`] ≪ [`LOOP_NEST`].
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelCost;

impl KernelCost {
    /// The cost of the node itself, without its operands.
    pub fn node_cost(node: &Lang) -> u64 {
        match node {
            Lang::Num(_) | Lang::Symbol(_) => LEAF,
            Lang::Gen(_) => LOOP_NEST,
            Lang::Sum(_) => REDUCTION_LOOP,
            Lang::Gemv(_) | Lang::Gemm(_) | Lang::CbGemv(_) | Lang::CbGemm(_) => KERNEL_CALL,
            Lang::TensorAdd(_) | Lang::TensorScale(_) => TENSOR_PASS,
            Lang::Fn(_) | Lang::Opaque(_) => SCALAR_FN,
            Lang::Ix(_)
            | Lang::Read(_)
            | Lang::Acc(_)
            | Lang::Fill(_)
            | Lang::Add(_)
            | Lang::Sub(_)
            | Lang::Mul(_)
            | Lang::Div(_)
            | Lang::Neg(_)
            | Lang::Max(_)
            | Lang::FloorDiv(_)
            | Lang::Mod(_)
            | Lang::CbMatrix(_) => SCALAR_OP,
        }
    }

    /// The cost of a whole term (the same number extraction computes).
    pub fn term_cost(term: &crate::lang::Term) -> u64 {
        let nodes = term.as_ref();
        let mut costs = vec![0u64; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            costs[i] = n.fold(Self::node_cost(n), |acc, c| {
                acc.saturating_add(costs[usize::from(c)])
            });
        }
        costs.last().copied().unwrap_or(0)
    }
}

impl CostFunction<Lang> for KernelCost {
    type Cost = u64;

    fn cost<C>(&mut self, enode: &Lang, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        enode.fold(Self::node_cost(enode), |acc, id| {
            acc.saturating_add(costs(id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Term;

    fn cost(text: &str) -> u64 {
        KernelCost::term_cost(&text.parse::<Term>().unwrap())
    }

    #[test]
    fn kernels_rank_below_passes_below_loops() {
        let gemm = cost("(blas.gemm 0.125 %a t %b n 1 (fill 0.5))");
        let gemv = cost("(blas.gemv 1 %a n %x 0 (fill 0))");
        assert!(gemv < 30 && gemm < 30, "{gemv} {gemm}");
        let partial = cost("(tensor.add %b (blas.gemv 1 %a n %x 1 %y))");
        assert!(partial > gemm && partial < LOOP_NEST);
        let smallest_loop = cost("(gen (ix) 0)");
        assert!(smallest_loop > partial);
    }

    #[test]
    fn term_cost_sums_nodes() {
        assert_eq!(cost("(+ %a 1)"), SCALAR_OP + 2 * LEAF);
        assert_eq!(cost("(fn exp 1)"), SCALAR_FN + 2 * LEAF);
    }
}
