//! Bit allocation on synthetic error curves with known answers.

mod common;

use common::Rng;
use ditto_quantize::{
    allocate, ActiveBound, Allocation, Constraints, Curve, ErrorKind, Format, Measured,
    QuantizeError, Report, SUPPORTED_BITS,
};

/// A tensor whose error at b bits is `a · 2^-b`, with the real storage of
/// the codebook format at block `block`.
fn curve(name: &str, n: usize, k: usize, a: f64, block: usize) -> Curve {
    let points = SUPPORTED_BITS
        .iter()
        .map(|&bits| Measured {
            bits,
            block,
            error: a * 2f64.powi(-(bits as i32)),
            bytes: Format::new(n, k, bits, block).unwrap().bytes() as u64,
        })
        .collect();
    Curve {
        name: name.into(),
        n,
        k,
        kind: ErrorKind::WeightedWeight,
        points,
    }
}

fn chosen_bits(curves: &[Curve], a: &Allocation) -> Vec<u8> {
    curves
        .iter()
        .zip(&a.choice)
        .map(|(c, &i)| c.points[i].bits)
        .collect()
}

fn error_only(eps: f64) -> Constraints {
    Constraints {
        max_error: Some(eps),
        bits_avg: None,
    }
}

fn budget_only(bits_avg: f64) -> Constraints {
    Constraints {
        max_error: None,
        bits_avg: Some(bits_avg),
    }
}

#[test]
fn max_error_picks_the_fewest_bits_that_meet_it() {
    let curves = vec![
        curve("a", 64, 256, 1.0, 256),
        curve("b", 64, 256, 10.0, 256),
        curve("c", 128, 256, 0.1, 256),
        curve("d", 32, 512, 1000.0, 256),
    ];
    let eps = 0.05;
    let alloc = allocate(&curves, &error_only(eps)).unwrap();
    assert_eq!(alloc.active, ActiveBound::MaxError);
    // Closed form: the smallest b in {2,3,4,5,6,8} with a·2^-b ≤ ε.
    for (c, bits) in curves.iter().zip(chosen_bits(&curves, &alloc)) {
        let a = c.points[0].error * 4.0;
        let want = *SUPPORTED_BITS
            .iter()
            .find(|&&b| a * 2f64.powi(-(b as i32)) <= eps)
            .unwrap_or(&8);
        assert_eq!(bits, want, "{}", c.name);
    }
    // "d" cannot meet ε even at 8 bits (1000/256 > 0.05): it gets its most
    // accurate candidate and the report says so.
    let report = Report::new(&curves, &alloc, &error_only(eps)).unwrap();
    let d = &report.tensors[3];
    assert_eq!((d.bits, d.within_max_error), (8, Some(false)));
    assert_eq!(report.totals.over_max_error, 1);
    assert!(report.tensors[..3]
        .iter()
        .all(|t| t.within_max_error == Some(true)));
}

#[test]
fn max_error_is_minimal_by_brute_force() {
    let mut rng = Rng::new(31);
    for _ in 0..50 {
        // Non-monotone error curves with random storage: the allocator must
        // still pick the cheapest candidate under ε.
        let points: Vec<Measured> = (0..6)
            .map(|i| Measured {
                bits: SUPPORTED_BITS[i],
                block: 256,
                error: rng.uniform(),
                bytes: 1 + rng.below(1000) as u64,
            })
            .collect();
        let c = Curve {
            name: "t".into(),
            n: 16,
            k: 16,
            kind: ErrorKind::Output,
            points,
        };
        let eps = rng.uniform();
        let alloc = allocate(std::slice::from_ref(&c), &error_only(eps)).unwrap();
        let chosen = &c.points[alloc.choice[0]];
        let cheapest_ok = c
            .points
            .iter()
            .filter(|p| p.error <= eps)
            .map(|p| p.bytes)
            .min();
        match cheapest_ok {
            Some(bytes) => assert!(chosen.error <= eps && chosen.bytes == bytes),
            None => assert!(c.points.iter().all(|p| p.error >= chosen.error)),
        }
    }
}

/// With unit storage steps and convex error curves, marginal-return greedy
/// is exactly optimal; compare with exhaustive search at every budget.
#[test]
fn budget_greedy_is_optimal_on_convex_unit_step_curves() {
    let mut rng = Rng::new(32);
    for trial in 0..30 {
        let tensors = 2 + rng.below(3);
        let curves: Vec<Curve> = (0..tensors)
            .map(|t| {
                let a = 0.1 + rng.uniform() * 10.0;
                let r = 0.3 + 0.5 * rng.uniform();
                let points = (0..6)
                    .map(|s| Measured {
                        bits: SUPPORTED_BITS[s],
                        block: 256,
                        error: a * r.powi(s as i32),
                        bytes: 100 * (s as u64 + 1),
                    })
                    .collect();
                Curve {
                    name: format!("t{t}"),
                    n: 10,
                    k: 80,
                    kind: ErrorKind::Output,
                    points,
                }
            })
            .collect();
        let elems = 800.0 * tensors as f64;
        for steps in tensors..=6 * tensors {
            let budget = 8.0 * 100.0 * steps as f64 / elems;
            let alloc = allocate(&curves, &budget_only(budget)).unwrap();
            let total = |choice: &[usize]| -> f64 {
                curves
                    .iter()
                    .zip(choice)
                    .map(|(c, &i)| c.elements() as f64 * c.points[i].error.powi(2))
                    .sum()
            };
            // Exhaustive search over all 6^tensors allocations.
            let mut best = f64::INFINITY;
            let mut choice = vec![0usize; tensors];
            loop {
                let used: usize = choice.iter().map(|&i| i + 1).sum();
                if used <= steps {
                    best = best.min(total(&choice));
                }
                let mut d = 0;
                while d < tensors && choice[d] == 5 {
                    choice[d] = 0;
                    d += 1;
                }
                if d == tensors {
                    break;
                }
                choice[d] += 1;
            }
            assert!(alloc.bits_per_weight(&curves) <= budget + 1e-12);
            let got = total(&alloc.choice);
            assert!(
                (got - best).abs() <= 1e-9 * best,
                "trial {trial} steps {steps}: {got} vs {best}"
            );
        }
    }
}

#[test]
fn budget_is_met_and_no_upgrade_would_fit() {
    let curves = vec![
        curve("embed", 1024, 256, 0.5, 256),
        curve("q", 256, 256, 2.0, 256),
        curve("k", 64, 256, 8.0, 256),
        curve("ffn", 1024, 512, 1.0, 256),
    ];
    let elems: u64 = curves.iter().map(Curve::elements).sum();
    for budget in [2.5, 3.0, 3.7, 4.25, 5.0, 6.1] {
        let alloc = allocate(&curves, &budget_only(budget)).unwrap();
        assert_eq!(alloc.active, ActiveBound::BitsAvg);
        let bits = alloc.bits_per_weight(&curves);
        assert!(bits <= budget, "{bits} > {budget}");
        let bytes: u64 = curves
            .iter()
            .zip(&alloc.choice)
            .map(|(c, &i)| c.points[i].bytes)
            .sum();
        for (c, &i) in curves.iter().zip(&alloc.choice) {
            for p in &c.points {
                let extra = p.bytes as i64 - c.points[i].bytes as i64;
                let fits = 8.0 * (bytes as i64 + extra) as f64 <= budget * elems as f64;
                assert!(
                    !(extra > 0 && p.error < c.points[i].error && fits),
                    "{} could still grow",
                    c.name
                );
            }
        }
    }
    // The more sensitive tensor (k: 8·2^-b) never gets fewer bits than the
    // less sensitive one of the same row length (q: 2·2^-b).
    let alloc = allocate(&curves, &budget_only(3.7)).unwrap();
    let bits = chosen_bits(&curves, &alloc);
    assert!(bits[2] >= bits[1], "{bits:?}");
}

/// Each tensor's squared error counts once per weight. Two tensors with the
/// same error curve, one 64 times the other, and the budget of 3 bits for
/// both (3.5 bits per weight with codebooks): both take 3 bits. Counted once
/// per tensor, the small one would take 8 bits and the large one stay at 2.
#[test]
fn budget_weighs_errors_by_tensor_size() {
    let curves = vec![
        curve("large", 2048, 256, 1.0, 256),
        curve("small", 32, 256, 1.0, 256),
    ];
    let alloc = allocate(&curves, &budget_only(3.5)).unwrap();
    assert_eq!(chosen_bits(&curves, &alloc), vec![3, 3]);
}

#[test]
fn both_bounds_report_the_active_one() {
    let curves = vec![curve("a", 64, 256, 1.0, 256), curve("b", 64, 256, 4.0, 256)];
    // ε = 0.07 needs 4 and 6 bits: 4 + 16·16/256 = 5 and 6 + 16·64/256 = 10
    // bits/weight with codebooks, 7.5 on average.
    let loose = Constraints {
        max_error: Some(0.07),
        bits_avg: Some(7.5),
    };
    let alloc = allocate(&curves, &loose).unwrap();
    assert_eq!(alloc.active, ActiveBound::MaxError);
    assert_eq!(chosen_bits(&curves, &alloc), vec![4, 6]);
    let tight = Constraints {
        max_error: Some(0.07),
        bits_avg: Some(5.0),
    };
    let alloc = allocate(&curves, &tight).unwrap();
    assert_eq!(alloc.active, ActiveBound::BitsAvg);
    assert!(alloc.bits_per_weight(&curves) <= 5.0);
    let report = Report::new(&curves, &alloc, &tight).unwrap();
    assert!(report.totals.over_max_error >= 1);
    // A budget everything fits in: no bound is active, all at their best.
    let alloc = allocate(&curves, &budget_only(100.0)).unwrap();
    assert_eq!(alloc.active, ActiveBound::None);
    assert_eq!(chosen_bits(&curves, &alloc), vec![8, 8]);
    // No bound at all: the same (an unlimited budget).
    let alloc = allocate(&curves, &Constraints::default()).unwrap();
    assert_eq!(alloc.active, ActiveBound::None);
    assert_eq!(chosen_bits(&curves, &alloc), vec![8, 8]);
}

#[test]
fn invalid_bounds_and_curves() {
    let curves = vec![curve("a", 64, 256, 1.0, 256)];
    assert!(matches!(
        allocate(&curves, &error_only(-1.0)),
        Err(QuantizeError::BadBound { .. })
    ));
    assert!(matches!(
        allocate(&curves, &budget_only(f64::NAN)),
        Err(QuantizeError::BadBound { .. })
    ));
    // 2 bits at block 256 need 2 + 16·4/256 = 2.25 bits per weight.
    match allocate(&curves, &budget_only(2.2)) {
        Err(QuantizeError::InfeasibleBudget { minimum, .. }) => assert_eq!(minimum, 2.25),
        other => panic!("{other:?}"),
    }
    let empty = vec![Curve {
        name: "e".into(),
        n: 1,
        k: 8,
        kind: ErrorKind::Output,
        points: vec![],
    }];
    assert!(matches!(
        allocate(&empty, &error_only(0.1)),
        Err(QuantizeError::NoCandidates { .. })
    ));
    let mut nan = curves.clone();
    nan[0].points[2].error = f64::NAN;
    assert!(matches!(
        allocate(&nan, &error_only(0.1)),
        Err(QuantizeError::BadCandidateError { bits: 4, .. })
    ));
}

#[test]
fn report_totals_json_and_markdown() {
    let curves = vec![
        curve("blk.0.attn_q.weight", 64, 256, 1.0, 256),
        curve("blk.0.ffn|odd", 128, 256, 4.0, 256),
    ];
    let constraints = Constraints {
        max_error: Some(0.07),
        bits_avg: Some(9.0),
    };
    let alloc = allocate(&curves, &constraints).unwrap();
    let report = Report::new(&curves, &alloc, &constraints).unwrap();
    let t = &report.tensors[0];
    // 4 bits, block 256: 64·256/2 index bytes, 64 codebooks of 16 f16.
    assert_eq!((t.bits, t.index_bytes, t.codebook_bytes), (4, 8192, 2048));
    assert_eq!(t.bytes, t.index_bytes + t.codebook_bytes);
    assert_eq!(t.bits_per_weight, 5.0);
    assert_eq!(report.totals.elements, 64 * 256 + 128 * 256);
    assert_eq!(
        report.totals.bytes,
        report.tensors.iter().map(|t| t.bytes).sum::<u64>()
    );
    let mean = (t.error * 16384.0 + report.tensors[1].error * 32768.0) / 49152.0;
    assert!((report.totals.mean_error - mean).abs() < 1e-15);
    let back: Report = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(back, report);
    let md = report.to_markdown();
    assert!(md.contains("active bound: max error"), "{md}");
    assert!(
        md.contains("| blk.0.attn_q.weight | 64×256 | 4 | 256 |"),
        "{md}"
    );
    assert!(md.contains("blk.0.ffn\\|odd"), "{md}");
}
