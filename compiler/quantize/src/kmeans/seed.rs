//! k-means++ initialisation (Arthur & Vassilvitskii 2007) with importance
//! weights: the first centre is drawn with probability ∝ w_u, each further
//! centre with probability ∝ w_u · D(x_u)², where D is the distance to the
//! nearest centre chosen so far.
//!
//! On sorted points, adding a centre `c` between the chosen neighbours `l < c
//! < r` can only lower D for the points strictly between the midpoints
//! `(l + c)/2` and `(c + r)/2`, a contiguous range found by walking out from
//! `c`, so only that range is updated. The sampling mass `w_u D_u²` is kept
//! summed per chunk of [`CHUNK`] points (each touched chunk re-summed from
//! scratch, so nothing drifts), and a draw scans the chunk sums, then one
//! chunk. Seeding costs about O(U log k + k U / CHUNK) instead of O(k U).

use super::points::Points;
use crate::rng::SplitMix64;

/// Points per mass chunk.
const CHUNK: usize = 16;

/// Scratch space of [`plus_plus`].
#[derive(Debug, Default)]
pub(crate) struct SeedScratch {
    /// D_u², the squared distance to the nearest chosen centre.
    d2: Vec<f64>,
    /// Σ w_u D_u² per chunk.
    mass: Vec<f64>,
}

/// Chooses `k` centres among the points (requires `points.len() > k ≥ 1` and a
/// positive total weight) and leaves them in `centers`, sorted ascending.
///
/// Every centre is a distinct point: a chosen point has D = 0 and so zero
/// probability. If the remaining weighted mass is zero (all weight sits on
/// chosen points) the farthest remaining point by plain D² is taken instead.
pub(crate) fn plus_plus(
    points: &Points,
    k: usize,
    rng: &mut SplitMix64,
    s: &mut SeedScratch,
    centers: &mut Vec<f64>,
) {
    let ws = &points.ws[..];
    let u = points.len();
    debug_assert!(u > k && k >= 1);
    centers.clear();
    s.d2.clear();
    s.d2.resize(u, f64::INFINITY);
    s.mass.clear();
    s.mass.resize(u.div_ceil(CHUNK), 0.0);

    let first = sample(ws, points.total_weight(), rng.next_f64());
    add_center(points, s, centers, first);
    while centers.len() < k {
        let total: f64 = s.mass.iter().sum();
        let next = if total > 0.0 {
            let target = rng.next_f64() * total;
            draw(ws, &s.d2, &s.mass, target)
        } else {
            argmax(&s.d2)
        };
        add_center(points, s, centers, next);
    }
    centers.sort_unstable_by(f64::total_cmp);
}

/// Adds point `u`'s value `c = x_u` as a centre and lowers D² where `c` is
/// nearer.
///
/// Walking left from `u`, the points up to the nearest chosen centre `l`
/// have `D² = (x − l)²` (any chosen centre right of `c` is farther than `c`),
/// so `(x − c)² < D²` holds exactly for `x > (l + c)/2`: the walk updates
/// until the first point where it fails, and stops there; likewise to the
/// right. Chosen points have D² = 0 and so stop every walk. The cost is the
/// length of the range that changes, with no search.
fn add_center(points: &Points, s: &mut SeedScratch, centers: &mut Vec<f64>, u: usize) {
    let xs = &points.xs;
    let c = xs[u];
    centers.push(c);
    s.d2[u] = 0.0;
    let mut lo = u;
    while lo > 0 {
        let e = (xs[lo - 1] - c) * (xs[lo - 1] - c);
        if e >= s.d2[lo - 1] {
            break;
        }
        s.d2[lo - 1] = e;
        lo -= 1;
    }
    let mut hi = u + 1;
    while hi < xs.len() {
        let e = (xs[hi] - c) * (xs[hi] - c);
        if e >= s.d2[hi] {
            break;
        }
        s.d2[hi] = e;
        hi += 1;
    }
    for chunk in lo / CHUNK..hi.div_ceil(CHUNK) {
        let r = chunk * CHUNK..((chunk + 1) * CHUNK).min(xs.len());
        s.mass[chunk] = points.ws[r.clone()]
            .iter()
            .zip(&s.d2[r])
            .map(|(w, d)| w * d)
            .sum();
    }
}

/// The point drawn for `target ∈ [0, Σ mass)`: the first whose running sum of
/// `w_u D_u²` exceeds `target`, found chunk by chunk. Points with zero mass
/// are never returned; if rounding leaves the running sum short, the last
/// point with positive mass is.
fn draw(ws: &[f64], d2: &[f64], mass: &[f64], target: f64) -> usize {
    let mut acc = 0.0;
    let mut last_positive = None;
    for (chunk, &m) in mass.iter().enumerate() {
        if m <= 0.0 {
            continue;
        }
        last_positive = Some(chunk);
        if acc + m > target {
            // Re-walk the chunk; its running sum may round differently from
            // `m`, hence the fallback to its last positive point.
            let mut last = None;
            for u in chunk * CHUNK..((chunk + 1) * CHUNK).min(ws.len()) {
                let mu = ws[u] * d2[u];
                if mu > 0.0 {
                    acc += mu;
                    last = Some(u);
                    if acc > target {
                        return u;
                    }
                }
            }
            return last.expect("a chunk with positive mass has a positive point");
        }
        acc += m;
    }
    let chunk = last_positive.expect("positive total mass");
    let r = chunk * CHUNK..((chunk + 1) * CHUNK).min(ws.len());
    let last = (r.clone()).rev().find(|&u| ws[u] * d2[u] > 0.0);
    last.expect("a chunk with positive mass has a positive point")
}

/// The index drawn with probability ∝ `mass[i]` (sum `total > 0`) for the
/// uniform variate `u ∈ [0, 1)`: the first `i` whose running sum exceeds
/// `u · total`. Rounding can leave the running sum short of the target; then
/// the last index with positive mass is returned. Indices with zero mass are
/// never returned.
fn sample(mass: &[f64], total: f64, u: f64) -> usize {
    let target = u * total;
    let (mut acc, mut last_positive) = (0.0, 0);
    for (i, &m) in mass.iter().enumerate() {
        if m > 0.0 {
            acc += m;
            last_positive = i;
            if acc > target {
                return i;
            }
        }
    }
    last_positive
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(pairs: &[(f64, f64)]) -> Points {
        let mut p = Points::default();
        for &(x, w) in pairs {
            p.push(x, w);
        }
        p.finish();
        p
    }

    #[test]
    fn sample_follows_cumulative_mass() {
        let m = [0.0, 1.0, 0.0, 3.0];
        assert_eq!(sample(&m, 4.0, 0.0), 1);
        assert_eq!(sample(&m, 4.0, 0.2499), 1);
        assert_eq!(sample(&m, 4.0, 0.25), 3);
        assert_eq!(sample(&m, 4.0, 0.9999), 3);
        // A total larger than the sum (rounding) falls back to the last positive.
        assert_eq!(sample(&m, 5.0, 0.99), 3);
    }

    #[test]
    fn distances_match_brute_force_after_every_insertion() {
        let xs: Vec<f64> = (0..100)
            .map(|i| ((i * 37) % 101) as f64 * 0.1 - 3.0)
            .collect();
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        let p = points(
            &sorted
                .iter()
                .map(|&x| (x, 1.0 + x.abs()))
                .collect::<Vec<_>>(),
        );
        let mut s = SeedScratch::default();
        s.d2.resize(p.len(), f64::INFINITY);
        s.mass.resize(p.len().div_ceil(CHUNK), 0.0);
        let mut centers = Vec::new();
        for c in [0.7, -3.0, 6.9, 0.8, 2.0, -1.1] {
            let u = p.xs.iter().position(|&x| (x - c).abs() < 1e-9).unwrap();
            add_center(&p, &mut s, &mut centers, u);
            for (u, &x) in p.xs.iter().enumerate() {
                let d = centers
                    .iter()
                    .map(|&c| (x - c) * (x - c))
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(s.d2[u], d, "x={x} centers={centers:?}");
            }
            for (chunk, &m) in s.mass.iter().enumerate() {
                let r = chunk * CHUNK..((chunk + 1) * CHUNK).min(p.len());
                let expect: f64 = r.map(|u| p.ws[u] * s.d2[u]).sum();
                assert!((m - expect).abs() <= 1e-12 * expect.max(1.0));
            }
        }
    }

    #[test]
    fn centres_are_distinct_points_sorted() {
        let p = points(&[(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (10.0, 1.0), (11.0, 1.0)]);
        let mut rng = SplitMix64::new(1, 0);
        let (mut s, mut c) = (SeedScratch::default(), Vec::new());
        for _ in 0..50 {
            plus_plus(&p, 4, &mut rng, &mut s, &mut c);
            assert_eq!(c.len(), 4);
            assert!(c.windows(2).all(|w| w[0] < w[1]), "{c:?}");
            assert!(c.iter().all(|x| p.xs.contains(x)));
        }
    }

    #[test]
    fn draws_follow_the_d2_distribution() {
        // After a first centre at 0, the second is drawn ∝ w·x²: points 1, 2,
        // 3 with weights 1, 1, 2 have masses 1, 4, 18 (total 23).
        let p = points(&[(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 2.0)]);
        let mut s = SeedScratch::default();
        s.d2.resize(p.len(), f64::INFINITY);
        s.mass.resize(1, 0.0);
        let mut centers = Vec::new();
        add_center(&p, &mut s, &mut centers, 0);
        let mut rng = SplitMix64::new(9, 9);
        let mut counts = [0usize; 4];
        let trials = 23_000;
        for _ in 0..trials {
            let total: f64 = s.mass.iter().sum();
            counts[draw(&p.ws, &s.d2, &s.mass, rng.next_f64() * total)] += 1;
        }
        assert_eq!(counts[0], 0);
        for (u, expect) in [(1, 1000.0), (2, 4000.0), (3, 18000.0)] {
            let got = counts[u] as f64;
            // Within 5 binomial standard deviations.
            let sd = (expect * (1.0 - expect / trials as f64)).sqrt();
            assert!(
                (got - expect).abs() < 5.0 * sd,
                "point {u}: {got} vs {expect}"
            );
        }
    }

    #[test]
    fn weightless_points_are_only_taken_when_weighted_mass_is_gone() {
        // All weight on two points: the first two centres are those two, the
        // third is the farthest weightless point.
        let p = points(&[(0.0, 1.0), (1.0, 0.0), (5.0, 1.0), (9.0, 0.0)]);
        let mut rng = SplitMix64::new(3, 0);
        let (mut s, mut c) = (SeedScratch::default(), Vec::new());
        plus_plus(&p, 3, &mut rng, &mut s, &mut c);
        assert_eq!(c, vec![0.0, 5.0, 9.0]);
    }
}
