//! The codebook products of ditto-rt: the split over the thread pool, and
//! the C-interface adapters. The kernels themselves are tested against
//! their scalar twins and the f64 reference in ditto-kernels'
//! tests/codebook.rs, whose helpers this file shares (`common`).
//!
//! * cb_gemv/cb_gemm/cb_dequantize on 1 and 3 threads against the kernels
//!   on the calling thread, bit for bit (each output is computed by one
//!   thread in the same order, however the work is split).
//! * The GEMM split by rows or by columns of C alike.
//! * The int8-activation GEMV and GEMM on 1 and 3 threads against their
//!   kernels on the calling thread, the GEMM also against the split GEMV
//!   row by row (the `--activations` switch: tests/activations.rs).
//! * The C-interface adapters with hand-built descriptors (strided x and y,
//!   padded and column-strided matrices), and their abort on bad sizes.

#[path = "../kernels/tests/common/mod.rs"]
mod common;

use common::*;
use ditto_kernels::codebook::{dequantize, gemm, gemm_int8, gemv, gemv_int8};
use ditto_rt::codebook::GemmRows;
use ditto_rt::codebook::{
    abi, cb_dequantize_with, cb_gemm, cb_gemm_int8_with, cb_gemm_with, cb_gemv_int8_with,
    cb_gemv_with, convert_codebooks_in, forget_converted_codebooks, gemm_int8_isa, Int8Isa, Isa,
    SUPPORTED_BITS,
};
use ditto_rt::model::MemRefDescriptor;
use ditto_rt::pool::Pool;

fn pools() -> [Pool; 2] {
    [Pool::new(1).unwrap(), Pool::new(3).unwrap()]
}

/// Products large enough to be split (past `MIN_PARALLEL_WORK`) on every
/// ISA and width match the one-thread kernels bit for bit.
#[test]
fn pool_split_matches_the_one_thread_kernels() {
    let mut rng = Lcg(11);
    for isa in Isa::available() {
        for pool in &pools() {
            for bits in SUPPORTED_BITS {
                let ((n, k), block) = ((131, 520), 256);
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                let what = format!("{isa:?} b={bits} threads={}", pool.threads());

                let x = rng.vec(k);
                let y0 = rng.vec(n);
                let (mut got, mut want) = (y0.clone(), y0);
                cb_gemv_with(isa, pool, &w, &x, &mut got, 0.5, -1.0);
                gemv(isa, &w, &x, &mut want, 0.5, -1.0);
                assert_same(&got, &want, &format!("cb_gemv {what}"));

                let (mut got, mut want) = (vec![f32::NAN; n * k], vec![0.0; n * k]);
                cb_dequantize_with(isa, pool, &w, &mut got);
                dequantize(isa, &w, &mut want);
                assert_same(&got, &want, &format!("cb_dequantize {what}"));

                // m ≥ n splits rows of C, m < n its columns.
                for m in [3, 200] {
                    let x = rng.vec(m * k);
                    let (mut got, mut want) = (vec![f32::NAN; m * n], vec![0.0; m * n]);
                    cb_gemm_with(
                        isa,
                        pool,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx: k,
                            c: &mut got,
                            ldc: n,
                            alpha: 1.0,
                            beta: 0.0,
                        },
                    );
                    gemm(
                        isa,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx: k,
                            c: &mut want,
                            ldc: n,
                            alpha: 1.0,
                            beta: 0.0,
                        },
                    );
                    assert_same(&got, &want, &format!("cb_gemm m={m} {what}"));
                }
            }
        }
    }
}

/// The int8-activation GEMV split over 1 and 3 threads (x quantized once,
/// before the split) matches the int8 kernel on the calling thread.
#[test]
fn int8_pool_split_matches_the_one_thread_kernel() {
    let mut rng = Lcg(12);
    for isa in Int8Isa::available() {
        for pool in &pools() {
            for bits in 2..=6 {
                let ((n, k), block) = ((131, 576), 32 << bits);
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                let (x, y0) = (rng.vec(k), rng.vec(n));
                let (mut got, mut want) = (y0.clone(), y0);
                cb_gemv_int8_with(isa, pool, &w, &x, &mut got, 0.5, -1.0);
                gemv_int8(isa, &w, &x, &mut want, 0.5, -1.0);
                let what = format!("{isa:?} b={bits} threads={}", pool.threads());
                assert_same(&got, &want, &format!("cb_gemv_int8 {what}"));
            }
        }
    }
}

/// With the matrix's codebooks in the section whose codebooks are
/// converted once (`convert_codebooks_in`, as a model's weights are), the
/// split int8 GEMV still matches the kernel on the calling thread, on its
/// first call (which converts) and later ones, and after
/// `forget_converted_codebooks`.
#[test]
fn int8_gemv_with_converted_codebooks_matches_the_kernel() {
    let mut rng = Lcg(13);
    let pool = Pool::new(3).unwrap();
    for isa in Int8Isa::available() {
        for bits in 2..=6 {
            let ((n, k), block) = ((97, 640), 32 << bits);
            let q = Quantized::random(&mut rng, (n, k), bits, block);
            let w = q.matrix();
            if !isa.fits(&w) {
                continue;
            }
            let (x, y0) = (rng.vec(k), rng.vec(n));
            let mut want = y0.clone();
            gemv_int8(isa, &w, &x, &mut want, 0.5, -1.0);
            // SAFETY: the codebooks' f16 values viewed as their bytes.
            let section = unsafe {
                std::slice::from_raw_parts(
                    q.codebooks.as_ptr() as *const u8,
                    std::mem::size_of_val(q.codebooks.as_slice()),
                )
            };
            convert_codebooks_in(section);
            for call in 0..2 {
                let mut got = y0.clone();
                cb_gemv_int8_with(isa, &pool, &w, &x, &mut got, 0.5, -1.0);
                assert_same(&got, &want, &format!("{isa:?} b={bits}, call {call}"));
            }
            forget_converted_codebooks();
            let mut got = y0.clone();
            cb_gemv_int8_with(isa, &pool, &w, &x, &mut got, 0.5, -1.0);
            assert_same(&got, &want, &format!("{isa:?} b={bits}, forgotten"));
        }
    }
}

/// The int8-activation GEMM split over 1 and 3 threads (rows quantized
/// in parallel; m ≥ n splits rows of C, m < n its columns) matches the
/// kernel on the calling thread bit for bit, and each row of C the split
/// int8 GEMV of that row of X to within f32 rounding: prefill and decode
/// agree.
#[test]
fn int8_gemm_pool_split_matches_the_kernel_and_the_gemv() {
    let mut rng = Lcg(13);
    for isa in Int8Isa::available() {
        for pool in &pools() {
            for bits in 2..=6 {
                let ((n, k), block) = ((131, 576), 32 << bits);
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let (w, dense) = (q.matrix(), q.dequantized());
                if !isa.fits(&w) {
                    continue;
                }
                for (m, ldx, ldc) in [(3, 576, 131), (9, 600, 140), (200, 576, 131)] {
                    let what = format!("{isa:?} b={bits} m={m} threads={}", pool.threads());
                    let x = rng.vec((m - 1) * ldx + k);
                    let c0 = rng.vec((m - 1) * ldc + n);
                    let (mut got, mut want) = (c0.clone(), c0.clone());
                    cb_gemm_int8_with(
                        isa,
                        pool,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx,
                            c: &mut got,
                            ldc,
                            alpha: 0.5,
                            beta: -1.0,
                        },
                    );
                    gemm_int8(
                        isa,
                        &w,
                        GemmRows {
                            m,
                            x: &x,
                            ldx,
                            c: &mut want,
                            ldc,
                            alpha: 0.5,
                            beta: -1.0,
                        },
                    );
                    assert_same(&got, &want, &format!("cb_gemm_int8 {what}"));
                    for r in 0..m {
                        let mut y = c0[r * ldc..r * ldc + n].to_vec();
                        let xr = &x[r * ldx..r * ldx + k];
                        cb_gemv_int8_with(isa, pool, &w, xr, &mut y, 0.5, -1.0);
                        for (i, &y) in y.iter().enumerate() {
                            // The same integers summed in two orders: each
                            // within (2·groups + 2·segments + 8) roundings of
                            // 2⁻²⁴ of Σ |ŵ·x̂| (< 1.01·Σ |ŵ·x|) of the exact
                            // sum, so at most twice that apart.
                            let mag: f64 = (0..k)
                                .map(|c| (dense[i * k + c] as f64 * xr[c] as f64).abs())
                                .sum();
                            let roundings = 2 * k.div_ceil(64) + 2 * (k / block + 2) + 8;
                            let tol = 2.0 * roundings as f64 * 1.01 * mag / (1u64 << 24) as f64
                                + (c0[r * ldc + i] as f64).abs() / (1u64 << 23) as f64;
                            let got = got[r * ldc + i];
                            assert!(
                                (got as f64 - y as f64).abs() <= tol,
                                "{what} C[{r}, {i}] = {got}, GEMV {y}, more than {tol} apart"
                            );
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
            cb_gemm_with(
                isa,
                &one,
                &q.matrix(),
                GemmRows {
                    m,
                    x: &x,
                    ldx: k,
                    c: &mut a,
                    ldc: n,
                    alpha: 1.0,
                    beta: 0.0,
                },
            );
            cb_gemm_with(
                isa,
                &three,
                &q.matrix(),
                GemmRows {
                    m,
                    x: &x,
                    ldx: k,
                    c: &mut b,
                    ldc: n,
                    alpha: 1.0,
                    beta: 0.0,
                },
            );
            assert_same(&a, &b, &format!("{isa:?} gemm {m}x{n}x{k} 1 vs 3 threads"));
        }
    }
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

/// With B = 40 the GEMM is f32 everywhere; with B = 192 (two rows per
/// block) it has int8 activations where the CPU runs the AVX-512 int8
/// kernels (`cb_gemm`, the switch at its default in this process).
#[test]
fn c_interface_gemm_and_dequantize() {
    for block in [40, 192] {
        c_interface_gemm_and_dequantize_with(block)
    }
}

fn c_interface_gemm_and_dequantize_with(block: usize) {
    let mut rng = Lcg(10);
    let pool = Pool::new(1).unwrap();
    let (m, n, k, bits) = (5, 29, 96, 3);
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
    let int8 = Int8Isa::detected() == Some(Int8Isa::Avx512Vnni) && block == 192;
    assert_eq!(gemm_int8_isa(&q.matrix()).is_some(), int8, "B={block}");
    let mut want = c0.clone();
    cb_gemm(
        &pool,
        &q.matrix(),
        GemmRows {
            m,
            x,
            ldx,
            c: &mut want,
            ldc: n,
            alpha,
            beta,
        },
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
