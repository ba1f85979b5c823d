//! Weighted k-means in one dimension: the centroids of one block's codebook.
//!
//! For values `x_i` with importances `w_i ≥ 0`, find `k` centroids minimising
//!
//! ```text
//! J(c) = Σ_i w_i · min_j (x_i − c_j)²
//! ```
//!
//! The values are sorted once and equal values merged ([`points`]), after
//! which clusters are intervals. [`Method::Exact`] finds the minimum by
//! dynamic programming over the U distinct values ([`optimal`],
//! O(k·U log U)); [`Method::Lloyd`] uses k-means++ seeding ([`seed`]) and
//! Lloyd iterations ([`lloyd`], O(k log U) per iteration), a local minimum;
//! [`Method::Auto`], the default, the first up to 64 centroids and the
//! second above. With `U ≤ k` the distinct values themselves are the
//! optimum (J = 0) and neither runs.

pub(crate) mod lloyd;
pub(crate) mod optimal;
pub(crate) mod points;
pub(crate) mod seed;

use serde::{Deserialize, Serialize};

use crate::invalid::{check_len, QuantizeError, Result};
use crate::rng::SplitMix64;
use points::Points;

/// How a block's codebook is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The optimum of the weighted objective, by dynamic programming
    /// ([`optimal`]): O(k · U log U) per block.
    Exact,
    /// k-means++ seeding and Lloyd iterations: a local optimum, in
    /// O(k log U) per iteration.
    Lloyd,
    /// [`Method::Exact`] for up to [`AUTO_EXACT_MAX_LEVELS`] centroids (2 to
    /// 6 bits), [`Method::Lloyd`] above (8 bits).
    Auto,
}

/// The most centroids [`Method::Auto`] solves exactly. At 8 bits (256
/// centroids in blocks of 8192) the exact programme costs about 150 times
/// Lloyd's time (`examples/timing.rs` on all-distinct weights of
/// Qwen2.5-Coder-0.5B's shapes: 8.4 against 0.06 µs per weight, about half
/// an hour against seconds for the whole model on two cores), and Lloyd's
/// 8-bit model already scores the f32 model's perplexity.
pub const AUTO_EXACT_MAX_LEVELS: usize = 64;

impl Method {
    /// Whether codebooks of `levels` centroids are solved exactly.
    pub fn is_exact(self, levels: usize) -> bool {
        match self {
            Method::Exact => true,
            Method::Lloyd => false,
            Method::Auto => levels <= AUTO_EXACT_MAX_LEVELS,
        }
    }
}

/// Knobs of the k-means solver. A field missing from a serialized form
/// takes its [`Default`] value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KmeansOptions {
    /// Cap on Lloyd update steps per block (iteration stops earlier once the
    /// assignment no longer changes).
    pub max_iter: usize,
    /// Exact, Lloyd, or by the number of centroids.
    pub method: Method,
}

impl Default for KmeansOptions {
    fn default() -> Self {
        Self {
            max_iter: 100,
            method: Method::Auto,
        }
    }
}

/// The result of [`weighted_kmeans_1d`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// `k` centroids in ascending order (unrounded). With fewer distinct
    /// values than `k`, the distinct values, the largest repeated to fill.
    pub centroids: Vec<f64>,
    /// Lloyd update steps performed (0 when `U ≤ k` or solved exactly).
    pub iterations: usize,
    /// Whether the assignment reached a fixed point within the cap (always,
    /// when solved exactly).
    pub converged: bool,
    /// The centroids after seeding and after every update step (first entry:
    /// the k-means++ seeds); solved exactly, the optimum alone. Empty when
    /// `U ≤ k`.
    pub trace: Vec<Vec<f64>>,
}

/// Weighted 1-D k-means of `values` with importances `weights` (same length,
/// finite, ≥ 0; if all are zero every value weighs 1) into `k ≥ 1` clusters:
/// exactly, or (as `options.method` says for `k`) seeded by k-means++ from
/// `seed`.
pub fn weighted_kmeans_1d(
    values: &[f32],
    weights: &[f32],
    k: usize,
    seed: u64,
    options: &KmeansOptions,
) -> Result<Fit> {
    check_len(
        "k-means weights (one per value)",
        values.len(),
        weights.len(),
    )?;
    if values.is_empty() || k == 0 {
        return Err(QuantizeError::BadShape { n: values.len(), k });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(QuantizeError::NonFiniteWeight {
            index: i,
            row: 0,
            col: i,
            value: values[i],
        });
    }
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(QuantizeError::BadImportance {
            channel: i,
            value: weights[i],
        });
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let uniform = weights.iter().all(|&w| w == 0.0);
    let mut solver = Solver::default();
    for &i in &order {
        let w = if uniform { 1.0 } else { weights[i] as f64 };
        solver.points.push(values[i] as f64, w);
    }
    solver.points.finish();
    let mut trace = Vec::new();
    let outcome = solver.solve(k, &mut SplitMix64::new(seed, 0), options, Some(&mut trace));
    Ok(Fit {
        centroids: solver.centers.clone(),
        iterations: outcome.iterations,
        converged: outcome.converged,
        trace,
    })
}

/// Reusable state of one k-means problem: the points and the scratch space of
/// seeding and iteration, kept across blocks to avoid allocation.
#[derive(Debug, Default)]
pub(crate) struct Solver {
    pub(crate) points: Points,
    pub(crate) centers: Vec<f64>,
    seeding: seed::SeedScratch,
    exact: optimal::Scratch,
    bounds: Vec<usize>,
    next: Vec<usize>,
}

impl Solver {
    /// Solves for `k` centroids of `self.points` (finished, positive total
    /// weight), leaving them sorted in `self.centers`.
    pub(crate) fn solve(
        &mut self,
        k: usize,
        rng: &mut SplitMix64,
        options: &KmeansOptions,
        trace: Option<&mut Vec<Vec<f64>>>,
    ) -> lloyd::Outcome {
        let u = self.points.len();
        if u <= k {
            self.centers.clear();
            self.centers.extend_from_slice(&self.points.xs);
            let last = self.points.xs[u - 1];
            self.centers.resize(k, last);
            return lloyd::Outcome {
                iterations: 0,
                converged: true,
            };
        }
        if options.method.is_exact(k) {
            optimal::solve(&self.points, k, &mut self.exact, &mut self.centers);
            if let Some(t) = trace {
                t.push(self.centers.clone());
            }
            return lloyd::Outcome {
                iterations: 0,
                converged: true,
            };
        }
        seed::plus_plus(&self.points, k, rng, &mut self.seeding, &mut self.centers);
        let mut trace = trace;
        if let Some(t) = trace.as_deref_mut() {
            t.push(self.centers.clone());
        }
        lloyd::lloyd(
            &self.points,
            &mut self.centers,
            &mut self.bounds,
            &mut self.next,
            options.max_iter,
            trace,
        )
    }
}
