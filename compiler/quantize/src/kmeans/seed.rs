//! k-means++ initialisation (Arthur & Vassilvitskii 2007) with importance
//! weights: the first centre is drawn with probability ∝ w_u, each further
//! centre with probability ∝ w_u · D(x_u)², where D is the distance to the
//! nearest centre chosen so far.

use super::points::Points;
use crate::rng::SplitMix64;

/// Chooses `k` centres among the points (requires `points.len() > k ≥ 1` and a
/// positive total weight) and leaves them in `centers`, sorted ascending.
/// `d2` is scratch space.
///
/// Every centre is a distinct point: a chosen point has D = 0 and so zero
/// probability. If the remaining weighted mass is zero (all weight sits on
/// chosen points) the farthest remaining point by plain D² is taken instead.
pub(crate) fn plus_plus(
    points: &Points,
    k: usize,
    rng: &mut SplitMix64,
    d2: &mut Vec<f64>,
    centers: &mut Vec<f64>,
) {
    let (xs, ws) = (&points.xs[..], &points.ws[..]);
    debug_assert!(xs.len() > k && k >= 1);
    centers.clear();
    d2.clear();
    d2.resize(xs.len(), f64::INFINITY);

    let first = sample(ws.iter().copied(), points.total_weight(), rng.next_f64());
    centers.push(xs[first]);
    while centers.len() < k {
        let c = centers[centers.len() - 1];
        for (d, &x) in d2.iter_mut().zip(xs) {
            let e = (x - c) * (x - c);
            if e < *d {
                *d = e;
            }
        }
        let mass = ws.iter().zip(d2.iter()).map(|(w, d)| w * d);
        let total: f64 = mass.clone().sum();
        let next = if total > 0.0 {
            sample(mass, total, rng.next_f64())
        } else {
            argmax(d2)
        };
        centers.push(xs[next]);
    }
    centers.sort_by(f64::total_cmp);
}

/// The index drawn with probability ∝ `mass[i]` (total `total > 0`) for the
/// uniform variate `u ∈ [0, 1)`: the first `i` whose running sum exceeds
/// `u · total`. Rounding can leave the running sum short of the target; then
/// the last index with positive mass is returned. Indices with zero mass are
/// never returned.
fn sample(mass: impl Iterator<Item = f64>, total: f64, u: f64) -> usize {
    let target = u * total;
    let (mut acc, mut last_positive) = (0.0, 0);
    for (i, m) in mass.enumerate() {
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
        assert_eq!(sample(m.iter().copied(), 4.0, 0.0), 1);
        assert_eq!(sample(m.iter().copied(), 4.0, 0.2499), 1);
        assert_eq!(sample(m.iter().copied(), 4.0, 0.25), 3);
        assert_eq!(sample(m.iter().copied(), 4.0, 0.9999), 3);
        // A total larger than the sum (rounding) falls back to the last positive.
        assert_eq!(sample(m.iter().copied(), 5.0, 0.99), 3);
    }

    #[test]
    fn centres_are_distinct_points_sorted() {
        let p = points(&[(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (10.0, 1.0), (11.0, 1.0)]);
        let mut rng = SplitMix64::new(1, 0);
        let (mut d2, mut c) = (Vec::new(), Vec::new());
        for _ in 0..50 {
            plus_plus(&p, 4, &mut rng, &mut d2, &mut c);
            assert_eq!(c.len(), 4);
            assert!(c.windows(2).all(|w| w[0] < w[1]), "{c:?}");
            assert!(c.iter().all(|x| p.xs.contains(x)));
        }
    }

    #[test]
    fn weightless_points_are_only_taken_when_weighted_mass_is_gone() {
        // All weight on two points: the first two centres are those two, the
        // third is the farthest weightless point.
        let p = points(&[(0.0, 1.0), (1.0, 0.0), (5.0, 1.0), (9.0, 0.0)]);
        let mut rng = SplitMix64::new(3, 0);
        let (mut d2, mut c) = (Vec::new(), Vec::new());
        plus_plus(&p, 3, &mut rng, &mut d2, &mut c);
        assert_eq!(c, vec![0.0, 5.0, 9.0]);
    }
}
