//! Weighted 1-D k-means against closed forms and brute-force objectives.

mod common;

use common::{objective, Rng};
use ditto_quantize::{quantize_with, weighted_kmeans_1d, Format, KmeansOptions};

const OPTS: KmeansOptions = KmeansOptions {
    max_iter: 1000,
    exact: false,
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
        for options in [OPTS, KmeansOptions::default()] {
            let fit = weighted_kmeans_1d(&values, &weights, 4, seed, &options).unwrap();
            assert!(fit.converged);
            for (got, want) in fit.centroids.iter().zip(centers) {
                assert!(
                    (got - want).abs() < 0.01,
                    "seed {seed}, exact {}: {:?}",
                    options.exact,
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
    for options in [KmeansOptions::default(), OPTS] {
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
        if options.exact {
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
        let exact = weighted_kmeans_1d(&values, &weights, k, 0, &KmeansOptions::default()).unwrap();
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
