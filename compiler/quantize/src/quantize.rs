//! The tensor quantizer: per-block weighted k-means, f16 codebooks, packed
//! nearest-centroid indices.
//!
//! Block `j` holds the weights `i ∈ [j·B, min((j+1)·B, N·K))` in row-major
//! order; weight `i` lies in input channel `i mod K` and has that channel's
//! importance. For each block (in parallel, each seeded from `(seed, j)`, so
//! the result does not depend on the thread count):
//!
//! 1. weighted k-means ([`crate::kmeans`]) gives `2^b` centroids;
//! 2. the centroids are rounded to f16 (round to nearest even);
//! 3. every weight gets the index of its nearest *rounded* centroid (ties go
//!    to the lower index), and the indices are bit-packed.

use half::f16;
use rayon::prelude::*;

use crate::format::Format;
use crate::invalid::{check_len, QuantizeError, Result};
use crate::kmeans::{KmeansOptions, Solver};
use crate::pack::pack_unchecked;
use crate::quantized::Quantized;
use crate::rng::SplitMix64;

/// The longest block the quantizer takes: positions within a block are
/// sorted as the low 32 bits of a `u64` key.
pub const MAX_BLOCK: usize = u32::MAX as usize;

/// Quantizes the row-major `[n, k]` matrix `weights` with `bits`-bit indices
/// and one codebook per `block` weights, weighting weight `[r, c]` by
/// `importance[c]` (all ones when `None`). Deterministic for a given `seed`.
pub fn quantize(
    weights: &[f32],
    n: usize,
    k: usize,
    importance: Option<&[f32]>,
    bits: u8,
    block: usize,
    seed: u64,
) -> Result<Quantized> {
    let format = Format::new(n, k, bits, block)?;
    quantize_with(weights, format, importance, seed, &KmeansOptions::default())
}

/// [`quantize`] with explicit format and k-means options.
pub fn quantize_with(
    weights: &[f32],
    format: Format,
    importance: Option<&[f32]>,
    seed: u64,
    options: &KmeansOptions,
) -> Result<Quantized> {
    if format.block.min(format.len()) > MAX_BLOCK {
        return Err(QuantizeError::BlockTooLarge {
            block: format.block,
            max: MAX_BLOCK,
        });
    }
    check_weights(weights, &format)?;
    if let Some(imp) = importance {
        check_importance(imp, format.k)?;
    }
    let mut indices = vec![0u8; format.index_bytes()];
    let mut codebooks = vec![f16::ZERO; format.codebook_len()];
    let job = Job {
        format: &format,
        importance,
        seed,
        options,
    };
    indices
        .par_chunks_mut(format.block_index_bytes())
        .zip(codebooks.par_chunks_mut(format.levels()))
        .zip(weights.par_chunks(format.block))
        .enumerate()
        .for_each_init(BlockScratch::default, |s, (j, ((packed, book), w))| {
            let block = Block {
                index: j,
                start: j * format.block,
                values: w,
            };
            s.quantize(&block, &job, book, packed);
        });
    Ok(Quantized {
        n: format.n,
        k: format.k,
        bits: format.bits,
        block: format.block,
        indices,
        codebooks,
    })
}

/// Checks the length of `weights` and that each is finite and within f16 range.
pub(crate) fn check_weights(weights: &[f32], format: &Format) -> Result<()> {
    check_len("weights (N·K)", format.len(), weights.len())?;
    // Chunks are scanned with a branch-free fold (it vectorizes); only a
    // chunk that holds a bad value is searched for its position.
    const CHUNK: usize = 1 << 16;
    let max = f16::MAX.to_f32();
    let bad_value = |w: &f32| w.is_nan() | (w.abs() > max);
    let bad = weights
        .par_chunks(CHUNK)
        .position_first(|c| c.iter().fold(false, |acc, w| acc | bad_value(w)))
        .map(|chunk| {
            let first = weights[chunk * CHUNK..].iter().position(bad_value);
            chunk * CHUNK + first.expect("the chunk holds a bad value")
        });
    match bad {
        None => Ok(()),
        Some(index) => {
            let (row, col) = format.row_col(index);
            let value = weights[index];
            Err(if value.is_finite() {
                QuantizeError::WeightOutOfF16Range {
                    index,
                    row,
                    col,
                    value,
                }
            } else {
                QuantizeError::NonFiniteWeight {
                    index,
                    row,
                    col,
                    value,
                }
            })
        }
    }
}

/// Checks that there are `k` importances, each finite and ≥ 0.
pub(crate) fn check_importance(importance: &[f32], k: usize) -> Result<()> {
    check_len("importance (one per input channel, K)", k, importance.len())?;
    match importance
        .iter()
        .position(|w| !(w.is_finite() && *w >= 0.0))
    {
        None => Ok(()),
        Some(channel) => Err(QuantizeError::BadImportance {
            channel,
            value: importance[channel],
        }),
    }
}

/// One block's weights: block `index`, starting at flat position `start`.
struct Block<'a> {
    index: usize,
    start: usize,
    values: &'a [f32],
}

/// What every block of one tensor is quantized with.
struct Job<'a> {
    format: &'a Format,
    importance: Option<&'a [f32]>,
    seed: u64,
    options: &'a KmeansOptions,
}

/// Per-thread scratch space, reused from block to block.
#[derive(Default)]
struct BlockScratch {
    keys: Vec<u64>,
    solver: Solver,
    mids: Vec<f64>,
    idx: Vec<u8>,
}

impl BlockScratch {
    fn quantize(&mut self, block: &Block<'_>, job: &Job<'_>, book: &mut [f16], packed: &mut [u8]) {
        let Job {
            format,
            importance,
            seed,
            options,
        } = *job;
        let levels = format.levels();
        self.collect_points(block, format.k, importance);
        let mut rng = SplitMix64::new(seed, block.index as u64);
        self.solver.solve(levels, &mut rng, options, None);
        for (e, &c) in book.iter_mut().zip(&self.solver.centers) {
            *e = f16::from_f64(c);
        }
        // Midpoints of consecutive rounded centroids, exact in f64 (f16 + f16
        // is exact, and so is halving): v ≤ m_j ⇔ v is at least as close to
        // c_j as to c_{j+1}.
        self.mids.clear();
        self.mids.extend(
            book.windows(2)
                .map(|p| 0.5 * (p[0].to_f64() + p[1].to_f64())),
        );
        self.idx.resize(block.values.len(), 0);
        assign_sorted(&self.keys, block.values, &self.mids, &mut self.idx);
        pack_unchecked(&self.idx, format.bits, packed);
    }

    /// Sorts the block's values (with their positions, as one `u64` key
    /// each) and loads them with their importances into the solver's points.
    fn collect_points(&mut self, block: &Block<'_>, k: usize, importance: Option<&[f32]>) {
        self.keys.clear();
        self.keys.extend(
            block
                .values
                .iter()
                .enumerate()
                .map(|(t, &v)| (order_key(v) as u64) << 32 | t as u64),
        );
        self.keys.sort_unstable();
        let weight_of = |t: usize| importance.map_or(1.0, |imp| imp[(block.start + t) % k] as f64);
        let weightless =
            importance.is_some() && (0..block.values.len()).all(|t| weight_of(t) == 0.0);
        let points = &mut self.solver.points;
        points.clear();
        for &key in &self.keys {
            let t = (key & 0xFFFF_FFFF) as usize;
            let w = if weightless { 1.0 } else { weight_of(t) };
            points.push(block.values[t] as f64, w);
        }
        points.finish();
    }
}

/// A `u32` whose unsigned order is the numeric order of finite `f32`s.
#[inline]
fn order_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Sets `idx[t]` to the index of the nearest centroid of `values[t]`: the
/// number of midpoints `m_j < values[t]` (ties go to the lower centroid). The
/// values are visited in ascending order (`keys`, low 32 bits = position), so
/// one pointer walks the midpoints: O(B + 2^b).
fn assign_sorted(keys: &[u64], values: &[f32], mids: &[f64], idx: &mut [u8]) {
    let mut j = 0;
    for &key in keys {
        let t = (key & 0xFFFF_FFFF) as usize;
        let v = values[t] as f64;
        while j < mids.len() && mids[j] < v {
            j += 1;
        }
        idx[t] = j as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_is_monotone() {
        let v = [
            -65504.0f32,
            -1.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            0.5,
            3.0,
            65504.0,
        ];
        for w in v.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]), "{w:?}");
        }
    }

    #[test]
    fn assignment_is_the_nearest_centroid() {
        let book = [-2.0f64, -0.5, 0.0, 0.0, 0.25, 1.0, 3.0, 3.5];
        let mids: Vec<f64> = book.windows(2).map(|p| 0.5 * (p[0] + p[1])).collect();
        let values: Vec<f32> = (0..100)
            .map(|i| ((i * 37) % 100 - 50) as f32 / 10.0)
            .collect();
        let mut keys: Vec<u64> = values
            .iter()
            .enumerate()
            .map(|(t, &v)| (order_key(v) as u64) << 32 | t as u64)
            .collect();
        keys.sort_unstable();
        let mut idx = vec![0u8; values.len()];
        assign_sorted(&keys, &values, &mids, &mut idx);
        for (&v, &q) in values.iter().zip(&idx) {
            let v = v as f64;
            let best = book
                .iter()
                .map(|c| (v - c).abs())
                .fold(f64::INFINITY, f64::min);
            assert_eq!((v - book[q as usize]).abs(), best, "v={v}");
        }
    }
}
