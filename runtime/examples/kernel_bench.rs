//! How much the row split of `ditto_rt_sgemv` gains over one BLIS call, on
//! the GEMV shapes of a decode step of Qwen2.5-Coder-0.5B (d 896, ffn 4864,
//! 2 KV heads of 64). Each shape cycles through enough copies of its matrix
//! to stay out of the caches, as a real decode does.
//!
//!     cargo run --release -p ditto-rt --example kernel_bench [THREADS]

use std::time::Instant;

use ditto_rt::kernels::{sgemv, Gemv, Strided1, Strided2};
use ditto_rt::pool::Pool;

const WORKING_SET: usize = 256 << 20;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map_or(2, |s| s.parse().expect("THREADS"));
    let serial = Pool::new(1).unwrap();
    let pool = Pool::new(threads).unwrap();
    println!(
        "shape (m x n)   1 thread     {threads} threads in pool   {threads} threads from outside"
    );
    for (name, m, n) in [
        ("k/v  ", 128, 896),
        ("q/o  ", 896, 896),
        ("gate ", 4864, 896),
        ("down ", 896, 4864),
    ] {
        let copies = (WORKING_SET / (m * n * 4)).max(2);
        let weights: Vec<Vec<f32>> = (0..copies)
            .map(|c| vec![(c % 7) as f32 * 0.01; m * n])
            .collect();
        let x = vec![1.0f32; n];
        let mut y = vec![0.0f32; m];
        let reps = (copies * 4).max(64);
        let mut time = |pool: &Pool, inside: bool| {
            let mut step = || {
                let start = Instant::now();
                for r in 0..reps {
                    let a = &weights[r % copies];
                    // SAFETY: a is m x n row-major, x has n entries, y has m.
                    unsafe {
                        sgemv(
                            pool,
                            &Gemv {
                                m,
                                n,
                                alpha: 1.0,
                                a: Strided2 {
                                    at: a.as_ptr(),
                                    row_stride: n as isize,
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
                start.elapsed().as_secs_f64() / reps as f64 * 1e6
            };
            if inside {
                pool.run(step)
            } else {
                step()
            }
        };
        let one = time(&serial, false);
        let within = time(&pool, true);
        let outside = time(&pool, false);
        println!(
            "{name} {m:>4} x {n:<4} {one:>8.1} us   {within:>8.1} us ({:.2}x)   {outside:>8.1} us ({:.2}x)",
            one / within,
            one / outside
        );
    }
}
