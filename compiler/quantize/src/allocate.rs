//! Bit allocation: which candidate (bits, block) each tensor gets.
//!
//! Input: per tensor, its measured error at every candidate ([`Curve`]).
//! Two bounds, either or both:
//!
//! * **max error ε** — every tensor takes its smallest candidate (by bytes,
//!   then error) whose measured error is ≤ ε. A tensor that no candidate
//!   brings under ε takes its most accurate one and is reported as missing
//!   the bound.
//! * **bits budget B̄** — average bits per weight, `8·Σ bytes / Σ N·K` over all
//!   tensors, codebooks included, must be ≤ B̄; subject to that, minimise
//!   `Σ_t N_t·K_t·e_t²`, each tensor's squared relative error counted once
//!   per weight it has. (Counting every tensor once whatever its size, as
//!   before session 8, let the 136 M-weight tied embedding of
//!   Qwen2.5-Coder-0.5B pay for the budget at 2 bits: perplexity 5.751 at
//!   `--bits-avg 4.5`, against 5.497 with this weighting and 5.448 with
//!   `--bits 4` at the same size, docs/quantization.md.)
//!   Solved greedily on marginal returns: start every tensor at its cheapest
//!   candidate, then repeatedly apply the upgrade (any tensor, to any larger
//!   candidate with a smaller error) with the largest reduction per extra
//!   stored bit, `N·K·(e_now² − e_new²) / (8 (bytes_new − bytes_now))`, among
//!   those that still fit the budget, until none fits. Taking the steepest
//!   jump follows each tensor's lower convex hull of (bytes, e²), the classic
//!   Lagrangian greedy; it is optimal at the budgets it passes through
//!   exactly, and close (not guaranteed optimal) in between.
//! * **both** — the ε allocation if it fits the budget (ε is the active
//!   bound); otherwise the budget allocation (the budget is active, and
//!   tensors over ε are reported).
//! * **neither** — an unlimited budget: every tensor takes its most accurate
//!   candidate (with a single candidate per tensor, that one).

use serde::{Deserialize, Serialize};

use crate::invalid::{QuantizeError, Result};

/// One candidate quantization of a tensor: index width and block length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Candidate {
    /// Index width b.
    pub bits: u8,
    /// Weights per codebook B.
    pub block: usize,
}

impl Candidate {
    /// Every width the format allows, b ∈ {2, 3, 4, 5, 6, 8}, at one block
    /// length.
    pub fn all_bits(block: usize) -> Vec<Candidate> {
        crate::SUPPORTED_BITS
            .iter()
            .map(|&bits| Candidate { bits, block })
            .collect()
    }

    /// Every width at two block lengths each, chosen so that the codebooks
    /// cost ½ and ¼ bit per weight whatever the width: B = 32·2^b and
    /// 64·2^b (b = 2: 128 and 256 … b = 8: 8192 and 16384). One block length
    /// for all widths would make wide codebooks dear (8 bits at B = 256
    /// stores 24 bits per weight) or narrow ones coarse.
    pub fn per_width() -> Vec<Candidate> {
        crate::SUPPORTED_BITS
            .iter()
            .flat_map(|&bits| {
                [32usize, 64].map(|per_entry| Candidate {
                    bits,
                    block: per_entry << bits,
                })
            })
            .collect()
    }
}

/// A fixed choice for the tensors whose names match a pattern
/// (`dittoc quantize --tensor-bits PATTERN=BITS[:BLOCK]`): they are measured
/// at `candidate` only, so the allocation cannot move them, and their bytes
/// still count against a budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// A tensor name in which `*` stands for any run of characters
    /// (`blk.*.attn_v.weight`); everything else matches itself.
    pub pattern: String,
    /// The candidate the matching tensors take.
    pub candidate: Candidate,
}

impl Override {
    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.pattern.as_bytes(), name.as_bytes())
    }
}

/// `*`-only glob matching: the classic backtracking over the last star,
/// linear in practice for tensor names.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Which error a curve measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `‖W·Xᵀ − Ŵ·Xᵀ‖_F / ‖W·Xᵀ‖_F` over calibration activations.
    Output,
    /// Importance-weighted relative weight error (no activations available).
    WeightedWeight,
}

/// A candidate with its measured error and storage.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Index width.
    pub bits: u8,
    /// Weights per codebook.
    pub block: usize,
    /// Measured relative error.
    pub error: f64,
    /// Storage: packed indices plus codebooks.
    pub bytes: u64,
}

/// One tensor's error as a function of its quantization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Tensor name.
    pub name: String,
    /// Rows.
    pub n: usize,
    /// Columns.
    pub k: usize,
    /// What `error` measures.
    pub kind: ErrorKind,
    /// The candidates, in any order.
    pub points: Vec<Measured>,
}

impl Curve {
    /// N·K.
    pub fn elements(&self) -> u64 {
        (self.n as u64) * (self.k as u64)
    }
}

/// The bounds of an allocation; with neither set, every tensor takes its most
/// accurate candidate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// ε: the largest acceptable per-tensor relative error.
    pub max_error: Option<f64>,
    /// B̄: the largest acceptable average bits per weight (codebooks included).
    pub bits_avg: Option<f64>,
}

/// The bound that decided the allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveBound {
    /// The error bound ε: every tensor is as small as ε allows.
    MaxError,
    /// The size budget B̄: more bits would have lowered the error.
    BitsAvg,
    /// Neither: every tensor sits at its most accurate candidate (no bound
    /// given, or a budget that all of them fit in).
    None,
}

/// The chosen candidate of every tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// `choice[t]` indexes `curves[t].points`.
    pub choice: Vec<usize>,
    /// The bound that decided it.
    pub active: ActiveBound,
}

impl Allocation {
    /// Average bits per weight of the chosen candidates: `8·Σ bytes / Σ N·K`.
    pub fn bits_per_weight(&self, curves: &[Curve]) -> f64 {
        let (bytes, elems) = totals(curves, &self.choice);
        8.0 * bytes as f64 / elems as f64
    }
}

/// Chooses a candidate per tensor under `constraints` (see the module docs).
pub fn allocate(curves: &[Curve], constraints: &Constraints) -> Result<Allocation> {
    check(curves, constraints)?;
    let by_error = constraints
        .max_error
        .map(|eps| smallest_within(curves, eps));
    match (by_error, constraints.bits_avg) {
        (Some(choice), None) => Ok(Allocation {
            choice,
            active: ActiveBound::MaxError,
        }),
        (Some(choice), Some(budget)) if fits(curves, &choice, budget) => Ok(Allocation {
            choice,
            active: ActiveBound::MaxError,
        }),
        (_, Some(budget)) => within_budget(curves, budget),
        (None, None) => Ok(Allocation {
            choice: curves.iter().map(most_accurate).collect(),
            active: ActiveBound::None,
        }),
    }
}

fn check(curves: &[Curve], constraints: &Constraints) -> Result<()> {
    for (name, v) in [
        ("max_error", constraints.max_error),
        ("bits_avg", constraints.bits_avg),
    ] {
        if let Some(value) = v {
            if !(value.is_finite() && value > 0.0) {
                return Err(QuantizeError::BadBound { name, value });
            }
        }
    }
    for c in curves {
        if c.points.is_empty() || c.elements() == 0 {
            return Err(QuantizeError::NoCandidates {
                tensor: c.name.clone(),
            });
        }
        if let Some(p) = c.points.iter().find(|p| p.error.is_nan() || p.error < 0.0) {
            return Err(QuantizeError::BadCandidateError {
                tensor: c.name.clone(),
                bits: p.bits,
                block: p.block,
                error: p.error,
            });
        }
    }
    Ok(())
}

/// Per tensor, the cheapest candidate with error ≤ ε, else the most accurate.
fn smallest_within(curves: &[Curve], eps: f64) -> Vec<usize> {
    curves
        .iter()
        .map(|c| {
            let ok = (0..c.points.len()).filter(|&i| c.points[i].error <= eps);
            ok.min_by(|&a, &b| cheaper(&c.points[a], &c.points[b]))
                .unwrap_or_else(|| most_accurate(c))
        })
        .collect()
}

/// Ordering by bytes, then error.
fn cheaper(a: &Measured, b: &Measured) -> std::cmp::Ordering {
    a.bytes.cmp(&b.bytes).then(a.error.total_cmp(&b.error))
}

fn most_accurate(c: &Curve) -> usize {
    (0..c.points.len())
        .min_by(|&a, &b| {
            let (pa, pb) = (&c.points[a], &c.points[b]);
            pa.error.total_cmp(&pb.error).then(pa.bytes.cmp(&pb.bytes))
        })
        .expect("curves are checked to be non-empty")
}

fn totals(curves: &[Curve], choice: &[usize]) -> (u64, u64) {
    curves.iter().zip(choice).fold((0, 0), |(b, e), (c, &i)| {
        (b + c.points[i].bytes, e + c.elements())
    })
}

/// Whether `8·Σ bytes ≤ B̄·Σ N·K`.
fn fits(curves: &[Curve], choice: &[usize], budget: f64) -> bool {
    let (bytes, elems) = totals(curves, choice);
    8.0 * bytes as f64 <= budget * elems as f64
}

/// The greedy budget allocation of the module docs.
fn within_budget(curves: &[Curve], budget: f64) -> Result<Allocation> {
    let mut choice: Vec<usize> = curves
        .iter()
        .map(|c| {
            (0..c.points.len())
                .min_by(|&a, &b| cheaper(&c.points[a], &c.points[b]))
                .expect("curves are checked to be non-empty")
        })
        .collect();
    let (mut bytes, elems) = totals(curves, &choice);
    let allowed_bits = budget * elems as f64;
    if 8.0 * bytes as f64 > allowed_bits {
        return Err(QuantizeError::InfeasibleBudget {
            bits_avg: budget,
            minimum: 8.0 * bytes as f64 / elems as f64,
        });
    }
    loop {
        let mut best: Option<(usize, usize, f64)> = None;
        for (t, c) in curves.iter().enumerate() {
            let now = &c.points[choice[t]];
            for (i, p) in c.points.iter().enumerate() {
                if p.bytes <= now.bytes || p.error >= now.error {
                    continue;
                }
                if 8.0 * (bytes - now.bytes + p.bytes) as f64 > allowed_bits {
                    continue;
                }
                let gain = c.elements() as f64 * (now.error.powi(2) - p.error.powi(2))
                    / (8.0 * (p.bytes - now.bytes) as f64);
                if best.is_none_or(|b| gain > b.2) {
                    best = Some((t, i, gain));
                }
            }
        }
        let Some((t, i, _)) = best else { break };
        bytes = bytes - curves[t].points[choice[t]].bytes + curves[t].points[i].bytes;
        choice[t] = i;
    }
    let at_best = curves
        .iter()
        .zip(&choice)
        .all(|(c, &i)| c.points[i].error <= c.points[most_accurate(c)].error);
    Ok(Allocation {
        choice,
        active: if at_best {
            ActiveBound::None
        } else {
            ActiveBound::BitsAvg
        },
    })
}
