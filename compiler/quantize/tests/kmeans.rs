//! Weighted 1-D k-means against closed forms and brute-force objectives.

mod common;

use common::{objective, Rng};
use ditto_quantize::{quantize_with, weighted_kmeans_1d, Format, KmeansOptions, Method};

const OPTS: KmeansOptions = KmeansOptions {
    max_iter: 1000,
    method: Method::Lloyd,
};

const EXACT: KmeansOptions = KmeansOptions {
    max_iter: 1000,
    method: Method::Exact,
};

#[test]
fn recovers_planted_clusters() {
    let centers = [-1.0f64, -0.3, 0.4, 1.2];
    for seed in 0..20 {
        let mut rng = Rng::new(seed);
        let mut values = Vec::new();
        for _ in 0..256 {
            let c = centers[rng.below(centers.len())];
            values.push((c + 0.01 * (2.0 * rng.uniform() - 1.0)) as f32);
        }
        let weights = vec![1.0f32; values.len()];
        for options in [OPTS, EXACT] {
            let fit = weighted_kmeans_1d(&values, &weights, 4, seed, &options).unwrap();
            assert!(fit.converged);
            for (got, want) in fit.centroids.iter().zip(centers) {
                assert!(
                    (got - want).abs() < 0.01,
                    "seed {seed}, {:?}: {:?}",
                    options.method,
                    fit.centroids
                );
            }
        }
    }
}

/// For a fixed assignment the optimal centroid is the importance-weighted
/// mean of its points: at convergence every centroid equals the weighted
/// mean of the points nearest to it (assignment recomputed here by brute force).
#[test]
fn converged_centroids_are_importance_weighted_means() {
    for (seed, k) in [(1u64, 4usize), (2, 8), (3, 16)] {
        let mut rng = Rng::new(seed);
        let values = rng.normals(500, 1.0);
        // Importances spanning four orders of magnitude.
        let weights: Vec<f32> = (0..500)
            .map(|_| 10f64.powf(4.0 * rng.uniform() - 2.0) as f32)
            .collect();
        let fit = weighted_kmeans_1d(&values, &weights, k, seed, &OPTS).unwrap();
        assert!(fit.converged);
        let mut sw = vec![0.0f64; k];
        let mut swx = vec![0.0f64; k];
        for (&x, &w) in values.iter().zip(&weights) {
            let j = (0..k)
                .min_by(|&a, &b| {
                    let (da, db) = (
                        (x as f64 - fit.centroids[a]).abs(),
                        (x as f64 - fit.centroids[b]).abs(),
                    );
                    da.total_cmp(&db)
                })
                .unwrap();
            sw[j] += w as f64;
            swx[j] += w as f64 * x as f64;
        }
        for j in 0..k {
            let mean = swx[j] / sw[j];
            assert!(
                (fit.centroids[j] - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                "k {k} cluster {j}: {} vs {mean}",
                fit.centroids[j]
            );
        }
    }
}

#[test]
fn a_heavy_point_pulls_its_centroid() {
    let values = [0.0f32, 1.0, 2.0, 10.0, 11.0, 12.0];
    let uniform = weighted_kmeans_1d(&values, &[1.0; 6], 2, 0, &OPTS).unwrap();
    assert_eq!(uniform.centroids, vec![1.0, 11.0]);
    let weights = [1.0f32, 1.0, 1.0, 1.0, 1.0, 100.0];
    let fit = weighted_kmeans_1d(&values, &weights, 2, 0, &OPTS).unwrap();
    // (10 + 11 + 100·12) / 102
    let expect = (10.0 + 11.0 + 1200.0) / 102.0;
    assert!(
        (fit.centroids[1] - expect).abs() < 1e-12,
        "{:?}",
        fit.centroids
    );
    assert_eq!(fit.centroids[0], 1.0);
}

#[test]
fn objective_never_increases_across_iterations() {
    for seed in 0..30u64 {
        let mut rng = Rng::new(seed);
        let n = 64 + rng.below(400);
        let k = [4usize, 8, 16, 32][rng.below(4)];
        // Heavy-tailed values (normal cubed) and random importances, some zero.
        let values: Vec<f32> = (0..n).map(|_| rng.normal().powi(3) as f32).collect();
        let weights: Vec<f32> = (0..n)
            .map(|_| {
                if rng.uniform() < 0.1 {
                    0.0
                } else {
                    rng.uniform() as f32
                }
            })
            .collect();
        let fit = weighted_kmeans_1d(&values, &weights, k, seed, &OPTS).unwrap();
        assert!(fit.trace.len() >= 2, "seeding plus at least one update");
        let js: Vec<f64> = fit
            .trace
            .iter()
            .map(|c| objective(&values, &weights, c))
            .collect();
        for (i, w) in js.windows(2).enumerate() {
            assert!(
                w[1] <= w[0] * (1.0 + 1e-12) + 1e-300,
                "seed {seed} step {i}: {js:?}"
            );
        }
        assert_eq!(fit.trace.last().unwrap(), &fit.centroids);
    }
}

#[test]
fn fewer_distinct_values_than_centroids_is_exact() {
    let values = [3.0f32, 1.0, 3.0, 1.0, 2.0];
    let fit = weighted_kmeans_1d(&values, &[1.0; 5], 4, 0, &OPTS).unwrap();
    assert_eq!(fit.centroids, vec![1.0, 2.0, 3.0, 3.0]);
    assert_eq!(fit.iterations, 0);
}

#[test]
fn quantize_is_deterministic_across_thread_counts() {
    let mut rng = Rng::new(5);
    let (n, k) = (96, 128);
    let w = rng.normals(n * k, 0.02);
    let imp: Vec<f32> = (0..k).map(|_| rng.uniform() as f32).collect();
    let format = Format::new(n, k, 4, 64).unwrap();
    for options in [EXACT, OPTS] {
        let run = |threads: usize, seed: u64| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| quantize_with(&w, format, Some(&imp), seed, &options).unwrap())
        };
        let one = run(1, 42);
        assert_eq!(one, run(4, 42));
        assert_eq!(one, run(3, 42));
        // The exact solution does not depend on the seed; k-means++ seeding
        // from another seed gives a different (valid) result.
        let other = run(2, 43);
        if options.method == Method::Exact {
            assert_eq!(one, other);
        } else {
            assert_ne!(one.codebooks, other.codebooks);
        }
    }
}

/// The exact solver's objective is never above Lloyd's from any seed, on
/// blocks shaped like a layer's weights (heavy-tailed, importances spread
/// over orders of magnitude), and is strictly below it on most.
#[test]
fn exact_kmeans_is_never_worse_than_lloyd() {
    let mut rng = Rng::new(9);
    let mut strictly = 0;
    for trial in 0..40 {
        let n = 256 + 16 * trial;
        // Student-t-like tails: a normal divided by a random scale.
        let values: Vec<f32> = rng
            .normals(n, 1.0)
            .into_iter()
            .map(|v| v / (0.3 + rng.uniform() as f32))
            .collect();
        let weights: Vec<f32> = (0..n)
            .map(|_| 10f64.powf(3.0 * rng.uniform() - 1.5) as f32)
            .collect();
        let k = [4, 8, 16, 32][trial % 4];
        let exact = weighted_kmeans_1d(&values, &weights, k, 0, &EXACT).unwrap();
        let j_exact = objective(&values, &weights, &exact.centroids);
        for seed in 0..3 {
            let lloyd = weighted_kmeans_1d(&values, &weights, k, seed, &OPTS).unwrap();
            let j_lloyd = objective(&values, &weights, &lloyd.centroids);
            assert!(
                j_exact <= j_lloyd * (1.0 + 1e-9),
                "trial {trial}, k = {k}, seed {seed}: exact {j_exact} > Lloyd {j_lloyd}"
            );
            if j_exact < j_lloyd * (1.0 - 1e-6) {
                strictly += 1;
            }
        }
    }
    assert!(
        strictly > 60,
        "exact below Lloyd in only {strictly} of 120 runs"
    );
}

/// The best objective over every way to cut the sorted values into `k`
/// runs (in one dimension the optimal clusters are runs).
fn brute_force(values: &[f32], weights: &[f32], k: usize) -> f64 {
    let mut pairs: Vec<(f64, f64)> = values
        .iter()
        .zip(weights)
        .map(|(&x, &w)| (x as f64, w as f64))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    fn go(p: &[(f64, f64)], k: usize) -> f64 {
        let run = |r: &[(f64, f64)]| {
            let w: f64 = r.iter().map(|p| p.1).sum();
            if w <= 0.0 {
                return 0.0;
            }
            let m = r.iter().map(|p| p.1 * p.0).sum::<f64>() / w;
            r.iter().map(|p| p.1 * (p.0 - m).powi(2)).sum::<f64>()
        };
        if k == 1 {
            return run(p);
        }
        (1..=p.len() - (k - 1))
            .map(|cut| run(&p[..cut]) + go(&p[cut..], k - 1))
            .fold(f64::INFINITY, f64::min)
    }
    go(&pairs, k)
}

#[test]
fn exact_kmeans_matches_brute_force_on_small_problems() {
    let mut rng = Rng::new(5);
    for trial in 0..60 {
        let u = 5 + trial % 9;
        let k = 1 + trial % 4;
        // Heavy-tailed distinct values, some weights zero.
        let values: Vec<f32> = (0..u)
            .map(|_| {
                let g = 2.0 * rng.uniform() - 1.0;
                (g * g * g * 10.0 + 3.0) as f32
            })
            .collect();
        let weights: Vec<f32> = (0..u)
            .map(|i| {
                if i % 5 == 4 {
                    0.0
                } else {
                    (rng.uniform() + 0.01) as f32
                }
            })
            .collect();
        let fit = weighted_kmeans_1d(&values, &weights, k, 0, &EXACT).unwrap();
        assert_eq!(fit.centroids.len(), k);
        assert!(
            fit.centroids.windows(2).all(|c| c[0] <= c[1]),
            "{:?}",
            fit.centroids
        );
        let got = objective(&values, &weights, &fit.centroids);
        let want = brute_force(&values, &weights, k);
        assert!(
            got <= want * (1.0 + 1e-9) + 1e-12,
            "trial {trial}: {got} vs optimum {want}"
        );
    }
}

/// Three tight clusters far from zero (where prefix sums of x² would
/// cancel away their spread): the exact centroids are their means.
#[test]
fn exact_kmeans_finds_tight_clusters_far_from_zero() {
    let clusters: [&[f32]; 3] = [
        &[1000.0, 1000.5, 1001.0],
        &[1010.0, 1010.2],
        &[1030.0, 1030.1, 1030.2],
    ];
    let values: Vec<f32> = clusters.concat();
    let fit = weighted_kmeans_1d(&values, &vec![1.0; values.len()], 3, 0, &EXACT).unwrap();
    for (c, cluster) in fit.centroids.iter().zip(clusters) {
        let mean = cluster.iter().map(|&x| x as f64).sum::<f64>() / cluster.len() as f64;
        assert!((c - mean).abs() < 1e-9, "{:?}", fit.centroids);
    }
}

#[test]
fn options_missing_a_field_take_the_default() {
    let default = KmeansOptions::default();
    let parsed: KmeansOptions = serde_json::from_str(r#"{"max_iter": 7}"#).unwrap();
    assert_eq!(
        parsed,
        KmeansOptions {
            max_iter: 7,
            ..default
        }
    );
    assert_eq!(parsed.method, Method::Auto, "the default method");
    let round_trip: KmeansOptions =
        serde_json::from_str(&serde_json::to_string(&default).unwrap()).unwrap();
    assert_eq!(round_trip, default);
}

/// The default method solves codebooks of up to 64 centroids exactly (the
/// same fit as `Method::Exact`) and larger ones by Lloyd iterations (the
/// same fit as `Method::Lloyd` from the same seed).
#[test]
fn auto_is_exact_up_to_64_centroids() {
    let mut rng = Rng::new(21);
    let values: Vec<f32> = rng.normals(4096, 1.0);
    let weights: Vec<f32> = (0..values.len()).map(|_| rng.uniform() as f32).collect();
    let auto = KmeansOptions::default();
    assert_eq!(auto.method, Method::Auto);
    for (k, like) in [(4, EXACT), (64, EXACT), (128, OPTS), (256, OPTS)] {
        let like = KmeansOptions {
            max_iter: auto.max_iter,
            ..like
        };
        let got = weighted_kmeans_1d(&values, &weights, k, 3, &auto).unwrap();
        let want = weighted_kmeans_1d(&values, &weights, k, 3, &like).unwrap();
        assert_eq!(got, want, "k = {k}");
        assert_eq!(Method::Auto.is_exact(k), like.method == Method::Exact);
    }
}
