//! The exact optimum of weighted 1-D k-means, by dynamic programming over
//! the sorted points (Wang & Song 2011, "Ckmeans.1d.dp").
//!
//! In one dimension every optimal cluster is a contiguous run of the sorted
//! points, so with `cost(a, b)` the weighted squared deviation of the
//! points `[a, b)` from their weighted mean,
//!
//! ```text
//! D[m][e] = min over j < e of D[m−1][j] + cost(j, e)     (m clusters cover [0, e))
//! ```
//!
//! and `J* = D[k][U]`. The best split `j*(m, e)` does not decrease with `e`
//! (`cost` satisfies the quadrangle inequality), so each row is filled by
//! divide and conquer in O(U log U): the whole solve is O(k · U log U),
//! against Lloyd's O(k log U) per iteration, and it cannot stop in a local
//! minimum. The `cost` of a run is an O(1) difference of prefix sums of
//! `w`, `w·x` and `w·x²`, taken about the points' weighted mean so that a
//! narrow run far from zero does not cancel away its own deviation.

use super::points::Points;

/// Prefix sums about the points' weighted mean `x̄`, length U + 1:
/// Σw, Σw·d and Σw·d² over the first u points, d = x − x̄.
#[derive(Debug, Default)]
struct Prefix {
    cw: Vec<f64>,
    cwd: Vec<f64>,
    cwd2: Vec<f64>,
}

impl Prefix {
    fn build(&mut self, points: &Points) {
        let mean = points.weight_x(0, points.len()) / points.total_weight();
        for v in [&mut self.cw, &mut self.cwd, &mut self.cwd2] {
            v.clear();
            v.push(0.0);
        }
        let (mut w_acc, mut wd_acc, mut wd2_acc) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &w) in points.xs.iter().zip(&points.ws) {
            let d = x - mean;
            w_acc += w;
            wd_acc += w * d;
            wd2_acc += w * d * d;
            self.cw.push(w_acc);
            self.cwd.push(wd_acc);
            self.cwd2.push(wd2_acc);
        }
    }

    /// Weighted squared deviation of the points `[a, b)` from their mean.
    #[inline]
    fn cost(&self, a: usize, b: usize) -> f64 {
        let w = self.cw[b] - self.cw[a];
        if w <= 0.0 {
            return 0.0;
        }
        let s = self.cwd[b] - self.cwd[a];
        (self.cwd2[b] - self.cwd2[a] - s * s / w).max(0.0)
    }
}

/// Scratch of the dynamic programme, kept across blocks.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    prefix: Prefix,
    /// D of the previous and the current number of clusters, [U + 1].
    prev: Vec<f64>,
    cur: Vec<f64>,
    /// `split[m·(U+1) + e]`: the start of the last of m + 1 clusters
    /// covering `[0, e)`.
    split: Vec<u32>,
}

impl Scratch {
    /// Fills `cur[e]` for `e` in `[lo, hi)`, knowing the best split of every
    /// such `e` lies in `[from, to]` (and before `e`).
    fn fill(&mut self, row: usize, lo: usize, hi: usize, from: usize, to: usize) {
        if lo >= hi {
            return;
        }
        let stride = self.prev.len();
        let e = (lo + hi) / 2;
        let (mut best, mut at) = (f64::INFINITY, from);
        for j in from..=to.min(e - 1) {
            let d = self.prev[j] + self.prefix.cost(j, e);
            if d < best {
                (best, at) = (d, j);
            }
        }
        self.cur[e] = best;
        self.split[row * stride + e] = at as u32;
        self.fill(row, lo, e, from, at);
        self.fill(row, e + 1, hi, at, to);
    }
}

/// The `k` optimal centroids of `points` (finished, `U > k`, positive total
/// weight), ascending, written to `centers`.
pub(crate) fn solve(points: &Points, k: usize, scratch: &mut Scratch, centers: &mut Vec<f64>) {
    let u = points.len();
    debug_assert!(u > k && k >= 1);
    scratch.prefix.build(points);
    let stride = u + 1;
    scratch.split.clear();
    scratch.split.resize(k * stride, 0);
    // One cluster: [0, e).
    let (prefix, prev) = (&scratch.prefix, &mut scratch.prev);
    prev.clear();
    prev.extend((0..=u).map(|e| prefix.cost(0, e)));
    scratch.cur.clear();
    scratch.cur.resize(stride, f64::INFINITY);
    for m in 1..k {
        // m + 1 clusters need at least m + 1 points; the first m stay ∞.
        for e in 0..=m.min(u) {
            scratch.cur[e] = f64::INFINITY;
        }
        scratch.fill(m, m + 1, u + 1, m, u - 1);
        std::mem::swap(&mut scratch.prev, &mut scratch.cur);
    }
    // Walk the splits back from [0, U).
    centers.clear();
    let mut end = u;
    for m in (0..k).rev() {
        let start = if m == 0 {
            0
        } else {
            scratch.split[m * stride + end] as usize
        };
        let c = points
            .mean(start, end)
            .unwrap_or_else(|| 0.5 * (points.xs[start] + points.xs[end - 1]));
        centers.push(c);
        end = start;
    }
    centers.reverse();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn points(xs: &[f64], ws: &[f64]) -> Points {
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        let mut p = Points::default();
        for i in order {
            p.push(xs[i], ws[i]);
        }
        p.finish();
        p
    }

    fn objective(p: &Points, centers: &[f64]) -> f64 {
        p.xs.iter()
            .zip(&p.ws)
            .map(|(&x, &w)| {
                w * centers
                    .iter()
                    .map(|c| (x - c) * (x - c))
                    .fold(f64::INFINITY, f64::min)
            })
            .sum()
    }

    /// The best objective over every way to cut U sorted points into k runs.
    fn brute_force(p: &Points, k: usize) -> f64 {
        fn go(p: &Points, start: usize, k: usize) -> f64 {
            let u = p.len();
            let run = |a: usize, b: usize| {
                let w: f64 = p.ws[a..b].iter().sum();
                if w <= 0.0 {
                    return 0.0;
                }
                let m = (a..b).map(|i| p.ws[i] * p.xs[i]).sum::<f64>() / w;
                (a..b).map(|i| p.ws[i] * (p.xs[i] - m).powi(2)).sum::<f64>()
            };
            if k == 1 {
                return run(start, u);
            }
            (start + 1..=u - (k - 1))
                .map(|cut| run(start, cut) + go(p, cut, k - 1))
                .fold(f64::INFINITY, f64::min)
        }
        go(p, 0, k)
    }

    #[test]
    fn matches_brute_force_on_small_problems() {
        let mut rng = SplitMix64::new(5, 0);
        let mut scratch = Scratch::default();
        let mut centers = Vec::new();
        for trial in 0..60 {
            let u = 5 + trial % 9;
            let k = 1 + trial % 4;
            // Heavy-tailed values, some weights zero.
            let xs: Vec<f64> = (0..u)
                .map(|_| {
                    let g = rng.next_f64() * 2.0 - 1.0;
                    g * g * g * 10.0 + 3.0
                })
                .collect();
            let ws: Vec<f64> = (0..u)
                .map(|i| {
                    if i % 5 == 4 {
                        0.0
                    } else {
                        rng.next_f64() + 0.01
                    }
                })
                .collect();
            let p = points(&xs, &ws);
            if p.len() <= k {
                continue;
            }
            solve(&p, k, &mut scratch, &mut centers);
            assert_eq!(centers.len(), k);
            assert!(centers.windows(2).all(|c| c[0] <= c[1]), "{centers:?}");
            let (got, want) = (objective(&p, &centers), brute_force(&p, k));
            assert!(
                got <= want * (1.0 + 1e-9) + 1e-12,
                "trial {trial}: {got} vs optimum {want}"
            );
        }
    }

    #[test]
    fn finds_well_separated_clusters() {
        // Three tight clusters far from zero: the centroids are their means.
        let xs: Vec<f64> = [
            1000.0, 1000.5, 1001.0, 1010.0, 1010.2, 1030.0, 1030.1, 1030.2,
        ]
        .into_iter()
        .collect();
        let p = points(&xs, &[1.0; 8]);
        let mut centers = Vec::new();
        solve(&p, 3, &mut Scratch::default(), &mut centers);
        let want = [1000.5, 1010.1, 1030.1];
        for (c, w) in centers.iter().zip(want) {
            assert!((c - w).abs() < 1e-9, "{centers:?}");
        }
    }
}
