//! A whole-model run on a synthetic two-layer model with Qwen2.5-Coder-0.5B's
//! projection shapes: error curves at every width, allocation under an error
//! bound and under a size budget, progress bars, Markdown reports.
//!
//! ```text
//! cargo run --release -p ditto-quantize --example allocate -- [--max-error 0.1] [--bits-avg 4.5] [--block 256]
//! ```
//!
//! Layers get different weight scales and calibration inputs with a few
//! "massive" channels, so the tensors' error curves differ.

use ditto_quantize::{quantize_model, Candidate, Constraints, ModelOptions, Tensor};

fn main() {
    let mut max_error = 0.1;
    let mut bits_avg = 4.5;
    let mut block = 256;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--max-error" => max_error = value.parse().expect("--max-error ε"),
            "--bits-avg" => bits_avg = value.parse().expect("--bits-avg B̄"),
            "--block" => block = value.parse().expect("--block B"),
            other => panic!("unknown argument {other}"),
        }
    }
    let (d, ffn, kv, t) = (896, 4864, 128, 64);
    let mut rng = Rng(0x1234_5678);
    let shapes = [
        ("attn_q", d, d),
        ("attn_k", kv, d),
        ("attn_v", kv, d),
        ("attn_output", d, d),
        ("ffn_gate", ffn, d),
        ("ffn_up", ffn, d),
        ("ffn_down", d, ffn),
    ];
    let mut names = Vec::new();
    let mut data = Vec::new();
    for layer in 0..2 {
        for (name, n, k) in shapes {
            // Heavier tails in layer 1 (Student-t-like: normal / sqrt(uniform)).
            let w: Vec<f32> = (0..n * k)
                .map(|_| {
                    let z = rng.normal() * 0.02;
                    (if layer == 1 {
                        z / rng.uniform().sqrt().max(0.2)
                    } else {
                        z
                    }) as f32
                })
                .collect();
            // Inputs: unit variance, every 97th channel 20× larger.
            let x: Vec<f32> = (0..t * k)
                .map(|i| (rng.normal() * if (i % k) % 97 == 0 { 20.0 } else { 1.0 }) as f32)
                .collect();
            let imp: Vec<f32> = (0..k)
                .map(|c| (0..t).map(|s| x[s * k + c] * x[s * k + c]).sum::<f32>() / t as f32)
                .collect();
            names.push(format!("blk.{layer}.{name}.weight"));
            data.push((n, k, w, x, imp));
        }
    }
    let tensors: Vec<Tensor> = names
        .iter()
        .zip(&data)
        .map(|(name, (n, k, w, x, imp))| Tensor {
            name,
            n: *n,
            k: *k,
            weights: w,
            importance: Some(imp),
            activations: Some(x),
            hessian: None,
        })
        .collect();
    for constraints in [
        Constraints {
            max_error: Some(max_error),
            bits_avg: None,
        },
        Constraints {
            max_error: None,
            bits_avg: Some(bits_avg),
        },
    ] {
        let options = ModelOptions {
            candidates: Candidate::all_bits(block),
            constraints,
            seed: 0,
            progress: true,
            ..ModelOptions::default()
        };
        let start = std::time::Instant::now();
        let model = quantize_model(&tensors, &options).expect("quantize_model");
        println!("{}", model.report.to_markdown());
        println!(
            "({:.1} s: {} tensors measured at {} candidates and quantized)\n",
            start.elapsed().as_secs_f64(),
            tensors.len(),
            options.candidates.len()
        );
    }
}

/// xorshift64* and Box–Muller, enough for test data.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}
