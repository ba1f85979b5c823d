//! Error measurement, in f64.
//!
//! * Relative output error over calibration activations `X` (`[T, K]`, one
//!   input vector per row):
//!   `‖W·Xᵀ − Ŵ·Xᵀ‖_F / ‖W·Xᵀ‖_F`, i.e. how much the layer's outputs on real
//!   inputs move, relative to their size.
//! * Importance-weighted relative weight error, for when no activations exist:
//!   `sqrt(Σ_{n,k} s_k (W − Ŵ)²_{nk} / Σ_{n,k} s_k W²_{nk})` with `s_k` the
//!   importance of input channel `k` (e.g. `E[x_k²]`). With `s_k = E[x_k²]` this
//!   is the output error under the approximation that input channels are
//!   uncorrelated (the diagonal of `XᵀX`).
//!
//! A zero denominator gives 0 when the numerator is zero too, else +∞.
//!
//! Sums run over fixed row chunks whose partial sums are added in order, so
//! the result does not depend on the thread count.

use rayon::prelude::*;

use crate::invalid::{check_len, QuantizeError, Result};
use crate::quantize::check_importance;
use crate::quantized::Quantized;

/// Rows per parallel task (the partial sums are combined in row order).
const ROWS_PER_TASK: usize = 32;

/// Calibration activations `X [T, K]`, held in f64.
#[derive(Clone, Debug)]
pub struct Activations {
    x: Vec<f64>,
    t: usize,
    k: usize,
}

impl Activations {
    /// `x` holds `t` rows of `k` inputs; every value must be finite.
    pub fn new(x: &[f32], t: usize, k: usize) -> Result<Self> {
        if t == 0 || k == 0 {
            return Err(QuantizeError::BadShape { n: t, k });
        }
        check_len("calibration activations (T·K)", t * k, x.len())?;
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(QuantizeError::NonFiniteActivation {
                index,
                sample: index / k,
                channel: index % k,
                value: x[index],
            });
        }
        Ok(Self {
            x: x.iter().map(|&v| v as f64).collect(),
            t,
            k,
        })
    }

    /// T, the number of samples.
    pub fn samples(&self) -> usize {
        self.t
    }

    /// K, the input dimension.
    pub fn channels(&self) -> usize {
        self.k
    }

    /// `‖(A − B)·Xᵀ‖_F²` for row-major `[n, K]` matrices given row by row:
    /// `rows(r, a_row, b_row)` fills row `r` of A and of B (f64, length K).
    ///
    /// Work is split into chunks of [`ROWS_PER_TASK`] rows; a chunk's rows of
    /// `A − B` stay in cache while every sample `x_t` is streamed past them
    /// once, so `X` is read once per chunk rather than once per row.
    fn sq_norm_rows<F>(&self, n: usize, rows: F) -> f64
    where
        F: Fn(usize, &mut [f64], &mut [f64]) + Sync,
    {
        let k = self.k;
        let partial: Vec<f64> = (0..n.div_ceil(ROWS_PER_TASK))
            .into_par_iter()
            .map_init(
                || (vec![0.0f64; ROWS_PER_TASK * k], vec![0.0f64; k]),
                |(diff, other), chunk| {
                    let first = chunk * ROWS_PER_TASK;
                    let count = ROWS_PER_TASK.min(n - first);
                    let diff = &mut diff[..count * k];
                    for (i, d) in diff.chunks_exact_mut(k).enumerate() {
                        rows(first + i, d, other);
                        for (d, &o) in d.iter_mut().zip(other.iter()) {
                            *d -= o;
                        }
                    }
                    let mut acc = 0.0;
                    for x in self.x.chunks_exact(k) {
                        for d in diff.chunks_exact(k) {
                            let y = dot(x, d);
                            acc += y * y;
                        }
                    }
                    acc
                },
            )
            .collect();
        partial.iter().sum()
    }

    /// `‖W·Xᵀ‖_F²` for `W [n, K]`.
    pub fn output_sq_norm(&self, w: &[f32], n: usize) -> Result<f64> {
        check_len("weights (N·K)", n * self.k, w.len())?;
        let k = self.k;
        Ok(self.sq_norm_rows(n, |r, a, b| {
            widen(&w[r * k..(r + 1) * k], a);
            b.fill(0.0);
        }))
    }

    /// `‖(W − Ŵ)·Xᵀ‖_F²` for `W, Ŵ [n, K]`.
    pub fn output_sq_diff(&self, w: &[f32], w_hat: &[f32], n: usize) -> Result<f64> {
        check_len("weights (N·K)", n * self.k, w.len())?;
        check_len("approximate weights (N·K)", n * self.k, w_hat.len())?;
        let k = self.k;
        Ok(self.sq_norm_rows(n, |r, a, b| {
            widen(&w[r * k..(r + 1) * k], a);
            widen(&w_hat[r * k..(r + 1) * k], b);
        }))
    }

    /// `‖(W − Ŵ)·Xᵀ‖_F²` with Ŵ the dequantized `q`, a row at a time (Ŵ is
    /// never materialized whole).
    pub fn output_sq_diff_quantized(&self, w: &[f32], q: &Quantized) -> Result<f64> {
        let f = q.format()?;
        check_len("input channels of the quantized tensor (K)", self.k, f.k)?;
        check_len("weights (N·K)", f.len(), w.len())?;
        let k = self.k;
        Ok(self.sq_norm_rows(f.n, |r, a, b| {
            widen(&w[r * k..(r + 1) * k], a);
            let mut row = vec![0.0f32; k];
            q.dequantize_row_unchecked(r, &mut row);
            widen(&row, b);
        }))
    }

    /// `‖W·Xᵀ − Ŵ·Xᵀ‖_F / ‖W·Xᵀ‖_F`.
    pub fn relative_output_error(&self, w: &[f32], w_hat: &[f32], n: usize) -> Result<f64> {
        Ok(ratio(
            self.output_sq_diff(w, w_hat, n)?,
            self.output_sq_norm(w, n)?,
        ))
    }
}

/// `‖W·Xᵀ − Ŵ·Xᵀ‖_F / ‖W·Xᵀ‖_F` for `W, Ŵ [n, k]` and activations `X [t, k]`.
pub fn relative_output_error(
    w: &[f32],
    w_hat: &[f32],
    n: usize,
    k: usize,
    x: &[f32],
    t: usize,
) -> Result<f64> {
    Activations::new(x, t, k)?.relative_output_error(w, w_hat, n)
}

/// `sqrt(Σ s_k (W − Ŵ)² / Σ s_k W²)` over `[n, k]`, with `s` = `importance`
/// (length k) or all ones.
pub fn weighted_weight_error(
    w: &[f32],
    w_hat: &[f32],
    n: usize,
    k: usize,
    importance: Option<&[f32]>,
) -> Result<f64> {
    check_len("weights (N·K)", n * k, w.len())?;
    check_len("approximate weights (N·K)", n * k, w_hat.len())?;
    weighted_sums(w, n, k, importance, |r, row| {
        row.copy_from_slice(&w_hat[r * k..(r + 1) * k])
    })
    .map(|(num, den)| ratio(num, den))
}

/// [`weighted_weight_error`] with Ŵ the dequantized `q`.
pub fn weighted_weight_error_quantized(
    w: &[f32],
    q: &Quantized,
    importance: Option<&[f32]>,
) -> Result<f64> {
    let f = q.format()?;
    check_len("weights (N·K)", f.len(), w.len())?;
    weighted_sums(w, f.n, f.k, importance, |r, row| {
        q.dequantize_row_unchecked(r, row)
    })
    .map(|(num, den)| ratio(num, den))
}

/// `(Σ s_k (W − Ŵ)², Σ s_k W²)` with Ŵ given row by row.
fn weighted_sums<F>(
    w: &[f32],
    n: usize,
    k: usize,
    importance: Option<&[f32]>,
    approx_row: F,
) -> Result<(f64, f64)>
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    if let Some(s) = importance {
        check_importance(s, k)?;
    }
    let weight = |c: usize| importance.map_or(1.0, |s| s[c] as f64);
    let partial: Vec<(f64, f64)> = (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map_init(
            || vec![0.0f32; k],
            |row, chunk| {
                let (mut num, mut den) = (0.0, 0.0);
                for r in chunk * ROWS_PER_TASK..((chunk + 1) * ROWS_PER_TASK).min(n) {
                    approx_row(r, row);
                    for (c, (&a, &b)) in w[r * k..(r + 1) * k].iter().zip(row.iter()).enumerate() {
                        let (a, b) = (a as f64, b as f64);
                        num += weight(c) * (a - b) * (a - b);
                        den += weight(c) * a * a;
                    }
                }
                (num, den)
            },
        )
        .collect();
    Ok(partial
        .iter()
        .fold((0.0, 0.0), |(n0, d0), (n1, d1)| (n0 + n1, d0 + d1)))
}

/// `sqrt(num / den)`, with 0/0 = 0 and x/0 = ∞.
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        (num / den).sqrt()
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Σ x_i y_i in f64 with four independent accumulators (fixed order).
#[inline]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for l in 0..4 {
            acc[l] += a[l] * b[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

fn widen(src: &[f32], dst: &mut [f64]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f64;
    }
}
