//! `ditto_rt_sgemv` / `ditto_rt_sgemm` against a naive f64 loop, over odd
//! shapes, row-major / column-major / padded / general strides, alpha and
//! beta, 1 and 3 threads.

use std::sync::Mutex;

use ditto_rt::kernels::{self, Gemm, Gemv, Strided1, Strided2};
use ditto_rt::pool::Pool;

/// A small LCG: the tests need no crate for random numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }
}

/// (row stride, column stride, elements to allocate) for an r x c matrix.
#[derive(Debug, Clone, Copy)]
enum Layout {
    RowMajor,
    ColMajor,
    PaddedRows,
    General,
}

impl Layout {
    fn strides(self, r: usize, c: usize) -> (isize, isize, usize) {
        match self {
            Layout::RowMajor => (c as isize, 1, r * c),
            Layout::ColMajor => (1, r as isize, r * c),
            Layout::PaddedRows => (c as isize + 5, 1, r * (c + 5)),
            Layout::General => (2 * c as isize, 2, 2 * r * c),
        }
    }
}

const LAYOUTS: [Layout; 4] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::PaddedRows,
    Layout::General,
];

fn at(m: &[f32], rs: isize, cs: isize, i: usize, j: usize) -> f64 {
    m[(i as isize * rs + j as isize * cs) as usize] as f64
}

/// |got - want| within the f32 summation bound for `terms` products.
fn assert_close(got: f32, want: f64, magnitude: f64, terms: usize, what: &str) {
    let tol = 2.0 * (terms as f64 + 2.0) * f32::EPSILON as f64 * magnitude + 1e-30;
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

#[test]
fn sgemv_matches_a_naive_loop() {
    let mut rng = Lcg(1);
    let pools = [Pool::new(1).unwrap(), Pool::new(3).unwrap()];
    let shapes = [
        (1, 1),
        (1, 9),
        (7, 1),
        (17, 33),
        (64, 64),
        (301, 257),
        (1000, 97),
        (33, 2049),
    ];
    for pool in &pools {
        for &(m, n) in &shapes {
            for layout in LAYOUTS {
                for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.5, 0.3), (2.5, 1.0)] {
                    for (incx, incy) in [(1, 1), (2, 3)] {
                        let (rsa, csa, len) = layout.strides(m, n);
                        let a = rng.vec(len);
                        let x = rng.vec(n * incx);
                        let mut y = rng.vec(m * incy);
                        if beta == 0.0 {
                            // BLIS semantics: beta = 0 overwrites, never reads y.
                            for v in y.iter_mut() {
                                *v = f32::NAN;
                            }
                        }
                        let y0 = y.clone();
                        let mut call = || unsafe {
                            kernels::sgemv(
                                pool,
                                &Gemv {
                                    m,
                                    n,
                                    alpha,
                                    a: Strided2 {
                                        at: a.as_ptr(),
                                        row_stride: rsa,
                                        col_stride: csa,
                                    },
                                    x: Strided1 {
                                        at: x.as_ptr(),
                                        stride: incx as isize,
                                    },
                                    beta,
                                    y: Strided1 {
                                        at: y.as_mut_ptr(),
                                        stride: incy as isize,
                                    },
                                },
                            )
                        };
                        // From inside the pool (as the model runs) and from outside.
                        if incx == 1 {
                            pool.run(call)
                        } else {
                            call()
                        }
                        for i in 0..m {
                            let (mut sum, mut mag) = (0.0f64, 0.0f64);
                            for j in 0..n {
                                let p = at(&a, rsa, csa, i, j) * x[j * incx] as f64;
                                sum += p;
                                mag += p.abs();
                            }
                            let old = if beta == 0.0 {
                                0.0
                            } else {
                                beta as f64 * y0[i * incy] as f64
                            };
                            let want = alpha as f64 * sum + old;
                            let what = format!("sgemv {m}x{n} {layout:?} a={alpha} b={beta} inc=({incx},{incy}) threads={} row {i}", pool.threads());
                            assert_close(
                                y[i * incy],
                                want,
                                alpha.abs() as f64 * mag + old.abs(),
                                n,
                                &what,
                            );
                        }
                        // Entries between the strided y values are untouched.
                        for (k, (&got, &was)) in y.iter().zip(&y0).enumerate() {
                            if k % incy != 0 {
                                assert!(
                                    got.to_bits() == was.to_bits(),
                                    "sgemv wrote y[{k}] off its stride"
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
fn sgemm_matches_a_naive_loop() {
    let mut rng = Lcg(2);
    let pools = [Pool::new(1).unwrap(), Pool::new(3).unwrap()];
    // Includes m >= n (row split) and m < n (column split) above the parallel threshold.
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (17, 1, 33),
        (65, 31, 40),
        (150, 70, 20),
        (5, 300, 70),
        (12, 257, 64),
    ];
    for pool in &pools {
        for &(m, n, k) in &shapes {
            for (la, lb, lc) in [
                (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
                (Layout::ColMajor, Layout::ColMajor, Layout::ColMajor),
                (Layout::RowMajor, Layout::ColMajor, Layout::RowMajor),
                (Layout::PaddedRows, Layout::General, Layout::ColMajor),
                (Layout::General, Layout::RowMajor, Layout::PaddedRows),
            ] {
                for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (0.75, -2.0)] {
                    let (rsa, csa, len_a) = la.strides(m, k);
                    let (rsb, csb, len_b) = lb.strides(k, n);
                    let (rsc, csc, len_c) = lc.strides(m, n);
                    let a = rng.vec(len_a);
                    let b = rng.vec(len_b);
                    let mut c = rng.vec(len_c);
                    if beta == 0.0 {
                        for v in c.iter_mut() {
                            *v = f32::NAN;
                        }
                    }
                    let c0 = c.clone();
                    let mut call = || unsafe {
                        kernels::sgemm(
                            pool,
                            &Gemm {
                                m,
                                n,
                                k,
                                alpha,
                                a: strided(a.as_ptr(), (rsa, csa)),
                                b: strided(b.as_ptr(), (rsb, csb)),
                                beta,
                                c: strided(c.as_mut_ptr(), (rsc, csc)),
                            },
                        )
                    };
                    // From inside the pool (as the model runs) and from outside.
                    if beta != 1.0 {
                        pool.run(call)
                    } else {
                        call()
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let (mut sum, mut mag) = (0.0f64, 0.0f64);
                            for l in 0..k {
                                let p = at(&a, rsa, csa, i, l) * at(&b, rsb, csb, l, j);
                                sum += p;
                                mag += p.abs();
                            }
                            let old = if beta == 0.0 {
                                0.0
                            } else {
                                beta as f64 * at(&c0, rsc, csc, i, j)
                            };
                            let want = alpha as f64 * sum + old;
                            let got = c[(i as isize * rsc + j as isize * csc) as usize];
                            let what = format!("sgemm {m}x{n}x{k} {la:?}/{lb:?}/{lc:?} a={alpha} b={beta} threads={} ({i},{j})", pool.threads());
                            assert_close(got, want, alpha.abs() as f64 * mag + old.abs(), k, &what);
                        }
                    }
                }
            }
        }
    }
}

/// Products of at most `GEMV_ORDER_ROWS` rows do not depend on their row
/// count: each row of C equals the 1-row product of that row of A, bit for
/// bit (the verification of drafted tokens relies on it), for B row- or
/// column-major (x·Wᵀ with W row-major), 1 and 3 threads.
#[test]
fn sgemm_rows_do_not_depend_on_the_other_rows() {
    let mut rng = Lcg(3);
    let pools = [Pool::new(1).unwrap(), Pool::new(3).unwrap()];
    let (n, k) = (300, 96);
    for pool in &pools {
        for lb in [Layout::RowMajor, Layout::ColMajor] {
            let (rsb, csb, len_b) = lb.strides(k, n);
            let b = rng.vec(len_b);
            let product = |m: usize, a: &[f32]| {
                let mut c = vec![0.0f32; m * n];
                // SAFETY: A [m, k], B [k, n] and C [m, n] as described.
                unsafe {
                    kernels::sgemm(
                        pool,
                        &Gemm {
                            m,
                            n,
                            k,
                            alpha: 1.0,
                            a: strided(a.as_ptr(), (k as isize, 1)),
                            b: strided(b.as_ptr(), (rsb, csb)),
                            beta: 0.0,
                            c: strided(c.as_mut_ptr(), (n as isize, 1)),
                        },
                    )
                };
                c
            };
            for m in 1..=kernels::GEMV_ORDER_ROWS {
                let a = rng.vec(m * k);
                let all = product(m, &a);
                for (r, (a_r, c_r)) in a.chunks(k).zip(all.chunks(n)).enumerate() {
                    let one = product(1, a_r);
                    let same = c_r
                        .iter()
                        .zip(&one)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{lb:?} m={m} row {r} threads={}", pool.threads());
                }
            }
        }
    }
}

#[test]
fn exported_symbols_take_addresses_and_element_strides() {
    let mut rng = Lcg(3);
    let (m, n) = (300, 250);
    let a = rng.vec(m * n); // row-major
    let x = rng.vec(n);
    let mut y = vec![0.0f32; m];
    unsafe {
        kernels::ditto_rt_sgemv(
            m as i64,
            n as i64,
            1.0,
            a.as_ptr() as i64,
            n as i64,
            1,
            x.as_ptr() as i64,
            1,
            0.0,
            y.as_mut_ptr() as i64,
            1,
        )
    };
    for i in 0..m {
        let want: f64 = (0..n).map(|j| a[i * n + j] as f64 * x[j] as f64).sum();
        let mag: f64 = (0..n)
            .map(|j| (a[i * n + j] as f64 * x[j] as f64).abs())
            .sum();
        assert_close(y[i], want, mag, n, "ditto_rt_sgemv");
    }

    // C[m2 x n2] = A[m2 x k] * B[k x n2], with B given as its transpose (column-major view).
    let (m2, n2, k) = (40, 90, 30);
    let a = rng.vec(m2 * k);
    let bt = rng.vec(n2 * k); // B^T row-major = B column-major
    let mut c = vec![0.0f32; m2 * n2];
    unsafe {
        kernels::ditto_rt_sgemm(
            m2 as i64,
            n2 as i64,
            k as i64,
            1.0,
            a.as_ptr() as i64,
            k as i64,
            1,
            bt.as_ptr() as i64,
            1,
            k as i64,
            0.0,
            c.as_mut_ptr() as i64,
            n2 as i64,
            1,
        )
    };
    for i in 0..m2 {
        for j in 0..n2 {
            let want: f64 = (0..k)
                .map(|l| a[i * k + l] as f64 * bt[j * k + l] as f64)
                .sum();
            let mag: f64 = (0..k)
                .map(|l| (a[i * k + l] as f64 * bt[j * k + l] as f64).abs())
                .sum();
            assert_close(c[i * n2 + j], want, mag, k, "ditto_rt_sgemm");
        }
    }

    // Empty products touch nothing.
    unsafe { kernels::ditto_rt_sgemv(0, 5, 1.0, 0, 5, 1, 0, 1, 0.0, 0, 1) };
    unsafe { kernels::ditto_rt_sgemm(0, 5, 5, 1.0, 0, 5, 1, 0, 5, 1, 0.0, 0, 5, 1) };
}

#[test]
fn pool_slices_cover_every_row_once() {
    for threads in [1, 2, 3, 5] {
        let pool = Pool::new(threads).unwrap();
        assert_eq!(pool.threads(), threads);
        for len in [1, 15, 16, 17, 40, 100, 1000, 4097] {
            let seen = Mutex::new(Vec::new());
            pool.for_each_slice(len, |s, e| seen.lock().unwrap().push((s, e)));
            let mut slices = std::mem::take(&mut *seen.lock().unwrap());
            slices.sort();
            pool.run(|| pool.for_each_slice(len, |s, e| seen.lock().unwrap().push((s, e))));
            let mut inside = seen.into_inner().unwrap();
            inside.sort();
            assert_eq!(slices, inside, "the same slices inside the pool");
            assert!(
                slices.len() <= threads,
                "{len} rows, {threads} threads: {slices:?}"
            );
            let mut next = 0;
            for &(s, e) in &slices {
                assert!(
                    s == next && e > s,
                    "{len} rows, {threads} threads: {slices:?}"
                );
                assert!(s % 16 == 0);
                next = e;
            }
            assert_eq!(next, len);
        }
    }
}

#[test]
fn the_linked_blis_takes_64_bit_integers() {
    ditto_rt::blis::check_blis().unwrap();
}

/// The compiled model keeps its per-token buffers on the stack of the pool
/// thread it runs on; that stack must hold far more than rayon's 2 MiB
/// default (a quantized Qwen2.5-Coder-0.5B overflowed it at position ~216).
#[test]
fn the_model_runs_on_a_deep_stack_whatever_the_thread_count() {
    /// Uses `depth` KiB of stack, one frame per KiB.
    fn deep(depth: usize) -> u64 {
        let frame = std::hint::black_box([depth as u8; 1024]);
        if depth == 0 {
            return frame[0] as u64;
        }
        deep(depth - 1) + frame[1023] as u64
    }
    for threads in [1, 2] {
        let pool = Pool::new(threads).unwrap();
        let kib = 64 * 1024; // 64 MiB: more than a main thread's 8 MiB too
        assert!(ditto_rt::pool::MODEL_STACK_BYTES >= 2 * kib * 1024);
        let used = pool.run(|| deep(kib));
        assert!(used > 0);
    }
}

fn strided<P>(at: P, (row_stride, col_stride): (isize, isize)) -> Strided2<P> {
    Strided2 {
        at,
        row_stride,
        col_stride,
    }
}
