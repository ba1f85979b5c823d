//! Error measurement against naive f64 products.

mod common;

use common::Rng;
use ditto_quantize::error::weighted_weight_error_quantized;
use ditto_quantize::{
    dequantize, quantize, relative_output_error, weighted_weight_error, Activations, QuantizeError,
};

/// ‖W Xᵀ − Ŵ Xᵀ‖_F / ‖W Xᵀ‖_F by forming both products in f64.
fn naive_output_error(w: &[f32], w_hat: &[f32], n: usize, k: usize, x: &[f32], t: usize) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for s in 0..t {
        for r in 0..n {
            let (mut y, mut y_hat) = (0.0f64, 0.0f64);
            for c in 0..k {
                y += w[r * k + c] as f64 * x[s * k + c] as f64;
                y_hat += w_hat[r * k + c] as f64 * x[s * k + c] as f64;
            }
            num += (y - y_hat) * (y - y_hat);
            den += y * y;
        }
    }
    (num / den).sqrt()
}

#[test]
fn output_error_matches_naive_products() {
    let mut rng = Rng::new(21);
    for (n, k, t) in [(3, 5, 2), (33, 16, 7), (70, 40, 50)] {
        let w = rng.normals(n * k, 1.0);
        let w_hat: Vec<f32> = w.iter().map(|&v| v + 0.05 * rng.normal() as f32).collect();
        let x = rng.normals(t * k, 2.0);
        let got = relative_output_error(&w, &w_hat, n, k, &x, t).unwrap();
        let want = naive_output_error(&w, &w_hat, n, k, &x, t);
        assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    }
}

#[test]
fn quantized_paths_match_the_dequantized_ones_and_thread_count_does_not_matter() {
    let mut rng = Rng::new(22);
    let (n, k, t) = (50, 64, 20);
    let w = rng.normals(n * k, 1.0);
    let x = rng.normals(t * k, 1.0);
    let imp: Vec<f32> = (0..k).map(|_| rng.uniform() as f32).collect();
    let q = quantize(&w, n, k, None, 3, 128, 0).unwrap();
    let w_hat = dequantize(&q).unwrap();
    let acts = Activations::new(&x, t, k).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                (
                    acts.output_sq_diff(&w, &w_hat, n).unwrap(),
                    acts.output_sq_diff_quantized(&w, &q).unwrap(),
                    weighted_weight_error_quantized(&w, &q, Some(&imp)).unwrap(),
                )
            })
    };
    let (a, b, c) = run(1);
    assert_eq!(a, b);
    assert_eq!(run(4), (a, b, c));
    assert_eq!(
        c,
        weighted_weight_error(&w, &w_hat, n, k, Some(&imp)).unwrap()
    );
}

#[test]
fn weighted_weight_error_matches_naive_sums() {
    let mut rng = Rng::new(23);
    let (n, k) = (40, 24);
    let w = rng.normals(n * k, 1.0);
    let w_hat: Vec<f32> = w.iter().map(|&v| v * 0.97).collect();
    let imp: Vec<f32> = (0..k).map(|_| rng.uniform() as f32 * 10.0).collect();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for i in 0..n * k {
        let s = imp[i % k] as f64;
        num += s * (w[i] as f64 - w_hat[i] as f64).powi(2);
        den += s * (w[i] as f64).powi(2);
    }
    let want = (num / den).sqrt();
    let got = weighted_weight_error(&w, &w_hat, n, k, Some(&imp)).unwrap();
    assert!((got - want).abs() <= 1e-12 * want);
    // Without importances: the plain relative Frobenius error, 0.03 here.
    let plain = weighted_weight_error(&w, &w_hat, n, k, None).unwrap();
    assert!((plain - 0.03).abs() < 1e-6, "{plain}");
}

/// With uncorrelated inputs of variances s_k, the output error converges to
/// the importance-weighted weight error with importances s_k.
#[test]
fn weighted_error_is_the_output_error_of_uncorrelated_inputs() {
    let mut rng = Rng::new(24);
    let (n, k, t) = (16, 8, 20_000);
    let sd: Vec<f64> = (0..k).map(|c| 0.2 + c as f64).collect();
    let x: Vec<f32> = (0..t * k)
        .map(|i| (rng.normal() * sd[i % k]) as f32)
        .collect();
    let w = rng.normals(n * k, 1.0);
    let w_hat: Vec<f32> = w.iter().map(|&v| v + 0.1 * rng.normal() as f32).collect();
    let imp: Vec<f32> = sd.iter().map(|s| (s * s) as f32).collect();
    let out = relative_output_error(&w, &w_hat, n, k, &x, t).unwrap();
    let diag = weighted_weight_error(&w, &w_hat, n, k, Some(&imp)).unwrap();
    assert!((out / diag - 1.0).abs() < 0.05, "{out} vs {diag}");
}

#[test]
fn degenerate_and_invalid_inputs() {
    let w = [1.0f32, 2.0];
    // 0/0 is 0; x/0 is infinite.
    assert_eq!(
        weighted_weight_error(&[0.0, 0.0], &[0.0, 0.0], 1, 2, None).unwrap(),
        0.0
    );
    assert_eq!(
        weighted_weight_error(&[0.0, 0.0], &w, 1, 2, None).unwrap(),
        f64::INFINITY
    );
    assert_eq!(
        relative_output_error(&w, &w, 1, 2, &[0.0, 0.0], 1).unwrap(),
        0.0
    );
    assert!(matches!(
        relative_output_error(&w, &w, 1, 2, &[0.0, 1.0, 2.0], 2),
        Err(QuantizeError::LengthMismatch {
            expected: 4,
            found: 3,
            ..
        })
    ));
    assert!(matches!(
        relative_output_error(&w, &w, 1, 2, &[0.0, f32::INFINITY], 1),
        Err(QuantizeError::NonFiniteActivation {
            sample: 0,
            channel: 1,
            ..
        })
    ));
    assert!(matches!(
        weighted_weight_error(&w, &w[..1], 1, 2, None),
        Err(QuantizeError::LengthMismatch { .. })
    ));
}
