//! `--calibrate OUT.safetensors`: activation statistics for the quantizer.
//!
//! The model runs over calibration text (prefill, in windows of `--ctx`
//! tokens, every row through the LM head). Each time a weight of the payload
//! is the right-hand matrix of a GEMM (`X·Wᵀ`, every linear layer in prefill),
//! the kernel adapter hands its activations `X [M, K]` here, and this module
//! accumulates per weight:
//!
//! - `NAME.sumsq` [K]: Σ over rows of x_k² (the diagonal of XᵀX, from which
//!   the quantizer takes each input channel's importance);
//! - `NAME.rows` [1]: the number of rows seen;
//! - `NAME.samples` [S, K]: S rows kept by seeded reservoir sampling, on
//!   which the quantizer measures each layer's output error;
//! - `NAME.xtx` [K, K]: XᵀX over every row (a BLIS GEMM per call), the
//!   Hessian of the layer's squared output error from which the quantizer's
//!   error-compensating rounding works.
//!
//! Weights are recognized by their offset in the weight section, which the
//! manifest's `weights_index` maps to names.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::atomic::Ordering,
};

use ditto_contracts::calibration::{self, Stat};

use crate::{payload::IndexEntry, Error};

/// Statistics of one weight's input activations.
struct Observed {
    name: String,
    k: usize,
    /// [k] Σ x²
    sumsq: Vec<f64>,
    rows: u64,
    /// [≤ capacity, k] sampled rows
    samples: Vec<f32>,
    /// [k, k] Σ over rows of x·xᵀ
    xtx: Vec<f32>,
}

pub struct Calibrator {
    /// Address range of the weight section.
    base: usize,
    len: usize,
    /// Offset in the weight section → tensor name and its [n, k].
    by_offset: HashMap<usize, (String, usize)>,
    observed: HashMap<usize, Observed>,
    capacity: usize,
    /// xorshift64* state for the reservoir.
    rng: u64,
}

impl Calibrator {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Starts gathering for the weights of `index` living in `weights`.
pub fn start(weights: &[u8], index: &BTreeMap<String, IndexEntry>, samples: usize, seed: u64) {
    let by_offset = index
        .iter()
        .filter(|(_, e)| e.shape.len() == 2)
        .map(|(name, e)| (e.offset as usize, (name.clone(), e.shape[1])))
        .collect();
    *crate::state::state()
        .calibration
        .lock()
        .expect("calibration lock") = Some(Calibrator {
        base: weights.as_ptr() as usize,
        len: weights.len(),
        by_offset,
        observed: HashMap::new(),
        capacity: samples,
        rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
    });
    crate::state::state()
        .calibrating
        .store(true, Ordering::Release);
}

/// Called by the GEMM adapter for `C = X·Wᵀ`: `w` is W's first element,
/// `x` holds `m` rows of `k` values with row stride `row_stride` (elements).
/// Does nothing unless calibrating, or when `w` is not a weight.
///
/// # Safety
/// `x` must point to `m` valid rows as described.
pub unsafe fn observe(w: *const f32, x: *const f32, m: usize, k: usize, row_stride: usize) {
    if !crate::state::state().calibrating.load(Ordering::Acquire) {
        return;
    }
    let mut guard = crate::state::state()
        .calibration
        .lock()
        .expect("calibration lock");
    let Some(cal) = guard.as_mut() else {
        return;
    };
    let address = w as usize;
    if address < cal.base || address >= cal.base + cal.len {
        return;
    }
    let offset = address - cal.base;
    let Some((name, width)) = cal.by_offset.get(&offset).cloned() else {
        return;
    };
    if width != k {
        return;
    }
    for r in 0..m {
        // SAFETY: the caller guarantees m rows of k values at this stride.
        let row = unsafe { std::slice::from_raw_parts(x.add(r * row_stride), k) };
        let seen = cal.observed.get(&offset).map_or(0, |o| o.rows);
        let slot = if (seen as usize) < cal.capacity {
            Some(seen as usize)
        } else {
            let j = (cal.next() % (seen + 1)) as usize;
            (j < cal.capacity).then_some(j)
        };
        let stats = cal.observed.entry(offset).or_insert_with(|| Observed {
            name: name.clone(),
            k,
            sumsq: vec![0.0; k],
            rows: 0,
            samples: Vec::new(),
            xtx: Vec::new(),
        });
        for (acc, &v) in stats.sumsq.iter_mut().zip(row) {
            *acc += f64::from(v) * f64::from(v);
        }
        stats.rows += 1;
        match slot {
            Some(s) if s * k == stats.samples.len() => stats.samples.extend_from_slice(row),
            Some(s) => stats.samples[s * k..(s + 1) * k].copy_from_slice(row),
            None => {}
        }
    }
    if m > 0 {
        let stats = cal
            .observed
            .get_mut(&offset)
            .expect("the rows above created the entry");
        if stats.xtx.is_empty() {
            stats.xtx = vec![0.0; k * k];
        }
        let stride = row_stride as isize;
        // SAFETY: Xᵀ [k, m] and X [m, k] are views of the caller's rows;
        // the [k, k] accumulator is ours and overlaps neither.
        unsafe {
            use crate::kernels::{Gemm, Strided2};
            let rows = |row_stride, col_stride| Strided2 {
                at: x,
                row_stride,
                col_stride,
            };
            crate::kernels::sgemm(
                crate::pool::pool(),
                &Gemm {
                    m: k,
                    n: k,
                    k: m,
                    alpha: 1.0,
                    a: rows(1, stride),
                    b: rows(stride, 1),
                    beta: 1.0,
                    c: Strided2 {
                        at: stats.xtx.as_mut_ptr(),
                        row_stride: k as isize,
                        col_stride: 1,
                    },
                },
            );
        }
    }
}

/// Stops gathering and writes what was seen to `path` (safetensors, f32).
pub fn finish(path: &Path) -> Result<usize, Error> {
    crate::state::state()
        .calibrating
        .store(false, Ordering::Release);
    let cal = crate::state::state()
        .calibration
        .lock()
        .expect("calibration lock")
        .take()
        .ok_or_else(|| Error::Setup("calibration was not started".into()))?;
    // The sampled rows and XᵀX (about 3 GB for a 0.5B model) are written
    // from where they are, not copied into byte vectors first.
    let mut views: Vec<(String, F32View)> = Vec::new();
    for stats in cal.observed.values() {
        let rows = stats.samples.len() / stats.k;
        let sumsq: Vec<f32> = stats.sumsq.iter().map(|&v| v as f32).collect();
        views.push((
            calibration::key(&stats.name, Stat::SumSq),
            F32View::new(vec![stats.k], sumsq.into()),
        ));
        views.push((
            calibration::key(&stats.name, Stat::Rows),
            F32View::new(vec![1], vec![stats.rows as f32].into()),
        ));
        views.push((
            calibration::key(&stats.name, Stat::Samples),
            F32View::new(vec![rows, stats.k], stats.samples.as_slice().into()),
        ));
        views.push((
            calibration::key(&stats.name, Stat::Xtx),
            F32View::new(vec![stats.k, stats.k], stats.xtx.as_slice().into()),
        ));
    }
    // Through a temporary file beside `path`, renamed onto it once complete.
    let staged = ditto_files::Staged::new(path)?;
    safetensors::serialize_to_file(
        views.iter().map(|(n, v)| (n.as_str(), v)),
        None,
        staged.path(),
    )
    .map_err(|e| {
        Error::io(
            format!("writing {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    })?;
    staged.commit()?;
    Ok(cal.observed.len())
}

/// An f32 tensor for safetensors, borrowed where it can be.
struct F32View<'a> {
    shape: Vec<usize>,
    values: Cow<'a, [f32]>,
}

impl<'a> F32View<'a> {
    fn new(shape: Vec<usize>, values: Cow<'a, [f32]>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self { shape, values }
    }
}

// safetensors stores little-endian values: the f32s' own bytes on the
// targets dittoc supports (x86-64, AArch64).
#[cfg(not(target_endian = "little"))]
compile_error!("calibration statistics are written as the f32s' in-memory bytes");

impl safetensors::View for &F32View<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let values: &[f32] = &self.values;
        // SAFETY: any f32 is 4 initialized bytes, u8 has no alignment, and
        // the byte slice covers exactly the f32 slice it borrows.
        Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        })
    }

    fn data_len(&self) -> usize {
        std::mem::size_of_val::<[f32]>(&self.values)
    }
}
