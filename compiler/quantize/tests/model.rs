//! Whole-model runs: the report describes exactly the tensors returned.

mod common;

use common::{decode, rel_frobenius, Rng};
use ditto_quantize::{
    quantize_model, ActiveBound, Candidate, Constraints, ErrorKind, ModelOptions, Override, Tensor,
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
            hessian: None,
        },
        Tensor {
            name: "with_importance",
            n: 32,
            k,
            weights: &w2,
            importance: Some(&imp),
            activations: None,
            hessian: None,
        },
        Tensor {
            name: "plain",
            n: 48,
            k,
            weights: &w3,
            importance: None,
            activations: None,
            hessian: None,
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
            hessian: None,
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
        hessian: None,
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

/// XᵀX of `t` rows of `k` inputs.
fn gram(x: &[f32], t: usize, k: usize) -> Vec<f32> {
    let mut h = vec![0.0f32; k * k];
    for s in 0..t {
        let row = &x[s * k..(s + 1) * k];
        for i in 0..k {
            for j in 0..k {
                h[i * k + j] += row[i] * row[j];
            }
        }
    }
    h
}

#[test]
fn a_hessian_lowers_the_reported_error_and_the_report_is_that_of_the_result() {
    let mut rng = Rng::new(5);
    let (n, k, t) = (64, 128, 300);
    let w = rng.normals(n * k, 0.02);
    // Correlated inputs x = z·M + z. (Not a component shared by every
    // channel: the unweighted k-means centroids are their clusters' means,
    // so nearest rounding already cancels the error along 1.)
    let z = rng.normals(t * k, 1.0);
    let m = rng.normals(k * k, 1.0);
    let x: Vec<f32> = (0..t * k)
        .map(|i| {
            let (s, j) = (i / k, i % k);
            (0..k).map(|c| z[s * k + c] * m[c * k + j]).sum::<f32>() + z[i]
        })
        .collect();
    let h = gram(&x, t, k);
    let tensor = |hessian| Tensor {
        name: "w",
        n,
        k,
        weights: &w,
        importance: None,
        activations: Some(&x),
        hessian,
    };
    for candidates in [
        vec![Candidate {
            bits: 3,
            block: 128,
        }],
        Candidate::all_bits(128),
    ] {
        let options = ModelOptions {
            candidates,
            constraints: Constraints {
                max_error: Some(0.2),
                bits_avg: None,
            },
            ..ModelOptions::default()
        };
        let nearest = quantize_model(&[tensor(None)], &options).unwrap();
        let compensated = quantize_model(&[tensor(Some(&h))], &options).unwrap();
        let (a, b) = (&nearest.report.tensors[0], &compensated.report.tensors[0]);
        assert!(!a.compensated);
        assert!(b.compensated, "compensation did not lower the error");
        assert_eq!((a.bits, a.block), (b.bits, b.block));
        assert!(b.error < 0.9 * a.error, "{} vs {}", b.error, a.error);
        // The reported error is the returned tensor's, recomputed here.
        let w_hat = decode(&compensated.tensors[0]);
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for s in 0..t {
            for row in 0..n {
                let (mut y, mut yh) = (0.0f64, 0.0f64);
                for c in 0..k {
                    y += w[row * k + c] as f64 * x[s * k + c] as f64;
                    yh += w_hat[row * k + c] as f64 * x[s * k + c] as f64;
                }
                num += (y - yh).powi(2);
                den += y * y;
            }
        }
        let err = (num / den).sqrt();
        assert!((err - b.error).abs() <= 1e-9 * err, "{err} vs {}", b.error);
        assert_eq!(compensated.report.totals.max_error, b.error);
    }
}

#[test]
fn overrides_fix_the_matching_tensors_and_the_budget_covers_them() {
    let mut rng = Rng::new(47);
    let k = 64;
    let names = [
        "blk.0.attn_v.weight",
        "blk.1.attn_v.weight",
        "output.weight",
    ];
    let ws: Vec<Vec<f32>> = names.iter().map(|_| rng.normals(32 * k, 0.02)).collect();
    let tensors: Vec<Tensor> = names
        .iter()
        .zip(&ws)
        .map(|(name, w)| Tensor {
            name,
            n: 32,
            k,
            weights: w,
            importance: None,
            activations: None,
            hessian: None,
        })
        .collect();
    let fixed = Candidate {
        bits: 4,
        block: 512,
    };
    let options = ModelOptions {
        candidates: Candidate::all_bits(256),
        overrides: vec![Override {
            pattern: "blk.*.attn_v.weight".into(),
            candidate: fixed,
        }],
        constraints: Constraints {
            max_error: None,
            bits_avg: Some(4.0),
        },
        ..ModelOptions::default()
    };
    let model = quantize_model(&tensors, &options).unwrap();
    for (entry, name) in model.report.tensors.iter().zip(names) {
        let expected = name.starts_with("blk.");
        assert_eq!(
            (entry.bits, entry.block) == (fixed.bits, fixed.block),
            expected,
            "{name}: {} bits, block {}",
            entry.bits,
            entry.block
        );
    }
    // Two tensors at 4.5 bits per weight leave the third 3: only b = 2 at
    // B = 256 (2.25) fits; b = 3 costs 3.5.
    let out = &model.report.tensors[2];
    assert_eq!((out.bits, out.block), (2, 256));
    assert!(model.report.totals.bits_per_weight <= 4.0);
}

#[test]
fn an_override_that_matches_no_tensor_is_an_error() {
    let w = vec![0.01f32; 8 * 64];
    let tensors = [Tensor {
        name: "blk.0.attn_v.weight",
        n: 8,
        k: 64,
        weights: &w,
        importance: None,
        activations: None,
        hessian: None,
    }];
    let options = ModelOptions {
        candidates: Candidate::all_bits(256),
        overrides: vec![Override {
            pattern: "blk.*.atn_v.weight".into(),
            candidate: Candidate {
                bits: 6,
                block: 2048,
            },
        }],
        ..ModelOptions::default()
    };
    let err = quantize_model(&tensors, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--tensor-bits pattern `blk.*.atn_v.weight` matches no quantized tensor"
    );
}

#[test]
fn override_patterns_match_whole_names_with_stars() {
    let o = |pattern: &str| Override {
        pattern: pattern.into(),
        candidate: Candidate {
            bits: 4,
            block: 512,
        },
    };
    assert!(o("output.weight").matches("output.weight"));
    assert!(!o("output").matches("output.weight"));
    assert!(!o("weight").matches("output.weight"));
    assert!(o("blk.*.attn_v.weight").matches("blk.12.attn_v.weight"));
    assert!(!o("blk.*.attn_v.weight").matches("blk.12.attn_q.weight"));
    assert!(o("*attn*").matches("blk.3.attn_output.weight"));
    assert!(o("blk.1*.ffn_*.weight").matches("blk.17.ffn_down.weight"));
    assert!(!o("blk.1*.ffn_*.weight").matches("blk.2.ffn_down.weight"));
    assert!(o("*").matches(""));
    assert!(o("a*b*c").matches("abbbc"));
    assert!(!o("a*b*c").matches("abcb"));
}
