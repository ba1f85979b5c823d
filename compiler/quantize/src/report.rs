//! What the quantizer did, per tensor and in total: serde-serializable and
//! rendered as Markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::allocate::{ActiveBound, Allocation, Constraints, Curve, ErrorKind};
use crate::format::Format;
use crate::invalid::{check_len, Result};

/// One tensor's chosen quantization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// `[N, K]`.
    pub shape: [usize; 2],
    /// Index width.
    pub bits: u8,
    /// Weights per codebook.
    pub block: usize,
    /// Measured relative error of the chosen quantization.
    pub error: f64,
    /// What `error` measures.
    pub error_kind: ErrorKind,
    /// Bytes of packed indices.
    pub index_bytes: u64,
    /// Bytes of f16 codebooks.
    pub codebook_bytes: u64,
    /// `index_bytes + codebook_bytes`.
    pub bytes: u64,
    /// `8·bytes / (N·K)`.
    pub bits_per_weight: f64,
    /// Whether `error ≤ ε`, when an error bound was given.
    pub within_max_error: Option<bool>,
    /// Whether the weights were rounded with error compensation (GPTQ-style)
    /// rather than to their nearest centroids.
    #[serde(default)]
    pub compensated: bool,
}

/// Sums over all tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Σ N·K.
    pub elements: u64,
    /// Σ bytes.
    pub bytes: u64,
    /// `8·Σ bytes / Σ N·K`.
    pub bits_per_weight: f64,
    /// Element-weighted mean error `Σ N·K·e / Σ N·K`.
    pub mean_error: f64,
    /// Largest per-tensor error.
    pub max_error: f64,
    /// Tensors over ε (when an error bound was given).
    pub over_max_error: usize,
}

/// The allocation's mode, bounds, per-tensor choices and totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The bounds asked for.
    pub constraints: Constraints,
    /// The bound that decided the allocation.
    pub active: ActiveBound,
    /// One entry per tensor, in input order.
    pub tensors: Vec<TensorReport>,
    /// Sums.
    pub totals: Totals,
}

impl Report {
    /// The report of `allocation` over `curves` under `constraints`.
    pub fn new(
        curves: &[Curve],
        allocation: &Allocation,
        constraints: &Constraints,
    ) -> Result<Self> {
        check_len(
            "allocation choices (one per tensor)",
            curves.len(),
            allocation.choice.len(),
        )?;
        let mut tensors = Vec::with_capacity(curves.len());
        for (c, &i) in curves.iter().zip(&allocation.choice) {
            let p = &c.points[i];
            let f = Format::new(c.n, c.k, p.bits, p.block)?;
            let elements = c.elements();
            tensors.push(TensorReport {
                name: c.name.clone(),
                shape: [c.n, c.k],
                bits: p.bits,
                block: p.block,
                error: p.error,
                error_kind: c.kind,
                index_bytes: f.index_bytes() as u64,
                codebook_bytes: f.codebook_bytes() as u64,
                bytes: p.bytes,
                bits_per_weight: 8.0 * p.bytes as f64 / elements as f64,
                within_max_error: constraints.max_error.map(|eps| p.error <= eps),
                compensated: false,
            });
        }
        let elements: u64 = curves.iter().map(Curve::elements).sum();
        let bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
        let weighted: f64 = tensors
            .iter()
            .map(|t| t.error * (t.shape[0] * t.shape[1]) as f64)
            .sum();
        let totals = Totals {
            elements,
            bytes,
            bits_per_weight: 8.0 * bytes as f64 / elements.max(1) as f64,
            mean_error: weighted / elements.max(1) as f64,
            max_error: tensors.iter().map(|t| t.error).fold(0.0, f64::max),
            over_max_error: tensors
                .iter()
                .filter(|t| t.within_max_error == Some(false))
                .count(),
        };
        Ok(Self {
            constraints: *constraints,
            active: allocation.active,
            tensors,
            totals,
        })
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The report as a Markdown section: bounds, totals, one table row per
    /// tensor.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let c = &self.constraints;
        let bound = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v}"));
        let active = match self.active {
            ActiveBound::MaxError => "max error ε (every tensor as small as ε allows)",
            ActiveBound::BitsAvg => "bits budget B̄ (more bits would lower the error)",
            ActiveBound::None => "none (every tensor at its most accurate candidate)",
        };
        let t = &self.totals;
        let _ = writeln!(s, "## Quantization report\n");
        let _ = writeln!(s, "- max error ε: {}", bound(c.max_error));
        let _ = writeln!(s, "- bits budget B̄: {}", bound(c.bits_avg));
        let _ = writeln!(s, "- active bound: {active}");
        let _ = writeln!(
            s,
            "- total: {} weights, {} bytes, {:.4} bits/weight",
            t.elements, t.bytes, t.bits_per_weight
        );
        let _ = writeln!(
            s,
            "- error: element-weighted mean {:.3e}, max {:.3e}{}\n",
            t.mean_error,
            t.max_error,
            if c.max_error.is_some() {
                format!(", {} tensor(s) over ε", t.over_max_error)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "| tensor | shape | bits | block | rounding | error | kind | bytes | bits/weight | ≤ ε |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---|---:|---|---:|---:|---|");
        for r in &self.tensors {
            let kind = match r.error_kind {
                ErrorKind::Output => "output",
                ErrorKind::WeightedWeight => "weight",
            };
            let ok = match r.within_max_error {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            let _ = writeln!(
                s,
                "| {} | {}×{} | {} | {} | {} | {:.3e} | {} | {} | {:.4} | {} |",
                r.name.replace('|', "\\|"),
                r.shape[0],
                r.shape[1],
                r.bits,
                r.block,
                if r.compensated {
                    "compensated"
                } else {
                    "nearest"
                },
                r.error,
                kind,
                r.bytes,
                r.bits_per_weight,
                ok
            );
        }
        s
    }
}
