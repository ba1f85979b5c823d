//! The codebook kernels (runtime/src/codebook) against independent
//! references.
//!
//! * The reference Ŵ is built here from docs/codebook-format.md alone: the
//!   test draws indices and codebooks, packs the indices with its own bit
//!   writer, and reads them back with its own bit reader.
//! * Every SIMD kernel against its scalar twin, **bit for bit**: the twin
//!   sums in the SIMD kernel's order (GEMV: `Isa::twin`, the same partial
//!   sums and reduction; GEMM: one fused multiply-add chain per output in k
//!   order, whatever the tile; dequantize: exact).
//! * The scalar kernels against dequantize-then-f64 products, within the
//!   f32 summation bound; and, exactly, on integer-valued data whose every
//!   partial sum is exact in f32 (so that one wrong lookup cannot hide in a
//!   tolerance).
//! * cb_gemm against m cb_gemv calls (within the bound: different orders).
//! * The C-interface adapters with hand-built descriptors (strided x and y,
//!   padded and column-strided matrices), and their abort on bad sizes.

use ditto_rt::codebook::{
    abi, cb_dequantize_with, cb_gemm_with, cb_gemv_with, CbMatrix, Isa, SUPPORTED_BITS,
};
use ditto_rt::kernels::Pool;
use ditto_rt::model::MemRefDescriptor;
use half::f16;

/// A small LCG: the tests need no crate for random numbers.
struct Lcg(u64);

impl Lcg {
    fn bits(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.bits() >> 7) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.f32()).collect()
    }
    /// Small integers in [-r, r]: products and sums stay exact in f32.
    fn ints(&mut self, len: usize, r: usize) -> Vec<f32> {
        (0..len)
            .map(|_| self.below(2 * r + 1) as f32 - r as f32)
            .collect()
    }
}

/// A quantized [n, k] matrix as the format lays it out.
struct Quantized {
    n: usize,
    k: usize,
    bits: usize,
    block: usize,
    stream: Vec<u8>,
    codebooks: Vec<f16>,
}

/// Writes index i at bits [i·b, (i+1)·b), bit t of the stream being bit
/// t mod 8 of byte t / 8.
fn pack(indices: &[usize], bits: usize) -> Vec<u8> {
    let mut stream = vec![0u8; (indices.len() * bits).div_ceil(8)];
    for (i, &q) in indices.iter().enumerate() {
        for t in 0..bits {
            let bit = i * bits + t;
            stream[bit / 8] |= (((q >> t) & 1) as u8) << (bit % 8);
        }
    }
    stream
}

/// Reads index i back, one bit at a time.
fn index(stream: &[u8], i: usize, bits: usize) -> usize {
    (0..bits)
        .map(|t| {
            let bit = i * bits + t;
            (((stream[bit / 8] >> (bit % 8)) & 1) as usize) << t
        })
        .sum()
}

impl Quantized {
    /// Random indices; centroids from `centroid`.
    fn new(
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

    fn random(rng: &mut Lcg, shape: (usize, usize), bits: usize, block: usize) -> Quantized {
        Quantized::new(rng, shape, bits, block, |r| r.f32())
    }

    fn matrix(&self) -> CbMatrix<'_> {
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
    fn dequantized(&self) -> Vec<f32> {
        (0..self.n * self.k)
            .map(|i| {
                let q = index(&self.stream, i, self.bits);
                self.codebooks[(i / self.block) * (1 << self.bits) + q].to_f32()
            })
            .collect()
    }
}

/// Column counts valid for `bits` (K·b a multiple of 8).
fn columns(bits: usize) -> Vec<usize> {
    [
        1, 2, 4, 6, 8, 12, 20, 24, 40, 56, 60, 72, 100, 136, 264, 300, 520, 1000,
    ]
    .into_iter()
    .filter(|k| (k * bits).is_multiple_of(8))
    .collect()
}

/// Random shapes and blocks for `bits`: N, K off the vector widths, B
/// below, at and above K, K not a multiple of B.
fn cases(rng: &mut Lcg, bits: usize, count: usize) -> Vec<((usize, usize), usize)> {
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

fn simd_isas() -> Vec<Isa> {
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|isa| !matches!(isa, Isa::Scalar { .. }))
        .collect();
    if isas.is_empty() {
        eprintln!("note: this CPU runs no SIMD codebook kernel; only the scalar ones are tested");
    }
    isas
}

fn pools() -> [Pool; 2] {
    [Pool::new(1).unwrap(), Pool::new(3).unwrap()]
}

/// (alpha, beta) variants; beta = 0 must ignore whatever y holds.
const SCALES: [(f32, f32); 4] = [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25), (1.5, -1.0)];

/// Equal as f32 bits (NaN equal to NaN).
fn assert_same(got: &[f32], want: &[f32], what: &str) {
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
fn assert_equal(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g == w, "{what}: element {i}: {g} vs {w}");
    }
}

/// |got − want| within the f32 summation bound for `terms` products.
fn assert_close(got: f32, want: f64, magnitude: f64, terms: usize, what: &str) {
    let tol = 2.0 * (terms as f64 + 2.0) * f32::EPSILON as f64 * magnitude + 1e-30;
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

/// y := beta·y + alpha·Ŵ·x in f64, and the magnitude Σ|alpha·w·x| + |beta·y|.
fn gemv_f64(
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
fn start_y(rng: &mut Lcg, n: usize, beta: f32) -> Vec<f32> {
    if beta == 0.0 {
        vec![f32::NAN; n]
    } else {
        rng.vec(n)
    }
}

#[test]
fn simd_gemv_matches_its_scalar_twin_bit_for_bit() {
    let mut rng = Lcg(1);
    for isa in simd_isas() {
        let twin = isa.twin();
        for pool in &pools() {
            for bits in SUPPORTED_BITS {
                for ((n, k), block) in cases(&mut rng, bits, 14) {
                    let q = Quantized::random(&mut rng, (n, k), bits, block);
                    let w = q.matrix();
                    let x = rng.vec(k);
                    for (alpha, beta) in SCALES {
                        let y0 = start_y(&mut rng, n, beta);
                        let (mut got, mut want) = (y0.clone(), y0);
                        cb_gemv_with(isa, pool, &w, &x, &mut got, alpha, beta);
                        cb_gemv_with(twin, pool, &w, &x, &mut want, alpha, beta);
                        let what = format!("{isa:?} gemv b={bits} [{n}, {k}] B={block} alpha={alpha} beta={beta} threads={}", pool.threads());
                        assert_same(&got, &want, &what);
                        assert!(got.iter().all(|v| v.is_finite()), "{what}: not finite");
                    }
                }
            }
        }
    }
}

#[test]
fn simd_gemv_matches_its_twin_on_decode_shapes() {
    // Whole 64-weight groups, direct reads up to the end of the stream.
    let mut rng = Lcg(2);
    let pool = Pool::new(2).unwrap();
    for isa in simd_isas() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in [((64, 896), 256), ((40, 512), 64), ((9, 2048), 4096)] {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let x = rng.vec(k);
                let (mut got, mut want) = (vec![0.0; n], vec![0.0; n]);
                cb_gemv_with(isa, &pool, &q.matrix(), &x, &mut got, 1.0, 0.0);
                cb_gemv_with(isa.twin(), &pool, &q.matrix(), &x, &mut want, 1.0, 0.0);
                assert_same(
                    &got,
                    &want,
                    &format!("{isa:?} b={bits} [{n}, {k}] B={block}"),
                );
            }
        }
    }
}

#[test]
fn scalar_gemv_matches_dequantize_then_f64() {
    let mut rng = Lcg(3);
    let pool = Pool::new(1).unwrap();
    for lanes in [8, 16, 32, 64] {
        let isa = Isa::Scalar { lanes };
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 6) {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let dense = q.dequantized();
                let x = rng.vec(k);
                for scale in SCALES {
                    let y0 = start_y(&mut rng, n, scale.1);
                    let mut y = y0.clone();
                    cb_gemv_with(isa, &pool, &q.matrix(), &x, &mut y, scale.0, scale.1);
                    for (r, (want, mag)) in gemv_f64(&dense, (n, k), &x, &y0, scale)
                        .into_iter()
                        .enumerate()
                    {
                        let what = format!(
                            "scalar/{lanes} b={bits} [{n}, {k}] B={block} {scale:?} row {r}"
                        );
                        assert_close(y[r], want, mag, k, &what);
                    }
                }
            }
        }
    }
}

/// Integer codebooks and inputs: every partial sum is exact in f32, so all
/// kernels must reproduce the reference exactly.
#[test]
fn every_kernel_is_exact_on_integer_data() {
    let mut rng = Lcg(4);
    let pools = pools();
    for isa in Isa::available() {
        for bits in SUPPORTED_BITS {
            for ((n, k), block) in cases(&mut rng, bits, 6) {
                let q = Quantized::new(&mut rng, (n, k), bits, block, |r| r.ints(1, 8)[0]);
                let dense = q.dequantized();
                let x = rng.ints(k, 4);
                let want: Vec<f32> = gemv_f64(&dense, (n, k), &x, &[], (1.0, 0.0))
                    .into_iter()
                    .map(|(v, _)| v as f32)
                    .collect();
                let what = format!("{isa:?} b={bits} [{n}, {k}] B={block}");
                for pool in &pools {
                    let mut y = vec![f32::NAN; n];
                    cb_gemv_with(isa, pool, &q.matrix(), &x, &mut y, 1.0, 0.0);
                    assert_equal(&y, &want, &format!("gemv {what}"));

                    let mut out = vec![f32::NAN; n * k];
                    cb_dequantize_with(isa, pool, &q.matrix(), &mut out);
                    assert_equal(&out, &dense, &format!("dequantize {what}"));

                    // GEMM with X = [x; 2x; -x], C = X·Ŵᵀ.
                    let m = 3;
                    let xs: Vec<f32> = [1.0, 2.0, -1.0]
                        .iter()
                        .flat_map(|s| x.iter().map(move |v| s * v))
                        .collect();
                    let mut c = vec![f32::NAN; m * n];
                    cb_gemm_with(isa, pool, m, &q.matrix(), &xs, k, &mut c, n, 1.0, 0.0);
                    let want_c: Vec<f32> = [1.0, 2.0, -1.0]
                        .iter()
                        .flat_map(|s| want.iter().map(move |v| s * v))
                        .collect();
                    assert_equal(&c, &want_c, &format!("gemm {what}"));
                }
            }
        }
    }
}

#[test]
fn simd_dequantize_matches_scalar_and_the_reference() {
    let mut rng = Lcg(5);
    for isa in simd_isas() {
        for pool in &pools() {
            for bits in SUPPORTED_BITS {
                for ((n, k), block) in cases(&mut rng, bits, 10) {
                    let q = Quantized::random(&mut rng, (n, k), bits, block);
                    let (mut got, mut scalar) = (vec![0.0; n * k], vec![0.0; n * k]);
                    cb_dequantize_with(isa, pool, &q.matrix(), &mut got);
                    cb_dequantize_with(Isa::SCALAR, pool, &q.matrix(), &mut scalar);
                    let what = format!("{isa:?} dequantize b={bits} [{n}, {k}] B={block}");
                    assert_same(&got, &scalar, &what);
                    assert_same(&got, &q.dequantized(), &what);
                }
            }
        }
    }
}

/// (m, ldx pad, ldc pad) for the GEMM tests: m around the tile heights.
const GEMM_ROWS: [(usize, usize, usize); 5] =
    [(1, 0, 0), (2, 3, 0), (7, 0, 5), (13, 1, 2), (40, 0, 0)];

#[test]
fn simd_gemm_matches_its_scalar_twin_bit_for_bit() {
    let mut rng = Lcg(6);
    for isa in simd_isas() {
        for pool in &pools() {
            for bits in SUPPORTED_BITS {
                for ((n, k), block) in cases(&mut rng, bits, 5) {
                    let q = Quantized::random(&mut rng, (n, k), bits, block);
                    let (m, xpad, cpad) = rng.pick(&GEMM_ROWS);
                    let (ldx, ldc) = (k + xpad, n + cpad);
                    let x = rng.vec((m - 1) * ldx + k);
                    let (alpha, beta) = rng.pick(&SCALES);
                    let c0 = if beta == 0.0 {
                        vec![f32::NAN; (m - 1) * ldc + n]
                    } else {
                        rng.vec((m - 1) * ldc + n)
                    };
                    let (mut got, mut want) = (c0.clone(), c0);
                    cb_gemm_with(
                        isa,
                        pool,
                        m,
                        &q.matrix(),
                        &x,
                        ldx,
                        &mut got,
                        ldc,
                        alpha,
                        beta,
                    );
                    cb_gemm_with(
                        Isa::SCALAR,
                        pool,
                        m,
                        &q.matrix(),
                        &x,
                        ldx,
                        &mut want,
                        ldc,
                        alpha,
                        beta,
                    );
                    let what = format!(
                        "{isa:?} gemm b={bits} m={m} [{n}, {k}] B={block} ld {ldx}/{ldc} {alpha}/{beta} threads={}",
                        pool.threads()
                    );
                    assert_same(&got, &want, &what);
                }
            }
        }
    }
}

#[test]
fn gemm_matches_gemv_per_row_and_the_f64_reference() {
    let mut rng = Lcg(7);
    for isa in Isa::available() {
        for pool in &pools() {
            for bits in SUPPORTED_BITS {
                for ((n, k), block) in cases(&mut rng, bits, 3) {
                    let q = Quantized::random(&mut rng, (n, k), bits, block);
                    let dense = q.dequantized();
                    for (m, xpad, cpad) in GEMM_ROWS {
                        let (ldx, ldc) = (k + xpad, n + cpad);
                        let x = rng.vec((m - 1) * ldx + k);
                        let scale = rng.pick(&SCALES);
                        let c0 = rng.vec((m - 1) * ldc + n);
                        let mut c = c0.clone();
                        cb_gemm_with(
                            isa,
                            pool,
                            m,
                            &q.matrix(),
                            &x,
                            ldx,
                            &mut c,
                            ldc,
                            scale.0,
                            scale.1,
                        );
                        for r in 0..m {
                            let xr = &x[r * ldx..r * ldx + k];
                            let y0 = &c0[r * ldc..r * ldc + n];
                            let mut y = y0.to_vec();
                            cb_gemv_with(isa, pool, &q.matrix(), xr, &mut y, scale.0, scale.1);
                            let want = gemv_f64(&dense, (n, k), xr, y0, scale);
                            for j in 0..n {
                                let what = format!("{isa:?} gemm b={bits} m={m} [{n}, {k}] B={block} {scale:?} C[{r}, {j}]");
                                let (f64_value, mag) = want[j];
                                assert_close(
                                    c[r * ldc + j],
                                    f64_value,
                                    mag,
                                    k,
                                    &format!("{what} vs f64"),
                                );
                                assert_close(
                                    c[r * ldc + j],
                                    y[j] as f64,
                                    2.0 * mag,
                                    k,
                                    &format!("{what} vs gemv"),
                                );
                            }
                            // The padding between rows of C is left alone.
                            if r + 1 < m {
                                assert_same(
                                    &c[r * ldc + n..(r + 1) * ldc],
                                    &c0[r * ldc + n..(r + 1) * ldc],
                                    "C padding",
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_splits_rows_or_columns_alike() {
    // m ≥ n splits rows of C, m < n its columns: both must match one thread.
    let mut rng = Lcg(8);
    let (one, three) = (Pool::new(1).unwrap(), Pool::new(3).unwrap());
    for isa in Isa::available() {
        for (m, n, k) in [(200, 48, 64), (24, 300, 64)] {
            let q = Quantized::random(&mut rng, (n, k), 4, 64);
            let x = rng.vec(m * k);
            let (mut a, mut b) = (vec![0.0; m * n], vec![0.0; m * n]);
            cb_gemm_with(isa, &one, m, &q.matrix(), &x, k, &mut a, n, 1.0, 0.0);
            cb_gemm_with(isa, &three, m, &q.matrix(), &x, k, &mut b, n, 1.0, 0.0);
            assert_same(&a, &b, &format!("{isa:?} gemm {m}x{n}x{k} 1 vs 3 threads"));
        }
    }
}

#[test]
fn bad_formats_are_refused() {
    let idx = [0u8; 64];
    let cb = [f16::ZERO; 256];
    // [4, 16] at b = 4, B = 8: 32 index bytes, 8 blocks × 16 entries.
    assert!(CbMatrix::new(4, 16, 4, 8, &idx[..32], &cb[..128]).is_ok());
    let refused =
        |(n, k, bits, block, bytes, entries): (usize, usize, usize, usize, usize, usize)| {
            CbMatrix::new(n, k, bits, block, &idx[..bytes], &cb[..entries])
                .unwrap_err()
                .0
        };
    assert!(refused((4, 16, 7, 8, 56, 256)).contains("7-bit"));
    assert!(refused((4, 16, 4, 12, 32, 96)).contains("multiple of 8"));
    assert!(refused((4, 3, 4, 8, 6, 32)).contains("K·b"));
    assert!(refused((4, 16, 4, 8, 31, 128)).contains("31 index bytes"));
    assert!(refused((4, 16, 4, 8, 32, 127)).contains("127 codebook entries"));
}

// ---- the C-interface adapters ----

fn descriptor<T, const N: usize>(
    data: &mut [T],
    offset: usize,
    sizes: [usize; N],
    strides: [i64; N],
) -> MemRefDescriptor<T, N> {
    MemRefDescriptor {
        allocated: data.as_mut_ptr(),
        aligned: data.as_mut_ptr(),
        offset: offset as i64,
        sizes: sizes.map(|s| s as i64),
        strides,
    }
}

/// The codebooks as the u16 array the generated code passes.
fn codebook_bits(q: &Quantized) -> Vec<u16> {
    q.codebooks.iter().map(|c| c.to_bits()).collect()
}

#[test]
fn c_interface_gemv_with_strided_vectors() {
    let mut rng = Lcg(9);
    let pool = Pool::new(1).unwrap();
    for bits in SUPPORTED_BITS {
        let (n, k, block) = (37, 104, 64);
        let q = Quantized::random(&mut rng, (n, k), bits, block);
        let x = rng.vec(k);
        let y0 = rng.vec(n);
        let (alpha, beta) = (0.75, -0.5);
        let mut want = y0.clone();
        cb_gemv_with(
            Isa::detected(),
            &pool,
            &q.matrix(),
            &x,
            &mut want,
            alpha,
            beta,
        );

        // x at stride 3 from offset 2, y at stride 2 from offset 1.
        let mut xs = vec![f32::NAN; 2 + 3 * k];
        for (i, v) in x.iter().enumerate() {
            xs[2 + 3 * i] = *v;
        }
        let mut ys = vec![-7.0f32; 1 + 2 * n];
        for (i, v) in y0.iter().enumerate() {
            ys[1 + 2 * i] = *v;
        }
        let mut stream = q.stream.clone();
        let mut cbs = codebook_bits(&q);
        let levels = 1usize << bits;
        let d_idx = descriptor(&mut stream, 0, [q.stream.len()], [1]);
        let d_cb = descriptor(
            &mut cbs,
            0,
            [q.codebooks.len() / levels, levels],
            [levels as i64, 1],
        );
        let d_x = descriptor(&mut xs, 2, [k], [3]);
        let d_y = descriptor(&mut ys, 1, [n], [2]);
        // SAFETY: the descriptors describe the live vectors above.
        unsafe {
            abi::_mlir_ciface_ditto_rt_cb_gemv(
                &d_idx,
                &d_cb,
                &d_x,
                &d_y,
                bits as i64,
                block as i64,
                alpha,
                beta,
            )
        };
        let got: Vec<f32> = (0..n).map(|i| ys[1 + 2 * i]).collect();
        assert_same(&got, &want, &format!("abi gemv b={bits}"));
        assert!(
            (0..=n).all(|i| ys[2 * i] == -7.0),
            "abi gemv b={bits}: wrote between strided entries"
        );

        // Contiguous y, beta = 0 over NaN.
        let mut yc = vec![f32::NAN; n];
        let d_y = descriptor(&mut yc, 0, [n], [1]);
        unsafe {
            abi::_mlir_ciface_ditto_rt_cb_gemv(
                &d_idx,
                &d_cb,
                &d_x,
                &d_y,
                bits as i64,
                block as i64,
                1.0,
                0.0,
            )
        };
        let mut want = vec![0.0; n];
        cb_gemv_with(Isa::detected(), &pool, &q.matrix(), &x, &mut want, 1.0, 0.0);
        assert_same(&yc, &want, &format!("abi gemv b={bits} contiguous"));
    }
}

#[test]
fn c_interface_gemm_and_dequantize() {
    let mut rng = Lcg(10);
    let pool = Pool::new(1).unwrap();
    let (m, n, k, bits, block) = (5, 29, 96, 3, 40);
    let q = Quantized::random(&mut rng, (n, k), bits, block);
    let levels = 1usize << bits;
    let mut stream = q.stream.clone();
    let mut cbs = codebook_bits(&q);
    let d_idx = descriptor(&mut stream, 0, [q.stream.len()], [1]);
    let d_cb = descriptor(
        &mut cbs,
        0,
        [q.codebooks.len() / levels, levels],
        [levels as i64, 1],
    );

    // X with padded rows (stride k + 7, offset 3); C once padded, once column-strided (scratch path).
    let ldx = k + 7;
    let mut xs = rng.vec(3 + (m - 1) * ldx + k);
    let x = &xs[3..].to_vec();
    let c0 = rng.vec(m * n);
    let (alpha, beta) = (1.25, 0.5);
    let mut want = c0.clone();
    cb_gemm_with(
        Isa::detected(),
        &pool,
        m,
        &q.matrix(),
        x,
        ldx,
        &mut want,
        n,
        alpha,
        beta,
    );
    let d_x = descriptor(&mut xs, 3, [m, k], [ldx as i64, 1]);

    let ldc = n + 4;
    let mut cp = vec![-7.0f32; m * ldc];
    for r in 0..m {
        cp[r * ldc..r * ldc + n].copy_from_slice(&c0[r * n..(r + 1) * n]);
    }
    let d_c = descriptor(&mut cp, 0, [m, n], [ldc as i64, 1]);
    // SAFETY: the descriptors describe the live arrays above.
    unsafe {
        abi::_mlir_ciface_ditto_rt_cb_gemm(
            &d_idx,
            &d_cb,
            &d_x,
            &d_c,
            bits as i64,
            block as i64,
            alpha,
            beta,
        )
    };
    for r in 0..m {
        assert_same(
            &cp[r * ldc..r * ldc + n],
            &want[r * n..(r + 1) * n],
            "abi gemm padded C",
        );
        assert!(
            cp[r * ldc + n..(r + 1) * ldc].iter().all(|&v| v == -7.0),
            "abi gemm wrote into C's padding"
        );
    }

    // C transposed in memory: element (r, j) at j·m + r.
    let mut ct = vec![0.0f32; m * n];
    for r in 0..m {
        for j in 0..n {
            ct[j * m + r] = c0[r * n + j];
        }
    }
    let d_c = descriptor(&mut ct, 0, [m, n], [1, m as i64]);
    unsafe {
        abi::_mlir_ciface_ditto_rt_cb_gemm(
            &d_idx,
            &d_cb,
            &d_x,
            &d_c,
            bits as i64,
            block as i64,
            alpha,
            beta,
        )
    };
    let got: Vec<f32> = (0..m * n).map(|i| ct[(i % n) * m + i / n]).collect();
    assert_same(&got, &want, "abi gemm column-strided C");

    // Dequantize into a padded [n, k] view.
    let ldo = k + 2;
    let mut out = vec![-7.0f32; n * ldo];
    let d_out = descriptor(&mut out, 0, [n, k], [ldo as i64, 1]);
    unsafe {
        abi::_mlir_ciface_ditto_rt_cb_dequantize(&d_idx, &d_cb, &d_out, bits as i64, block as i64)
    };
    let dense = q.dequantized();
    for r in 0..n {
        assert_same(
            &out[r * ldo..r * ldo + k],
            &dense[r * k..(r + 1) * k],
            "abi dequantize",
        );
        assert_eq!(
            out[r * ldo + k..(r + 1) * ldo],
            [-7.0, -7.0],
            "abi dequantize padding"
        );
    }
}

/// Run in a child process by `c_interface_aborts_on_mismatched_sizes`:
/// calls the GEMV adapter with one index byte too few.
#[test]
fn c_interface_mismatch_child() {
    if std::env::var_os("DITTO_CB_ABORT_CHILD").is_none() {
        return;
    }
    let (n, k) = (4usize, 16usize);
    let mut stream = vec![0u8; n * k / 2 - 1];
    let mut cbs = vec![0u16; 16 * 4];
    let mut x = vec![0.0f32; k];
    let mut y = vec![0.0f32; n];
    let d_idx = descriptor(&mut stream, 0, [n * k / 2 - 1], [1]);
    let d_cb = descriptor(&mut cbs, 0, [4, 16], [16, 1]);
    let d_x = descriptor(&mut x, 0, [k], [1]);
    let d_y = descriptor(&mut y, 0, [n], [1]);
    // SAFETY: the descriptors describe the live vectors above.
    unsafe { abi::_mlir_ciface_ditto_rt_cb_gemv(&d_idx, &d_cb, &d_x, &d_y, 4, 16, 1.0, 0.0) };
}

#[test]
fn c_interface_aborts_on_mismatched_sizes() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "c_interface_mismatch_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DITTO_CB_ABORT_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the child should have aborted: {stderr}"
    );
    assert!(
        stderr.contains("ditto_rt_cb_gemv")
            && stderr.contains("31 index bytes, the format needs 32"),
        "unexpected message: {stderr}"
    );
}
