//! What the codebook kernel tests share (`ditto-kernels`' tests/codebook.rs,
//! and `ditto-rt`'s tests/codebook.rs, which includes this file by path):
//! a random-number generator, quantized matrices built from
//! docs/codebook-format.md alone (the test's own bit writer and reader),
//! shapes and blocks, f64 reference products and comparisons.
#![allow(dead_code)] // each test crate uses its own part

use ditto_kernels::codebook::{CbMatrix, Isa};
use half::f16;

/// A small LCG: the tests need no crate for random numbers.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn bits(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.bits() >> 7) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    pub fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.f32()).collect()
    }
    /// Small integers in [-r, r]: products and sums stay exact in f32.
    pub fn ints(&mut self, len: usize, r: usize) -> Vec<f32> {
        (0..len)
            .map(|_| self.below(2 * r + 1) as f32 - r as f32)
            .collect()
    }
}

/// A quantized [n, k] matrix as the format lays it out.
pub struct Quantized {
    pub n: usize,
    pub k: usize,
    pub bits: usize,
    pub block: usize,
    pub stream: Vec<u8>,
    pub codebooks: Vec<f16>,
}

/// The index stream of `indices`, packed as the quantizer packs it (the
/// codebook contract's packer; [`index`] reads it back bit by bit).
pub fn pack(indices: &[usize], bits: usize) -> Vec<u8> {
    let indices: Vec<u8> = indices.iter().map(|&q| q as u8).collect();
    ditto_contracts::codebook::pack(&indices, bits as u8).expect("valid indices and width")
}

/// Reads index i back, one bit at a time.
pub fn index(stream: &[u8], i: usize, bits: usize) -> usize {
    (0..bits)
        .map(|t| {
            let bit = i * bits + t;
            (((stream[bit / 8] >> (bit % 8)) & 1) as usize) << t
        })
        .sum()
}

impl Quantized {
    /// Random indices; centroids from `centroid`.
    pub fn new(
        rng: &mut Lcg,
        (n, k): (usize, usize),
        bits: usize,
        block: usize,
        mut centroid: impl FnMut(&mut Lcg) -> f32,
    ) -> Quantized {
        let indices: Vec<usize> = (0..n * k).map(|_| rng.below(1 << bits)).collect();
        let stream = pack(&indices, bits);
        for (i, &q) in indices.iter().enumerate() {
            assert_eq!(
                index(&stream, i, bits),
                q,
                "the test's own bit writer/reader"
            );
        }
        let blocks = (n * k).div_ceil(block);
        let codebooks = (0..blocks << bits)
            .map(|_| f16::from_f32(centroid(rng)))
            .collect();
        Quantized {
            n,
            k,
            bits,
            block,
            stream,
            codebooks,
        }
    }

    pub fn random(rng: &mut Lcg, shape: (usize, usize), bits: usize, block: usize) -> Quantized {
        Quantized::new(rng, shape, bits, block, |r| r.f32())
    }

    pub fn matrix(&self) -> CbMatrix<'_> {
        CbMatrix::new(
            self.n,
            self.k,
            self.bits,
            self.block,
            &self.stream,
            &self.codebooks,
        )
        .expect("a valid matrix")
    }

    /// Ŵ[n, k] = codebooks[i / B][q_i], i = n·K + k, read from the stream.
    pub fn dequantized(&self) -> Vec<f32> {
        (0..self.n * self.k)
            .map(|i| {
                let q = index(&self.stream, i, self.bits);
                self.codebooks[(i / self.block) * (1 << self.bits) + q].to_f32()
            })
            .collect()
    }
}

/// Column counts valid for `bits` (K·b a multiple of 8).
pub fn columns(bits: usize) -> Vec<usize> {
    [
        1, 2, 4, 6, 8, 12, 20, 24, 40, 56, 60, 72, 100, 136, 264, 300, 520, 1000,
    ]
    .into_iter()
    .filter(|k| (k * bits).is_multiple_of(8))
    .collect()
}

/// Random shapes and blocks for `bits`: N, K off the vector widths, B
/// below, at and above K, K not a multiple of B.
pub fn cases(rng: &mut Lcg, bits: usize, count: usize) -> Vec<((usize, usize), usize)> {
    let ks = columns(bits);
    let mut cases = vec![
        ((3, ks[ks.len() - 1]), 256),
        ((5, ks[1]), 8),
        ((17, 264), 1024),
    ];
    cases.retain(|((_, k), _)| (k * bits).is_multiple_of(8));
    for _ in 0..count {
        let n = rng.pick(&[1, 2, 3, 7, 16, 17, 31, 40]);
        let k = rng.pick(&ks);
        let block = rng.pick(&[8, 16, 24, 40, 64, 128, 256, 1024, 4096]);
        cases.push(((n, k), block));
    }
    cases
}

pub fn simd_isas() -> Vec<Isa> {
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|isa| !matches!(isa, Isa::Scalar { .. }))
        .collect();
    if isas.is_empty() {
        eprintln!("note: this CPU runs no SIMD codebook kernel; only the scalar ones are tested");
    }
    isas
}

/// (alpha, beta) variants; beta = 0 must ignore whatever y holds.
pub const SCALES: [(f32, f32); 4] = [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25), (1.5, -1.0)];

/// Equal as f32 bits (NaN equal to NaN).
pub fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: {g} ({:#x}) vs {w} ({:#x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Equal as values (0 == -0): for the exact integer test, whose reference
/// rounds no differently but may carry a sign on zero.
pub fn assert_equal(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g == w, "{what}: element {i}: {g} vs {w}");
    }
}

/// |got − want| within the f32 summation bound for `terms` products.
pub fn assert_close(got: f32, want: f64, magnitude: f64, terms: usize, what: &str) {
    let tol = 2.0 * (terms as f64 + 2.0) * f32::EPSILON as f64 * magnitude + 1e-30;
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

/// y := beta·y + alpha·Ŵ·x in f64, and the magnitude Σ|alpha·w·x| + |beta·y|.
pub fn gemv_f64(
    w: &[f32],
    (n, k): (usize, usize),
    x: &[f32],
    y: &[f32],
    (alpha, beta): (f32, f32),
) -> Vec<(f64, f64)> {
    (0..n)
        .map(|r| {
            let row = &w[r * k..(r + 1) * k];
            let dot: f64 = row.iter().zip(x).map(|(&w, &x)| w as f64 * x as f64).sum();
            let mag: f64 = row
                .iter()
                .zip(x)
                .map(|(&w, &x)| (w as f64 * x as f64).abs())
                .sum();
            let prior = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * y[r] as f64
            };
            (
                alpha as f64 * dot + prior,
                (alpha as f64).abs() * mag + prior.abs(),
            )
        })
        .collect()
}

/// The y a GEMV starts from: NaN where beta = 0 (it must be overwritten).
pub fn start_y(rng: &mut Lcg, n: usize, beta: f32) -> Vec<f32> {
    if beta == 0.0 {
        vec![f32::NAN; n]
    } else {
        rng.vec(n)
    }
}

/// (m, ldx pad, ldc pad) for the GEMM tests: m around the tile heights.
pub const GEMM_ROWS: [(usize, usize, usize); 5] =
    [(1, 0, 0), (2, 3, 0), (7, 0, 5), (13, 1, 2), (40, 0, 0)];
