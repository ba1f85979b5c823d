//! Decode-shaped timing of the fused codebook GEMV against Ditto's recipe
//! (dequantize the whole matrix into f32 scratch, then BLIS sgemv) and
//! against plain f32 BLIS sgemv, on the shapes of a Qwen2.5-Coder-0.5B
//! decode step (q/o 896², gate/up 4864×896, down 896×4864, LM head
//! 151936×896), b = 2, 3, 4, 8 with B = 256, at 1 and 2 threads.
//!
//! Each product cycles through enough copies of its weights to stay out of
//! the caches (as a real decode does). GB/s counts the weight bytes a
//! product needs: indices + f16 codebooks for the quantized ones (the
//! recipe also writes and reads 4·N·K bytes of scratch, not counted), 4·N·K
//! for f32.
//!
//!     cargo run --release -p ditto-rt --example codebook_bench [-- --isa avx2|avx512|neon|scalar] [--ms 300] [--shape down] [--working-set MB]
//!     cargo run --release -p ditto-rt --example codebook_bench -- --prefill   (GEMM shapes instead)
//!     cargo run --release -p ditto-rt --example codebook_bench -- --int8 [--rounds 7] [--ms 100] [--int8-isa avx512|avx2]
//!     cargo run --release -p ditto-rt --example codebook_bench -- --int8-gemm [--rounds 5] [--ms 200] [--shape q/o] [--m 128]
//!
//! `--int8` times the f32 fused GEMV against the int8-activation one
//! (`cb_gemv_int8_with`, x quantized inside every call) at b = 3, 4, 5 with
//! the quantizer's default blocks B = 32·2^b: `--rounds` interleaved rounds
//! (the order alternating per round), each timing both for `--ms`; the
//! medians, their GB/s and f32 time / int8 time, for the medians and for
//! each kernel's fastest round (the machine may be shared).
//!
//! `--int8-gemm` does the same for the prefill GEMM: `cb_gemm_with` (f32
//! activations, panels of Ŵ decoded to f32) against `cb_gemm_int8_with`
//! (the rows of X quantized inside every call), b = 4, B = 512, M = 128 and
//! 512 (or `--m`), one copy of the weights (the GEMM reuses them across the
//! M rows: it is compute-bound); GFLOP/s count 2·M·N·K.

use ditto_rt::codebook::GemmRows;
use std::time::Instant;

use ditto_rt::codebook::{
    cb_dequantize_with, cb_gemm_int8_with, cb_gemm_with, cb_gemv_int8_with, cb_gemv_with, CbMatrix,
    Int8Isa, Isa,
};
use ditto_rt::kernels::{sgemm, sgemv, Gemm, Gemv, Strided1, Strided2};
use ditto_rt::pool::Pool;
use half::f16;

/// Bytes of weights cycled through per measurement (`--working-set MB`).
const WORKING_SET: usize = 256 << 20;

const SHAPES: [(&str, usize, usize); 4] = [
    ("q/o", 896, 896),
    ("gate/up", 4864, 896),
    ("down", 896, 4864),
    ("lm_head", 151936, 896),
];
const BITS: [usize; 4] = [2, 3, 4, 8];
const BLOCK: usize = 256;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

/// One quantized copy: random index bytes (every byte string is valid) and
/// centroids in [-1, 1).
struct Copy {
    indices: Vec<u8>,
    codebooks: Vec<f16>,
    block: usize,
}

impl Copy {
    fn new(rng: &mut Lcg, n: usize, k: usize, bits: usize) -> Copy {
        Copy::with_block(rng, n, k, bits, BLOCK)
    }

    fn with_block(rng: &mut Lcg, n: usize, k: usize, bits: usize, block: usize) -> Copy {
        let mut indices = vec![0u8; (n * k * bits).div_ceil(8)];
        for chunk in indices.chunks_mut(8) {
            let word = rng.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        let entries = (n * k).div_ceil(block) << bits;
        let codebooks = (0..entries)
            .map(|_| f16::from_f32((rng.next() % 2048) as f32 / 1024.0 - 1.0))
            .collect();
        Copy {
            indices,
            codebooks,
            block,
        }
    }

    fn matrix(&self, n: usize, k: usize, bits: usize) -> CbMatrix<'_> {
        CbMatrix::new(n, k, bits, self.block, &self.indices, &self.codebooks).unwrap()
    }
}

/// Mean seconds per call of `call(rep)`, repeated for about `ms`
/// milliseconds (after one warm-up call), run inside `pool`.
fn time(pool: &Pool, ms: f64, call: &(dyn Fn(usize) + Sync)) -> f64 {
    pool.run(|| {
        call(0);
        let start = Instant::now();
        let mut reps = 0;
        while reps < 3 || start.elapsed().as_secs_f64() * 1e3 < ms {
            call(reps);
            reps += 1;
        }
        start.elapsed().as_secs_f64() / reps as f64
    })
}

fn f32_sgemv(pool: &Pool, a: &[f32], n: usize, k: usize, x: &[f32], y: &mut [f32]) {
    // SAFETY: a is [n, k] row-major, x has k entries, y has n.
    unsafe {
        sgemv(
            pool,
            &Gemv {
                m: n,
                n: k,
                alpha: 1.0,
                a: Strided2 {
                    at: a.as_ptr(),
                    row_stride: k as isize,
                    col_stride: 1,
                },
                x: Strided1 {
                    at: x.as_ptr(),
                    stride: 1,
                },
                beta: 0.0,
                y: Strided1 {
                    at: y.as_mut_ptr(),
                    stride: 1,
                },
            },
        )
    }
}

/// C [m, n] := X [m, k] · Aᵀ for A [n, k] row-major.
fn f32_sgemm(pool: &Pool, m: usize, a: &[f32], n: usize, k: usize, x: &[f32], c: &mut [f32]) {
    // SAFETY: X is [m, k], A [n, k] (read as Aᵀ through its strides), C [m, n].
    unsafe {
        sgemm(
            pool,
            &Gemm {
                m,
                n,
                k,
                alpha: 1.0,
                a: Strided2 {
                    at: x.as_ptr(),
                    row_stride: k as isize,
                    col_stride: 1,
                },
                b: Strided2 {
                    at: a.as_ptr(),
                    row_stride: 1,
                    col_stride: k as isize,
                },
                beta: 0.0,
                c: Strided2 {
                    at: c.as_mut_ptr(),
                    row_stride: n as isize,
                    col_stride: 1,
                },
            },
        )
    }
}

/// Prefill-shaped products (`--prefill`): cb_gemm against dequantize +
/// BLIS sgemm and f32 BLIS sgemm, GFLOP/s.
fn prefill(isa: Isa, pools: &[Pool], ms: f64) {
    let mut rng = Lcg(2);
    println!(
        "codebook GEMM ({isa:?} kernels), b = 4, B = {BLOCK}: C [M, N] = X [M, K] · Ŵᵀ, GFLOP/s"
    );
    println!(
        "{:<8} {:>13} {:>4} {:>3} | {:>9} {:>7} | {:>9} {:>7} | {:>9} {:>7}",
        "shape",
        "N x K",
        "M",
        "thr",
        "cb_gemm",
        "GFLOP/s",
        "recipe",
        "GFLOP/s",
        "f32 BLIS",
        "GFLOP/s"
    );
    for (name, n, k) in [("gate/up", 4864, 896), ("down", 896, 4864)] {
        let q = Copy::new(&mut rng, n, k, 4);
        let dense: Vec<f32> = (0..n * k).map(|i| (i % 17) as f32 * 0.01).collect();
        let mut scratch = vec![0.0f32; n * k];
        for m in [16, 128, 512] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
                .collect();
            let mut c = vec![0.0f32; m * n];
            for pool in pools {
                let (c_at, s_at) = (c.as_mut_ptr() as usize, scratch.as_mut_ptr() as usize);
                // SAFETY (all three): one call at a time writes C and the scratch.
                let c_mut = || unsafe { std::slice::from_raw_parts_mut(c_at as *mut f32, m * n) };
                let s_mut = || unsafe { std::slice::from_raw_parts_mut(s_at as *mut f32, n * k) };
                let w = q.matrix(n, k, 4);
                let fused = time(pool, ms, &|_| {
                    cb_gemm_with(
                        isa,
                        pool,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx: k,
                            c: c_mut(),
                            ldc: n,
                            alpha: 1.0,
                            beta: 0.0,
                        },
                    )
                });
                let recipe = time(pool, ms, &|_| {
                    let s = s_mut();
                    cb_dequantize_with(isa, pool, &w, s);
                    f32_sgemm(pool, m, s, n, k, &x, c_mut())
                });
                let plain = time(pool, ms, &|_| f32_sgemm(pool, m, &dense, n, k, &x, c_mut()));
                let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
                println!(
                    "{:<8} {:>6} x {:<5} {:>4} {:>3} | {:>7.2}ms {:>7.1} | {:>7.2}ms {:>7.1} | {:>7.2}ms {:>7.1}",
                    name,
                    n,
                    k,
                    m,
                    pool.threads(),
                    fused * 1e3,
                    gf(fused),
                    recipe * 1e3,
                    gf(recipe),
                    plain * 1e3,
                    gf(plain)
                );
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// `--int8`: the f32 fused GEMV against the int8-activation one, in
/// interleaved rounds.
fn int8_vs_f32(
    isa: Isa,
    pools: &[Pool],
    ms: f64,
    rounds: usize,
    working_set: usize,
    only: Option<&str>,
    int8: Option<Int8Isa>,
) {
    let Some(int8) = int8.or(Int8Isa::detected()) else {
        println!("this CPU runs no int8 codebook kernel (AVX-512 VBMI + VNNI, AVX2 + AVX-VNNI)");
        return;
    };
    let mut rng = Lcg(3);
    println!(
        "codebook GEMV, f32 ({isa:?}) vs int8 activations ({int8:?}), B = 32·2^b; GB/s of weight bytes; medians of {rounds} interleaved rounds of {ms} ms"
    );
    println!(
        "{:<8} {:>13} {:>2} {:>5} {:>3} | {:>9} {:>7} | {:>9} {:>7} | {:>9} {:>9}",
        "shape", "N x K", "b", "B", "thr", "f32", "GB/s", "int8", "GB/s", "f32/int8", "(fastest)"
    );
    for (name, n, k) in SHAPES {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let x: Vec<f32> = (0..k)
            .map(|i| (((i * 7) % 13) as f32 / 13.0 - 0.5) * if i % 31 == 0 { 8.0 } else { 1.0 })
            .collect();
        let mut y = vec![0.0f32; n];
        for bits in [3, 4, 5] {
            let block = 32 << bits;
            let probe = Copy::with_block(&mut rng, n, k, bits, block);
            let bytes = probe.matrix(n, k, bits).bytes();
            if !int8.fits(&probe.matrix(n, k, bits)) {
                continue; // the AVX2 kernel: b = 4 only
            }
            let copies = (working_set / bytes).clamp(1, 256);
            let mut all = vec![probe];
            all.extend((1..copies).map(|_| Copy::with_block(&mut rng, n, k, bits, block)));
            for pool in pools {
                let y_at = y.as_mut_ptr() as usize;
                // SAFETY (both): one call at a time writes y.
                let y_mut = || unsafe { std::slice::from_raw_parts_mut(y_at as *mut f32, n) };
                let f32_run = || {
                    time(pool, ms, &|r| {
                        let w = all[r % copies].matrix(n, k, bits);
                        cb_gemv_with(isa, pool, &w, &x, y_mut(), 1.0, 0.0)
                    })
                };
                let int8_run = || {
                    time(pool, ms, &|r| {
                        let w = all[r % copies].matrix(n, k, bits);
                        cb_gemv_int8_with(int8, pool, &w, &x, y_mut(), 1.0, 0.0)
                    })
                };
                let (mut f, mut q) = (Vec::new(), Vec::new());
                for round in 0..rounds {
                    if round % 2 == 0 {
                        f.push(f32_run());
                        q.push(int8_run());
                    } else {
                        q.push(int8_run());
                        f.push(f32_run());
                    }
                }
                let lowest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
                let best = lowest(&f) / lowest(&q);
                let (f, q) = (median(f), median(q));
                let gbs = |s: f64| bytes as f64 / s / 1e9;
                println!(
                    "{:<8} {:>6} x {:<5} {:>2} {:>5} {:>3} | {:>7.1}us {:>7.2} | {:>7.1}us {:>7.2} | {:>8.2}x {:>8.2}x",
                    name,
                    n,
                    k,
                    bits,
                    block,
                    pool.threads(),
                    f * 1e6,
                    gbs(f),
                    q * 1e6,
                    gbs(q),
                    f / q,
                    best
                );
            }
        }
    }
}

/// Mean seconds per call of `call()`, for about `ms` milliseconds and at
/// least one call after a warm-up call, run inside `pool` (for products
/// that take up to seconds).
fn time_long(pool: &Pool, ms: f64, call: &(dyn Fn() + Sync)) -> f64 {
    pool.run(|| {
        call();
        let start = Instant::now();
        let mut reps = 0;
        while reps < 1 || start.elapsed().as_secs_f64() * 1e3 < ms {
            call();
            reps += 1;
        }
        start.elapsed().as_secs_f64() / reps as f64
    })
}

/// `--int8-gemm`: the f32 codebook GEMM against the int8-activation one,
/// in interleaved rounds.
fn int8_gemm_vs_f32(
    isa: Isa,
    pools: &[Pool],
    ms: f64,
    rounds: usize,
    only: Option<&str>,
    ms_rows: &[usize],
) {
    if Int8Isa::detected() != Some(Int8Isa::Avx512Vnni) {
        println!("this CPU runs no int8 codebook GEMM kernel (AVX-512 VBMI + VNNI)");
        return;
    }
    let (bits, block) = (4, 512);
    let mut rng = Lcg(4);
    println!(
        "codebook GEMM, f32 ({isa:?}) vs int8 activations (Avx512Vnni), b = {bits}, B = {block}; GFLOP/s of 2·M·N·K; medians of {rounds} interleaved rounds of {ms} ms"
    );
    println!(
        "{:<8} {:>13} {:>4} {:>3} | {:>10} {:>7} | {:>10} {:>7} | {:>9} {:>9}",
        "shape", "N x K", "M", "thr", "f32", "GFLOP/s", "int8", "GFLOP/s", "f32/int8", "(fastest)"
    );
    for (name, n, k) in SHAPES {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let q = Copy::with_block(&mut rng, n, k, bits, block);
        let w = q.matrix(n, k, bits);
        for &m in ms_rows {
            let x: Vec<f32> = (0..m * k)
                .map(|i| (((i * 7) % 13) as f32 / 13.0 - 0.5) * if i % 31 == 0 { 8.0 } else { 1.0 })
                .collect();
            let mut c = vec![0.0f32; m * n];
            for pool in pools {
                let c_at = c.as_mut_ptr() as usize;
                // SAFETY (both): one call at a time writes C.
                let c_mut = || unsafe { std::slice::from_raw_parts_mut(c_at as *mut f32, m * n) };
                let f32_run = || {
                    time_long(pool, ms, &|| {
                        cb_gemm_with(
                            isa,
                            pool,
                            &w,
                            GemmRows {
                                m,
                                x: &x,
                                ldx: k,
                                c: c_mut(),
                                ldc: n,
                                alpha: 1.0,
                                beta: 0.0,
                            },
                        )
                    })
                };
                let int8_run = || {
                    time_long(pool, ms, &|| {
                        cb_gemm_int8_with(
                            Int8Isa::Avx512Vnni,
                            pool,
                            &w,
                            GemmRows {
                                m,
                                x: &x,
                                ldx: k,
                                c: c_mut(),
                                ldc: n,
                                alpha: 1.0,
                                beta: 0.0,
                            },
                        )
                    })
                };
                let (mut f, mut q) = (Vec::new(), Vec::new());
                for round in 0..rounds {
                    if round % 2 == 0 {
                        f.push(f32_run());
                        q.push(int8_run());
                    } else {
                        q.push(int8_run());
                        f.push(f32_run());
                    }
                }
                let lowest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
                let best = lowest(&f) / lowest(&q);
                let (f, q) = (median(f), median(q));
                let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
                println!(
                    "{:<8} {:>6} x {:<5} {:>4} {:>3} | {:>8.2}ms {:>7.1} | {:>8.2}ms {:>7.1} | {:>8.2}x {:>8.2}x",
                    name,
                    n,
                    k,
                    m,
                    pool.threads(),
                    f * 1e3,
                    gf(f),
                    q * 1e3,
                    gf(q),
                    f / q,
                    best
                );
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut with_int8, mut rounds, mut int8_isa) = (false, 7, None);
    let (mut with_int8_gemm, mut gemm_rows) = (false, vec![128, 512]);
    let (mut isa, mut ms, mut only, mut with_prefill) = (Isa::detected(), 300.0, None, false);
    let mut working_set = WORKING_SET;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--isa" => {
                isa = match args.next().as_deref() {
                    Some("scalar") => Isa::SCALAR,
                    Some("avx2") => Isa::Avx2,
                    Some("avx512") => Isa::Avx512,
                    Some("neon") => Isa::Neon,
                    other => panic!("--isa scalar|avx2|avx512|neon, not {other:?}"),
                }
            }
            "--ms" => ms = args.next().and_then(|v| v.parse().ok()).expect("--ms N"),
            "--prefill" => with_prefill = true,
            "--int8" => with_int8 = true,
            "--int8-gemm" => with_int8_gemm = true,
            "--m" => gemm_rows = vec![args.next().and_then(|v| v.parse().ok()).expect("--m M")],
            "--int8-isa" => {
                int8_isa = match args.next().as_deref() {
                    Some("avx512") => Some(Int8Isa::Avx512Vnni),
                    Some("avx2") => Some(Int8Isa::Avx2Vnni),
                    other => panic!("--int8-isa avx512|avx2, not {other:?}"),
                }
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--working-set" => {
                working_set = args
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .expect("--working-set MB")
                    << 20
            }
            "--shape" => only = Some(args.next().expect("--shape q/o|gate/up|down|lm_head")),
            other => panic!("unknown argument {other}"),
        }
    }
    let pools = [Pool::new(1).unwrap(), Pool::new(2).unwrap()];
    if with_prefill {
        return prefill(isa, &pools, ms);
    }
    if with_int8_gemm {
        let ms = if ms == 300.0 { 200.0 } else { ms };
        return int8_gemm_vs_f32(isa, &pools, ms, rounds, only.as_deref(), &gemm_rows);
    }
    if with_int8 {
        let ms = if ms == 300.0 { 100.0 } else { ms };
        return int8_vs_f32(
            isa,
            &pools,
            ms,
            rounds,
            working_set,
            only.as_deref(),
            int8_isa,
        );
    }
    let mut rng = Lcg(1);
    println!("codebook GEMV ({isa:?} kernels), B = {BLOCK}; GB/s of weight bytes; recipe = cb_dequantize + BLIS sgemv");
    println!(
        "{:<8} {:>13} {:>2} {:>3} | {:>9} {:>7} | {:>9} {:>7} | {:>9} {:>7} | {:>8} {:>8}",
        "shape",
        "N x K",
        "b",
        "thr",
        "cb_gemv",
        "GB/s",
        "recipe",
        "GB/s",
        "f32 BLIS",
        "GB/s",
        "recipe/cb",
        "f32/cb"
    );
    for (name, n, k) in SHAPES {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let x: Vec<f32> = (0..k).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        let mut y = vec![0.0f32; n];
        // f32 baseline: copies out of cache.
        let f32_bytes = n * k * 4;
        let f32_copies = (working_set / f32_bytes).clamp(1, 64);
        let dense: Vec<Vec<f32>> = (0..f32_copies)
            .map(|c| (0..n * k).map(|i| ((i + c) % 17) as f32 * 0.01).collect())
            .collect();
        let f32_times: Vec<f64> = pools
            .iter()
            .map(|pool| {
                let y_at = y.as_mut_ptr() as usize;
                time(pool, ms, &|r| {
                    // SAFETY: one call at a time writes y.
                    let y = unsafe { std::slice::from_raw_parts_mut(y_at as *mut f32, n) };
                    f32_sgemv(pool, &dense[r % f32_copies], n, k, &x, y)
                })
            })
            .collect();
        drop(dense);
        let mut scratch = vec![0.0f32; n * k];
        for bits in BITS {
            let probe = Copy::new(&mut rng, n, k, bits);
            let bytes = probe.matrix(n, k, bits).bytes();
            let copies = (working_set / bytes).clamp(1, 256);
            let mut all = vec![probe];
            all.extend((1..copies).map(|_| Copy::new(&mut rng, n, k, bits)));
            for (t, pool) in pools.iter().enumerate() {
                let y_at = y.as_mut_ptr() as usize;
                let fused = time(pool, ms, &|r| {
                    // SAFETY: one call at a time writes y.
                    let y = unsafe { std::slice::from_raw_parts_mut(y_at as *mut f32, n) };
                    cb_gemv_with(
                        isa,
                        pool,
                        &all[r % copies].matrix(n, k, bits),
                        &x,
                        y,
                        1.0,
                        0.0,
                    )
                });
                let s_at = scratch.as_mut_ptr() as usize;
                let recipe = time(pool, ms, &|r| {
                    // SAFETY: one call at a time writes y and the scratch.
                    let (y, s) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(y_at as *mut f32, n),
                            std::slice::from_raw_parts_mut(s_at as *mut f32, n * k),
                        )
                    };
                    cb_dequantize_with(isa, pool, &all[r % copies].matrix(n, k, bits), s);
                    f32_sgemv(pool, s, n, k, &x, y)
                });
                let f32_time = f32_times[t];
                let gbs = |b: usize, s: f64| b as f64 / s / 1e9;
                println!(
                    "{:<8} {:>6} x {:<5} {:>2} {:>3} | {:>7.1}us {:>7.2} | {:>7.1}us {:>7.2} | {:>7.1}us {:>7.2} | {:>8.2}x {:>7.2}x",
                    name,
                    n,
                    k,
                    bits,
                    pool.threads(),
                    fused * 1e6,
                    gbs(bytes, fused),
                    recipe * 1e6,
                    gbs(bytes, recipe),
                    f32_time * 1e6,
                    gbs(f32_bytes, f32_time),
                    recipe / fused,
                    f32_time / fused
                );
            }
        }
    }
}
