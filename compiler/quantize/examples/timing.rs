//! Times `quantize` on synthetic matrices of Qwen2.5-Coder-0.5B's shapes and
//! estimates a whole-model run from them.
//!
//! ```text
//! cargo run --release -p ditto-quantize --example timing -- [--threads 2] [--bits 2,3,4] [--block 256] [--kmeans auto|exact|lloyd] [--quick] [--calib T]
//! ```
//!
//! `--calib T` also times the relative output error of every quantized
//! tensor over T calibration samples (`Activations::output_sq_diff_quantized`).
//!
//! Weights are Gaussian (σ = 0.02, like a trained projection), all distinct,
//! which is the worst case for the quantizer (no repeated values to merge).
//! `--quick` skips the 151936×896 embedding and estimates it from the others'
//! time per weight.

use std::time::Instant;

use ditto_quantize::{quantize_with, Activations, Format, KmeansOptions, Method};

/// (name, N, K, count in the model): the 24 layers' projections and the tied
/// embedding / LM head.
const SHAPES: [(&str, usize, usize, usize); 5] = [
    ("attn_q / attn_output", 896, 896, 48),
    ("attn_k / attn_v", 128, 896, 48),
    ("ffn_gate / ffn_up", 4864, 896, 48),
    ("ffn_down", 896, 4864, 24),
    ("token_embd (tied)", 151936, 896, 1),
];

fn main() {
    let mut threads = 2usize;
    let mut bits_list = vec![2u8, 3, 4];
    let mut block = 256usize;
    let mut quick = false;
    let mut calib = 0usize;
    let mut kmeans = KmeansOptions::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--threads" => threads = value.parse().expect("--threads N"),
            "--bits" => {
                bits_list = value
                    .split(',')
                    .map(|b| b.parse().expect("--bits b,b,..."))
                    .collect()
            }
            "--block" => block = value.parse().expect("--block B"),
            "--calib" => calib = value.parse().expect("--calib T"),
            "--kmeans" => {
                kmeans.method = match value.as_str() {
                    "auto" => Method::Auto,
                    "exact" => Method::Exact,
                    "lloyd" => Method::Lloyd,
                    _ => panic!("--kmeans auto|exact|lloyd"),
                }
            }
            "--quick" => {
                quick = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    let solver = format!("{:?}", kmeans.method).to_lowercase();
    println!("threads {threads}, block {block}, k-means {solver}, Gaussian weights σ = 0.02, calibration samples {calib}\n");
    println!("| shape | bits | quantize s | ns/weight | Mweights/s | output error s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for &bits in &bits_list {
        let mut model_seconds = 0.0;
        let mut model_error_seconds = 0.0;
        let mut measured = (0.0f64, 0usize);
        for &(name, n, k, count) in &SHAPES {
            if quick && n == 151936 {
                let per_weight = measured.0 / measured.1 as f64;
                let s = per_weight * (n * k) as f64;
                println!("| {name} {n}×{k} | {bits} | {s:.2} (est.) | | | |");
                model_seconds += s * count as f64;
                continue;
            }
            let w = gaussian(n * k, 0.02, (n * 31 + k) as u64);
            let t0 = Instant::now();
            let format = Format::new(n, k, bits, block).expect("format");
            let q = quantize_with(&w, format, None, 7, &kmeans).expect("quantize");
            let s = t0.elapsed().as_secs_f64();
            let ns = s * 1e9 / (n * k) as f64;
            let e = if calib > 0 {
                let x = gaussian(calib * k, 1.0, 99);
                let acts = Activations::new(&x, calib, k).expect("activations");
                let t1 = Instant::now();
                std::hint::black_box(acts.output_sq_diff_quantized(&w, &q).expect("error"));
                t1.elapsed().as_secs_f64()
            } else {
                0.0
            };
            println!(
                "| {name} {n}×{k} | {bits} | {s:.3} | {ns:.1} | {:.1} | {e:.3} |",
                (n * k) as f64 / s / 1e6
            );
            measured.0 += s;
            measured.1 += n * k;
            model_seconds += s * count as f64;
            model_error_seconds += e * count as f64;
        }
        println!("| whole model (494M weights) | {bits} | {model_seconds:.1} | | | {model_error_seconds:.1} |");
    }
}

/// `len` normal variates with standard deviation `sigma` (Box–Muller over
/// xorshift64*).
fn gaussian(len: usize, sigma: f32, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let (u1, u2) = (uniform(), uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        out.push((r * t.cos()) as f32 * sigma);
        if out.len() < len {
            out.push((r * t.sin()) as f32 * sigma);
        }
    }
    out
}
