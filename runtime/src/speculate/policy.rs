//! How long a draft to verify: the sizing policy, learned while the
//! generation runs from what appends cost and how often drafts are taken.
//!
//! ```text
//! cost(k)       seconds of one append of k rows: a moving average of the
//!               appends seen; unseen k extrapolated from the seen ones
//! p(s, b, i)    chance that draft token i is accepted once tokens 0..i
//!               were, for drafts from source s (the running context, or
//!               one of the stores) whose match with the context was in
//!               length bucket b: (accepted + 4·p0(b)) / (tried + 4), with
//!               a prior p0 that grows with the match length (a long match
//!               is most often code being repeated)
//! E(d)          tokens one verification of d draft tokens emits:
//!               1 + Σ_{j<d} Π_{i≤j} p(s, b, i)
//! size          the d ≤ offered with the most tokens per second, E(d) /
//!               cost(d + 1); d = 0 is a plain step
//! ```
//!
//! Each source's drafts are sized so, and the draft with the most tokens
//! per second of all sources is verified: a store whose long matches the
//! model does not follow (a common corpus the model does not quote) loses
//! to the context's shorter ones that it does.
//!
//! With `Sizing::Fixed` every offered draft is verified whole (up to
//! `--draft-max`). Adaptively, one in `EXPLORE_EVERY` (16) declined drafts
//! is verified for one token anyway (`Drafter::choose`), so that a policy
//! that came to expect little of a source (after a few unlucky, or
//! noisily timed, verifications) keeps measuring it.

use crate::kernels::GEMV_ORDER_ROWS;

/// Draft tokens verified at most: with the token before them, the rows of
/// a product that does not depend on its row count.
pub const MAX_DRAFT: usize = GEMV_ORDER_ROWS - 1;

/// How drafts are sized (`--draft-sizing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// Verify what the stores offer, up to the cap.
    Fixed,
    /// The expected tokens per second of each length, from the measured
    /// costs and acceptance ([`Policy::size`]).
    Adaptive,
}

/// Match lengths (tokens of the context's suffix found in a store) by bucket.
const BUCKETS: [usize; 5] = [2, 3, 4, 8, 16];

/// The prior acceptance of a draft token per bucket, and its weight in
/// draft tokens.
const PRIOR: [f64; 5] = [0.5, 0.6, 0.7, 0.85, 0.95];
const PRIOR_WEIGHT: f64 = 4.0;

fn bucket(matched: usize) -> usize {
    BUCKETS.iter().rposition(|&b| matched >= b).unwrap_or(0)
}

/// The weight of a new cost sample in the moving average.
const COST_WEIGHT: f64 = 0.25;

/// What the generation has learned so far.
#[derive(Debug, Clone)]
pub struct Policy {
    pub sizing: Sizing,
    /// Seconds of an append of k + 1 rows, once seen.
    cost: [Option<f64>; GEMV_ORDER_ROWS],
    /// (accepted, tried) per source, match bucket and draft position.
    taken: Vec<Taken>,
}

/// (accepted, tried) per match bucket and draft position, of one source.
type Taken = [[(u32, u32); MAX_DRAFT]; BUCKETS.len()];

impl Policy {
    /// A policy for drafts from `sources` sources.
    pub fn new(sizing: Sizing, sources: usize) -> Policy {
        Policy {
            sizing,
            cost: [None; GEMV_ORDER_ROWS],
            taken: vec![[[(0, 0); MAX_DRAFT]; BUCKETS.len()]; sources],
        }
    }

    fn taken(&self, source: usize) -> &Taken {
        const NONE: Taken = [[(0, 0); MAX_DRAFT]; BUCKETS.len()];
        self.taken.get(source).unwrap_or(&NONE)
    }

    /// An append of `rows` rows took `seconds`.
    pub fn observe_cost(&mut self, rows: usize, seconds: f64) {
        if let Some(c) = self.cost.get_mut(rows.wrapping_sub(1)) {
            *c = Some(match *c {
                Some(old) => old + COST_WEIGHT * (seconds - old),
                None => seconds,
            });
        }
    }

    /// A draft from `source` and a match of `matched` tokens was verified up to
    /// position `verified` (exclusive) and its first `accepted` tokens
    /// taken (`accepted ≤ verified`; a position past the first rejection,
    /// or past the end of the generation, was not tried).
    pub fn observe_draft(
        &mut self,
        source: usize,
        matched: usize,
        verified: usize,
        accepted: usize,
    ) {
        let Some(taken) = self.taken.get_mut(source) else {
            return;
        };
        let row = &mut taken[bucket(matched)];
        for (i, (taken, tried)) in row.iter_mut().enumerate().take(verified) {
            if i > accepted {
                break;
            }
            *tried += 1;
            if i < accepted {
                *taken += 1;
            }
        }
    }

    /// The chance that draft token `i` of a match of `matched` from
    /// `source` is taken once the ones before it were.
    pub fn acceptance(&self, source: usize, matched: usize, i: usize) -> f64 {
        let b = bucket(matched);
        let (taken, tried) = self.taken(source)[b][i.min(MAX_DRAFT - 1)];
        (f64::from(taken) + PRIOR_WEIGHT * PRIOR[b]) / (f64::from(tried) + PRIOR_WEIGHT)
    }

    /// The moving average of the appends of `rows` rows seen, if any.
    pub fn seen_cost(&self, rows: usize) -> Option<f64> {
        self.cost.get(rows.wrapping_sub(1)).copied().flatten()
    }

    /// Seconds of an append of `rows` rows: seen; or interpolated between
    /// the nearest sizes seen below and above; or extrapolated beyond the
    /// largest seen along the line from the 1-row cost to it (half a row
    /// per extra row before any is seen). In units of a plain step until
    /// one is seen.
    pub fn cost(&self, rows: usize) -> f64 {
        let rows = rows.max(1);
        if let Some(c) = self.seen_cost(rows) {
            return c;
        }
        let one = self.cost[0].unwrap_or(1.0);
        let seen = |k: usize| if k == 1 { Some(one) } else { self.seen_cost(k) };
        let below = (1..rows).rev().find_map(|k| seen(k).map(|c| (k, c)));
        let above = (rows + 1..=GEMV_ORDER_ROWS).find_map(|k| seen(k).map(|c| (k, c)));
        let (lo, lo_cost) = below.unwrap_or((1, one));
        let slope = match above {
            Some((hi, hi_cost)) => (hi_cost - lo_cost) / (hi - lo) as f64,
            None if lo > 1 => ((lo_cost - one) / (lo - 1) as f64).max(0.0),
            None => 0.5 * one,
        };
        lo_cost + slope * (rows - lo) as f64
    }

    /// How many of the `offered` draft tokens (from `source`, a match of
    /// `matched`) to verify, and the expected tokens per second of that
    /// (with `Sizing::Fixed`: all of them, at the rate the model gives).
    pub fn size(&self, source: usize, matched: usize, offered: usize) -> (usize, f64) {
        let offered = offered.min(MAX_DRAFT);
        let (mut best, mut best_rate) = (0, 1.0 / self.cost(1));
        let (mut tokens, mut reach) = (1.0, 1.0);
        for d in 1..=offered {
            reach *= self.acceptance(source, matched, d - 1);
            tokens += reach;
            let rate = tokens / self.cost(d + 1);
            if self.sizing == Sizing::Fixed || rate > best_rate {
                (best, best_rate) = (d, rate);
            }
        }
        (best, best_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_sizing_takes_what_is_offered_up_to_the_cap() {
        let p = Policy::new(Sizing::Fixed, 1);
        assert_eq!(p.size(0, 2, 5).0, 5);
        assert_eq!(p.size(0, 2, 40).0, MAX_DRAFT);
    }

    #[test]
    fn costly_rows_and_rejections_shrink_the_draft_to_nothing() {
        let mut p = Policy::new(Sizing::Adaptive, 2);
        p.observe_cost(1, 0.040);
        p.observe_cost(2, 0.080); // a second row costs a whole step
        for _ in 0..50 {
            p.observe_draft(0, 2, 1, 0);
        }
        assert_eq!(p.size(0, 2, 8).0, 0);
    }

    #[test]
    fn cheap_rows_and_acceptance_grow_the_draft() {
        let mut p = Policy::new(Sizing::Adaptive, 2);
        p.observe_cost(1, 0.040);
        p.observe_cost(9, 0.048);
        for _ in 0..50 {
            p.observe_draft(0, 16, 8, 8);
        }
        assert_eq!(p.size(0, 16, 8).0, 8);
        // A short match that was always rejected is not drafted, whatever
        // the long ones do (unless a second row were nearly free).
        p.observe_cost(2, 0.060);
        for _ in 0..50 {
            p.observe_draft(0, 2, 3, 0);
        }
        assert_eq!(p.size(0, 2, 8).0, 0);
    }

    #[test]
    fn the_source_whose_drafts_are_taken_wins() {
        let mut p = Policy::new(Sizing::Adaptive, 2);
        p.observe_cost(1, 0.040);
        p.observe_cost(5, 0.060);
        for _ in 0..30 {
            p.observe_draft(0, 3, 4, 4); // the context: short matches, taken
            p.observe_draft(1, 16, 1, 0); // a store: long matches, rejected
        }
        let (from_context, context_rate) = p.size(0, 3, 4);
        let (from_store, store_rate) = p.size(1, 16, 8);
        assert_eq!((from_context, from_store), (4, 0));
        assert!(context_rate > store_rate);
    }

    #[test]
    fn costs_are_moving_averages_and_unseen_sizes_extrapolated() {
        let mut p = Policy::new(Sizing::Adaptive, 2);
        assert_eq!(p.cost(3), 2.0); // no sample: units of a step, half a step per row
        p.observe_cost(1, 0.040);
        p.observe_cost(5, 0.080);
        assert!((p.cost(3) - 0.060).abs() < 1e-12); // between 1 and 5
        assert!((p.cost(7) - 0.100).abs() < 1e-12); // beyond 5, along 1..5
        p.observe_cost(9, 0.080);
        assert!((p.cost(7) - 0.080).abs() < 1e-12); // between 5 and 9
        p.observe_cost(1, 0.080);
        assert!((p.cost(1) - 0.050).abs() < 1e-12);
        p.observe_cost(0, 1.0); // no such append: ignored
        p.observe_cost(99, 1.0);
        assert!((p.cost(1) - 0.050).abs() < 1e-12);
    }

    #[test]
    fn only_positions_reached_count_as_tried() {
        let mut p = Policy::new(Sizing::Adaptive, 2);
        p.observe_draft(1, 4, 6, 2); // tokens 0, 1 taken, 2 rejected, 3.. not tried
        assert_eq!(p.taken[1][bucket(4)][..4], [(1, 1), (1, 1), (0, 1), (0, 0)]);
        p.observe_draft(1, 4, 2, 2); // the generation ended after 2 taken
        assert_eq!(p.taken[1][bucket(4)][..3], [(2, 2), (2, 2), (0, 1)]);
        assert_eq!(p.taken[0][bucket(4)][0], (0, 0)); // another source's
        p.observe_draft(7, 4, 2, 2); // no such source: ignored
    }
}
