//! Whole-model runs: the report describes exactly the tensors returned.

mod common;

use common::{decode, rel_frobenius, Rng};
use ditto_quantize::{
    quantize_model, ActiveBound, Candidate, Constraints, ErrorKind, ModelOptions, Tensor,
};

#[test]
fn report_matches_the_returned_tensors() {
    let mut rng = Rng::new(41);
    let (k, t) = (64, 40);
    let w1 = rng.normals(96 * k, 0.02);
    let w2 = rng.normals(32 * k, 0.02);
    let w3 = rng.normals(48 * k, 0.02);
    let x = rng.normals(t * k, 1.0);
    let imp: Vec<f32> = (0..k).map(|_| rng.uniform() as f32 + 0.1).collect();
    let tensors = [
        Tensor {
            name: "with_activations",
            n: 96,
            k,
            weights: &w1,
            importance: None,
            activations: Some(&x),
        },
        Tensor {
            name: "with_importance",
            n: 32,
            k,
            weights: &w2,
            importance: Some(&imp),
            activations: None,
        },
        Tensor {
            name: "plain",
            n: 48,
            k,
            weights: &w3,
            importance: None,
            activations: None,
        },
    ];
    let options = ModelOptions {
        candidates: Candidate::all_bits(128),
        constraints: Constraints {
            max_error: Some(0.1),
            bits_avg: None,
        },
        seed: 7,
        ..ModelOptions::default()
    };
    let model = quantize_model(&tensors, &options).unwrap();
    let report = &model.report;
    assert_eq!(report.active, ActiveBound::MaxError);
    assert_eq!(model.tensors.len(), 3);
    for ((tensor, q), r) in tensors.iter().zip(&model.tensors).zip(&report.tensors) {
        assert_eq!(
            (r.bits, r.block, r.bytes as usize),
            (q.bits, q.block, q.bytes())
        );
        assert_eq!(r.shape, [q.n, q.k]);
        assert!(r.error <= 0.1);
        // The reported error is the error of the returned tensor, recomputed here.
        let w_hat = decode(q);
        let err = match r.error_kind {
            ErrorKind::Output => {
                let (mut num, mut den) = (0.0f64, 0.0f64);
                for s in 0..t {
                    for row in 0..tensor.n {
                        let (mut y, mut yh) = (0.0f64, 0.0f64);
                        for c in 0..k {
                            y += tensor.weights[row * k + c] as f64 * x[s * k + c] as f64;
                            yh += w_hat[row * k + c] as f64 * x[s * k + c] as f64;
                        }
                        num += (y - yh).powi(2);
                        den += y * y;
                    }
                }
                (num / den).sqrt()
            }
            ErrorKind::WeightedWeight if tensor.importance.is_some() => {
                let (mut num, mut den) = (0.0f64, 0.0f64);
                for (i, (&a, &b)) in tensor.weights.iter().zip(&w_hat).enumerate() {
                    num += imp[i % k] as f64 * (a as f64 - b as f64).powi(2);
                    den += imp[i % k] as f64 * (a as f64).powi(2);
                }
                (num / den).sqrt()
            }
            ErrorKind::WeightedWeight => rel_frobenius(tensor.weights, &w_hat),
        };
        assert!(
            (err - r.error).abs() <= 1e-9 * err,
            "{}: {err} vs {}",
            r.name,
            r.error
        );
        // ε = 0.1 on Gaussian weights needs 4 bits (3 bits give about 0.18).
        assert_eq!(r.bits, 4, "{}", r.name);
    }
    assert_eq!(report.tensors[0].error_kind, ErrorKind::Output);
    assert_eq!(report.tensors[1].error_kind, ErrorKind::WeightedWeight);
}

#[test]
fn budget_mode_meets_the_budget() {
    let mut rng = Rng::new(42);
    let k = 128;
    let ws: Vec<Vec<f32>> = (0..4).map(|i| rng.normals((32 << i) * k, 0.02)).collect();
    let names = ["a", "b", "c", "d"];
    let tensors: Vec<Tensor> = ws
        .iter()
        .zip(names)
        .map(|(w, name)| Tensor {
            name,
            n: w.len() / k,
            k,
            weights: w,
            importance: None,
            activations: None,
        })
        .collect();
    let options = ModelOptions {
        candidates: Candidate::all_bits(256),
        constraints: Constraints {
            max_error: None,
            bits_avg: Some(3.6),
        },
        ..ModelOptions::default()
    };
    let model = quantize_model(&tensors, &options).unwrap();
    let total_bytes: usize = model.tensors.iter().map(|q| q.bytes()).sum();
    let elems: usize = ws.iter().map(Vec::len).sum();
    assert!(8.0 * total_bytes as f64 / elems as f64 <= 3.6);
    assert_eq!(model.report.totals.bytes as usize, total_bytes);
    assert_eq!(model.report.active, ActiveBound::BitsAvg);
}

#[test]
fn a_single_candidate_without_bounds_is_quantized_once_and_reported() {
    let mut rng = Rng::new(43);
    let k = 64;
    let w = rng.normals(40 * k, 0.02);
    let tensors = [Tensor {
        name: "only",
        n: 40,
        k,
        weights: &w,
        importance: None,
        activations: None,
    }];
    let options = ModelOptions {
        candidates: vec![Candidate {
            bits: 3,
            block: 128,
        }],
        seed: 1,
        ..ModelOptions::default()
    };
    let model = quantize_model(&tensors, &options).unwrap();
    assert_eq!(model.report.active, ActiveBound::None);
    let q = &model.tensors[0];
    assert_eq!(
        q,
        &ditto_quantize::quantize(&w, 40, k, None, 3, 128, tensors[0].seed(1)).unwrap()
    );
    let err = rel_frobenius(&w, &decode(q));
    assert!((err - model.report.tensors[0].error).abs() <= 1e-12 * err);
}
