//! The data of one 1-D k-means problem: distinct values in ascending order,
//! their aggregated importances, and prefix sums that make every cluster
//! statistic an O(1) difference.

/// Sorted distinct values `x_0 < x_1 < … < x_{U−1}` with weights `w_u` (the
/// summed importance of every weight equal to `x_u`), and the prefix sums
/// `W_u = Σ_{v<u} w_v`, `S_u = Σ_{v<u} w_v·x_v` (length U + 1).
///
/// A cluster is a contiguous range `[a, b)` of the sorted values (in one
/// dimension, nearest-centroid cells are intervals). Its total weight is
/// `W_b − W_a` and its weighted mean `(S_b − S_a) / (W_b − W_a)`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Points {
    pub(crate) xs: Vec<f64>,
    pub(crate) ws: Vec<f64>,
    cw: Vec<f64>,
    cwx: Vec<f64>,
}

/// A cluster lighter than this fraction of the total weight has its mean
/// summed directly instead of from prefix-sum differences, whose absolute
/// rounding error scales with the total.
const DIRECT_SUM_FRACTION: f64 = 1e-6;

impl Points {
    pub(crate) fn clear(&mut self) {
        self.xs.clear();
        self.ws.clear();
        self.cw.clear();
        self.cwx.clear();
    }

    /// Appends value `x` with weight `w`; values must come in ascending order.
    /// Equal values (including −0 and +0) merge into one point.
    #[inline]
    pub(crate) fn push(&mut self, x: f64, w: f64) {
        match (self.xs.last(), self.ws.last_mut()) {
            (Some(&last), Some(wl)) if last == x => *wl += w,
            _ => {
                self.xs.push(x);
                self.ws.push(w);
            }
        }
    }

    /// Builds the prefix sums; call after the last [`Points::push`].
    pub(crate) fn finish(&mut self) {
        self.cw.clear();
        self.cwx.clear();
        let (mut w_acc, mut wx_acc) = (0.0f64, 0.0f64);
        self.cw.push(0.0);
        self.cwx.push(0.0);
        for (&x, &w) in self.xs.iter().zip(&self.ws) {
            w_acc += w;
            wx_acc += w * x;
            self.cw.push(w_acc);
            self.cwx.push(wx_acc);
        }
    }

    /// U, the number of distinct values.
    pub(crate) fn len(&self) -> usize {
        self.xs.len()
    }

    /// Σ w over all points.
    pub(crate) fn total_weight(&self) -> f64 {
        self.cw.last().copied().unwrap_or(0.0)
    }

    /// `Σ w·x` over the points `[a, b)`.
    #[inline]
    pub(crate) fn weight_x(&self, a: usize, b: usize) -> f64 {
        self.cwx[b] - self.cwx[a]
    }

    /// Total weight of the points `[a, b)`.
    #[inline]
    pub(crate) fn weight(&self, a: usize, b: usize) -> f64 {
        self.cw[b] - self.cw[a]
    }

    /// The weighted mean `Σ w x / Σ w` of the points `[a, b)`, or `None` when
    /// their weight is zero. The result is clamped to `[x_a, x_{b−1}]`, where
    /// the exact mean lies.
    #[inline]
    pub(crate) fn mean(&self, a: usize, b: usize) -> Option<f64> {
        let w = self.weight(a, b);
        if w <= 0.0 {
            return None;
        }
        let m = if w > DIRECT_SUM_FRACTION * self.total_weight() {
            (self.cwx[b] - self.cwx[a]) / w
        } else {
            let (xs, ws) = (&self.xs[a..b], &self.ws[a..b]);
            let sw: f64 = ws.iter().sum();
            let swx: f64 = xs.iter().zip(ws).map(|(x, w)| x * w).sum();
            if sw <= 0.0 {
                return None;
            }
            swx / sw
        };
        Some(m.clamp(self.xs[a], self.xs[b - 1]))
    }

    /// The first index `u` with `x_u > t` (so `[0, u)` are the values ≤ t),
    /// found by galloping from `hint`: O(log d) for an answer d away.
    pub(crate) fn first_above(&self, t: f64, hint: usize) -> usize {
        let xs = &self.xs;
        let n = xs.len();
        let hint = hint.min(n);
        let (lo, hi);
        if hint < n && xs[hint] <= t {
            // The answer is in (hint, n].
            let (mut l, mut h, mut step) = (hint + 1, hint + 1, 1);
            while h < n && xs[h] <= t {
                l = h + 1;
                h += step;
                step *= 2;
            }
            (lo, hi) = (l, h.min(n));
        } else {
            // The answer is in [0, hint]: xs[hint..] > t.
            let (mut l, mut h, mut step) = (0, hint, 1);
            while h > 0 {
                let probe = h.saturating_sub(step);
                if xs[probe] <= t {
                    l = probe + 1;
                    break;
                }
                h = probe;
                step *= 2;
            }
            (lo, hi) = (l, h);
        }
        lo + xs[lo..hi].partition_point(|&x| x <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_above_agrees_with_linear_scan_from_every_hint() {
        let mut p = Points::default();
        for x in [-3.0, -1.0, -1.0, 0.0, 0.5, 2.0, 2.0, 7.0] {
            p.push(x, 1.0);
        }
        p.finish();
        for t in [
            -4.0, -3.0, -2.0, -1.0, 0.0, 0.25, 0.5, 1.0, 2.0, 6.0, 7.0, 8.0,
        ] {
            let expect = p.xs.iter().take_while(|&&x| x <= t).count();
            for hint in 0..=p.len() + 2 {
                assert_eq!(p.first_above(t, hint), expect, "t={t} hint={hint}");
            }
        }
    }

    #[test]
    fn merged_duplicates_and_means() {
        let mut p = Points::default();
        for (x, w) in [(-0.0, 5.0), (0.0, 1.0), (1.0, 1.0), (1.0, 2.0), (4.0, 1.0)] {
            p.push(x, w);
        }
        p.finish();
        assert_eq!(p.xs, vec![0.0, 1.0, 4.0]);
        assert_eq!(p.ws, vec![6.0, 3.0, 1.0]);
        // (3·1 + 1·4) / 4
        assert_eq!(p.mean(1, 3), Some(7.0 / 4.0));
        assert_eq!(p.mean(1, 1), None);
        assert_eq!(p.total_weight(), 10.0);
    }
}
