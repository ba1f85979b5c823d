//! Lloyd iterations for weighted 1-D k-means on sorted points.
//!
//! With centres `c_0 ≤ … ≤ c_{k−1}`, the nearest-centre cell of `c_j` is the
//! interval between the midpoints `m_j = (c_{j−1} + c_j) / 2` and `m_{j+1}`
//! (a point exactly on a midpoint goes to the lower centre). On sorted points
//! the assignment step is therefore k − 1 searches for the boundaries
//! `b_j = #{u : x_u ≤ m_j}`, galloping from the previous iteration's boundary,
//! and the update step sets `c_j = Σ_{[b_j, b_{j+1})} w x / Σ w` from prefix
//! sums: an iteration costs O(k log U), not O(k U).
//!
//! Each step can only lower the objective J = Σ_u w_u (x_u − c(u))²: the
//! assignment picks the nearest centre for every point, and for a fixed
//! assignment the weighted mean minimises each cluster's term.

use super::points::Points;

/// How Lloyd's iterations ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Update steps performed.
    pub(crate) iterations: usize,
    /// Whether the assignment stopped changing before the cap.
    pub(crate) converged: bool,
}

/// Runs Lloyd's algorithm from the sorted `centers` (one per cluster) for at
/// most `max_iter` update steps, leaving the result, sorted, in `centers`.
/// `bounds` and `next` are scratch space. When `trace` is given, the centres
/// after every update step are appended to it.
///
/// A cluster with no weight (no points, or only weightless ones) is re-seeded
/// at the point with the largest weighted squared error `w_u (x_u − c(u))²`,
/// as long as some point has a positive one.
pub(crate) fn lloyd(
    points: &Points,
    centers: &mut [f64],
    bounds: &mut Vec<usize>,
    next: &mut Vec<usize>,
    max_iter: usize,
    mut trace: Option<&mut Vec<Vec<f64>>>,
) -> Outcome {
    let k = centers.len();
    bounds.clear();
    bounds.resize(k + 1, 0);
    assign(points, centers, bounds);
    for iteration in 1..=max_iter {
        let reseeded = update(points, centers, bounds);
        if let Some(t) = trace.as_deref_mut() {
            t.push(centers.to_vec());
        }
        next.clone_from(bounds);
        assign(points, centers, next);
        if !reseeded && next == bounds {
            return Outcome {
                iterations: iteration,
                converged: true,
            };
        }
        std::mem::swap(bounds, next);
    }
    Outcome {
        iterations: max_iter,
        converged: false,
    }
}

/// Assignment step: `bounds[j]` becomes the first point above the midpoint of
/// `c_{j−1}` and `c_j`; `bounds[0] = 0`, `bounds[k] = U`. The old values of
/// `bounds` are the search hints.
fn assign(points: &Points, centers: &[f64], bounds: &mut [usize]) {
    let k = centers.len();
    bounds[0] = 0;
    bounds[k] = points.len();
    for j in 1..k {
        let mid = 0.5 * (centers[j - 1] + centers[j]);
        bounds[j] = points.first_above(mid, bounds[j]);
    }
}

/// Update step: every cluster's centre becomes its weighted mean. Clusters
/// without weight are re-seeded (see [`lloyd`]); returns whether any was, in
/// which case the centres are re-sorted.
fn update(points: &Points, centers: &mut [f64], bounds: &[usize]) -> bool {
    let mut empty = false;
    for (j, c) in centers.iter_mut().enumerate() {
        match points.mean(bounds[j], bounds[j + 1]) {
            Some(m) => *c = m,
            None => empty = true,
        }
    }
    if !empty {
        return false;
    }
    let mut reseeded = false;
    let mut taken: Vec<usize> = Vec::new();
    for j in 0..centers.len() {
        if points.weight(bounds[j], bounds[j + 1]) > 0.0 {
            continue;
        }
        match farthest(points, centers, bounds, &taken) {
            Some(u) => {
                centers[j] = points.xs[u];
                taken.push(u);
                reseeded = true;
            }
            None => break,
        }
    }
    centers.sort_unstable_by(f64::total_cmp);
    reseeded
}

/// The point with the largest positive `w_u (x_u − c(u))²` under the current
/// assignment, skipping `taken`; `None` if every such error is zero.
fn farthest(points: &Points, centers: &[f64], bounds: &[usize], taken: &[usize]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (j, &c) in centers.iter().enumerate() {
        for u in bounds[j]..bounds[j + 1] {
            let e = points.ws[u] * (points.xs[u] - c) * (points.xs[u] - c);
            if e > best.map_or(0.0, |b| b.1) && !taken.contains(&u) {
                best = Some((u, e));
            }
        }
    }
    best.map(|b| b.0)
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
    fn two_clusters_converge_to_their_weighted_means() {
        let p = points(&[(0.0, 1.0), (1.0, 3.0), (10.0, 2.0), (12.0, 2.0)]);
        let mut c = vec![0.0, 1.0];
        let (mut b, mut n) = (Vec::new(), Vec::new());
        let out = lloyd(&p, &mut c, &mut b, &mut n, 50, None);
        assert!(out.converged);
        assert_eq!(c, vec![0.75, 11.0]);
    }

    #[test]
    fn an_empty_cluster_is_reseeded_at_the_worst_point() {
        // Centres 100 and 200 own no points: both are re-seeded.
        let p = points(&[(0.0, 1.0), (1.0, 1.0), (4.0, 1.0)]);
        let mut c = vec![0.0, 100.0, 200.0];
        let (mut b, mut n) = (Vec::new(), Vec::new());
        let out = lloyd(&p, &mut c, &mut b, &mut n, 50, None);
        assert!(out.converged);
        assert_eq!(c, vec![0.0, 1.0, 4.0]);
    }
}
