//! Whole-model runs: measure every tensor's error curve, allocate bits, and
//! quantize every tensor at its chosen candidate, with optional progress bars.

use indicatif::{ProgressBar, ProgressStyle};

use crate::allocate::{
    allocate, Allocation, Candidate, Constraints, Curve, ErrorKind, Measured, Override,
};
use crate::error::{ratio, weighted_weight_error_quantized, Activations};
use crate::format::Format;
use crate::gptq::{round_compensated, Hessian};
use crate::invalid::{QuantizeError, Result};
use crate::kmeans::KmeansOptions;
use crate::quantize::quantize_with;
use crate::quantized::Quantized;
use crate::report::Report;
use crate::rng::mix64;

/// One weight matrix and its calibration data.
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    /// Name (also seeds the tensor's k-means).
    pub name: &'a str,
    /// Rows.
    pub n: usize,
    /// Columns (input dimension).
    pub k: usize,
    /// `[n, k]` row-major f32 weights.
    pub weights: &'a [f32],
    /// Per-input-channel importance (length k), e.g. `E[x_k²]`.
    pub importance: Option<&'a [f32]>,
    /// Calibration inputs `[T, k]` row-major (T = len / k). When given, the
    /// error measured is the relative output error; otherwise the
    /// importance-weighted weight error.
    pub activations: Option<&'a [f32]>,
    /// `XᵀX [k, k]` over all calibration inputs. When given, every weight is
    /// rounded onto its block's codebook with error compensation
    /// ([`crate::gptq`]) instead of to the nearest centroid.
    pub hessian: Option<&'a [f32]>,
}

impl Tensor<'_> {
    /// The seed of this tensor's k-means: `seed` mixed with a hash of the name,
    /// so a tensor's result does not depend on its position in the model.
    pub fn seed(&self, seed: u64) -> u64 {
        // FNV-1a of the name, then SplitMix's mixer.
        let h = self.name.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
        });
        mix64(seed ^ h)
    }

    /// The calibration inputs and `‖W·Xᵀ‖²`, when the tensor has inputs.
    fn probe(&self) -> Result<Option<(Activations, f64)>> {
        let Some(x) = self.activations else {
            return Ok(None);
        };
        let t = x.len() / self.k.max(1);
        let acts = Activations::new(x, t, self.k)?;
        let norm = acts.output_sq_norm(self.weights, self.n)?;
        Ok(Some((acts, norm)))
    }

    /// The error of `q`: relative output error on the probe's inputs, else
    /// the importance-weighted weight error.
    fn error(&self, probe: Option<&(Activations, f64)>, q: &Quantized) -> Result<f64> {
        match probe {
            Some((acts, norm)) => Ok(ratio(
                acts.output_sq_diff_quantized(self.weights, q)?,
                *norm,
            )),
            None => weighted_weight_error_quantized(self.weights, q, self.importance),
        }
    }

    /// `q` (rounded to nearest, with error `error`) re-rounded with error
    /// compensation when the tensor has a Hessian, if that lowers the error:
    /// the result and its error, never worse than `q`.
    ///
    /// Not at 8 bits: there nearest rounding is already within the noise of
    /// a few thousand calibration tokens (Qwen2.5-Coder-0.5B: perplexity
    /// 5.252 against 5.254 for f32), and compensating fits the calibration
    /// sample instead (it changed the greedy output of the tiny model of
    /// lit-tests/quantize/tiny-8bit.test, which nearest rounding keeps).
    fn compensate(&self, q: Quantized, error: f64) -> Result<(Quantized, f64, bool)> {
        let Some(xtx) = self.hessian.filter(|_| q.bits < 8) else {
            return Ok((q, error, false));
        };
        let hessian = Hessian::new(xtx, self.k)?;
        let compensated = round_compensated(self.weights, &q, &hessian)?;
        let e = self.error(self.probe()?.as_ref(), &compensated)?;
        Ok(if e < error {
            (compensated, e, true)
        } else {
            (q, error, false)
        })
    }
}

/// Options of a whole-model run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOptions {
    /// The candidates every tensor is measured at, unless an override
    /// matches it.
    pub candidates: Vec<Candidate>,
    /// Fixed choices by tensor name; the first match wins, and a pattern
    /// that matches no tensor is an error.
    pub overrides: Vec<Override>,
    /// The bounds of the allocation.
    pub constraints: Constraints,
    /// Base seed (mixed with each tensor's name).
    pub seed: u64,
    /// k-means knobs.
    pub kmeans: KmeansOptions,
    /// Show progress bars on stderr.
    pub progress: bool,
}

impl Default for ModelOptions {
    /// Ditto's block of 256 at every width, no bound set yet, no progress.
    fn default() -> Self {
        Self {
            candidates: Candidate::all_bits(256),
            overrides: Vec::new(),
            constraints: Constraints::default(),
            seed: 0,
            kmeans: KmeansOptions::default(),
            progress: false,
        }
    }
}

/// A quantized model: one [`Quantized`] per input tensor, and the report.
#[derive(Clone, Debug)]
pub struct QuantizedModel {
    /// In input order.
    pub tensors: Vec<Quantized>,
    /// The allocation behind them.
    pub report: Report,
}

/// Quantizes `tensor` at every candidate and measures each one's error and
/// storage. `progress`, if given, advances by N·K per candidate.
pub fn measure_curve(
    tensor: &Tensor<'_>,
    candidates: &[Candidate],
    seed: u64,
    kmeans: &KmeansOptions,
    progress: Option<&ProgressBar>,
) -> Result<Curve> {
    measure(tensor, candidates, seed, kmeans, progress, false).map(|(c, _)| c)
}

/// [`measure_curve`], also returning the quantized tensor of the last
/// candidate when `keep` is set.
fn measure(
    tensor: &Tensor<'_>,
    candidates: &[Candidate],
    seed: u64,
    kmeans: &KmeansOptions,
    progress: Option<&ProgressBar>,
    keep: bool,
) -> Result<(Curve, Option<Quantized>)> {
    if candidates.is_empty() {
        return Err(QuantizeError::NoCandidates {
            tensor: tensor.name.to_string(),
        });
    }
    let probe = tensor.probe()?;
    let mut points = Vec::with_capacity(candidates.len());
    let mut last = None;
    for c in candidates {
        let format = Format::new(tensor.n, tensor.k, c.bits, c.block)?;
        let q = quantize_with(
            tensor.weights,
            format,
            tensor.importance,
            tensor.seed(seed),
            kmeans,
        )?;
        let error = tensor.error(probe.as_ref(), &q)?;
        points.push(Measured {
            bits: c.bits,
            block: c.block,
            error,
            bytes: q.bytes() as u64,
        });
        if let Some(p) = progress {
            p.inc(format.len() as u64);
        }
        if keep {
            last = Some(q);
        }
    }
    let curve = Curve {
        name: tensor.name.to_string(),
        n: tensor.n,
        k: tensor.k,
        kind: if probe.is_some() {
            ErrorKind::Output
        } else {
            ErrorKind::WeightedWeight
        },
        points,
    };
    Ok((curve, last))
}

/// Measures every tensor's curve, allocates under `options.constraints`, and
/// quantizes every tensor at its choice (the same deterministic run as its
/// measurement, so the reported error is the error of the result). With a
/// single candidate the measured tensors are returned as they are.
pub fn quantize_model(tensors: &[Tensor<'_>], options: &ModelOptions) -> Result<QuantizedModel> {
    if let Some(unmatched) = options
        .overrides
        .iter()
        .find(|o| !tensors.iter().any(|t| o.matches(t.name)))
    {
        return Err(QuantizeError::UnmatchedOverride {
            pattern: unmatched.pattern.clone(),
        });
    }
    let candidates: Vec<Vec<Candidate>> = tensors
        .iter()
        .map(
            |t| match options.overrides.iter().find(|o| o.matches(t.name)) {
                Some(o) => vec![o.candidate],
                None => options.candidates.clone(),
            },
        )
        .collect();
    let measuring = bar(
        options.progress,
        tensors
            .iter()
            .zip(&candidates)
            .map(|(t, c)| (t.n * t.k * c.len()) as u64)
            .sum(),
        "measuring",
    );
    // A tensor with one candidate has nothing to choose: keep what was measured.
    let single = candidates.iter().all(|c| c.len() == 1);
    let mut curves = Vec::with_capacity(tensors.len());
    let mut kept = Vec::with_capacity(tensors.len());
    for (t, candidates) in tensors.iter().zip(&candidates) {
        measuring.set_message(t.name.to_string());
        let (curve, q) = measure(
            t,
            candidates,
            options.seed,
            &options.kmeans,
            Some(&measuring),
            candidates.len() == 1,
        )?;
        curves.push(curve);
        kept.push(q);
    }
    measuring.finish_and_clear();
    let allocation: Allocation = allocate(&curves, &options.constraints)?;

    // Each tensor at its choice (the measured one with a single candidate,
    // else the same deterministic run again), then re-rounded with error
    // compensation where that lowers its error: the choice was made on the
    // nearest-rounding errors, and the report gives the error of the result
    // (never above the one the allocation saw).
    let elements: u64 = tensors.iter().map(|t| (t.n * t.k) as u64).sum();
    let compensating = tensors.iter().any(|t| t.hessian.is_some());
    let packing = bar(
        options.progress && (compensating || !single),
        elements,
        if compensating {
            "rounding"
        } else {
            "quantizing"
        },
    );
    let mut out = Vec::with_capacity(tensors.len());
    let mut compensated = Vec::with_capacity(tensors.len());
    for ((t, kept), (curve, &choice)) in tensors
        .iter()
        .zip(kept)
        .zip(curves.iter_mut().zip(&allocation.choice))
    {
        packing.set_message(t.name.to_string());
        let point = &mut curve.points[choice];
        let format = Format::new(t.n, t.k, point.bits, point.block)?;
        let q = match kept {
            Some(q) => q,
            None => quantize_with(
                t.weights,
                format,
                t.importance,
                t.seed(options.seed),
                &options.kmeans,
            )?,
        };
        let (q, error, better) = t.compensate(q, point.error)?;
        point.error = error;
        out.push(q);
        compensated.push(better);
        packing.inc(format.len() as u64);
    }
    packing.finish_and_clear();
    let mut report = Report::new(&curves, &allocation, &options.constraints)?;
    for (entry, better) in report.tensors.iter_mut().zip(compensated) {
        entry.compensated = better;
    }
    Ok(QuantizedModel {
        tensors: out,
        report,
    })
}

/// A progress bar counting weights, or a hidden one.
fn bar(show: bool, len: u64, what: &'static str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}] {bar:40} {percent:>3}% eta {eta} {msg}",
    )
    .expect("the template is valid");
    ProgressBar::new(len).with_style(style).with_prefix(what)
}
