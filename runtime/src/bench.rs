//! `--measure-verify`: the cost of verifying k drafted tokens, c(k) =
//! time(one append of k rows) / time(one append of 1 row, the plain
//! generation's step), measured after the prompt and rolled back after
//! every call, so that every call sees the same context length; and the
//! compiled decode step (`ditto_decode`) beside them.
//!
//! ```text
//! warm-up: one decode step and one append of each k
//! for each k: reps × { append(k tokens) ; rollback }      → median seconds
//! reps × { decode(1 token) ; rollback }                   → median seconds
//! ```

use std::time::Instant;

use crate::generate::Session;
use crate::Error;

/// The append sizes measured: 1 to 16 rows (the verifications of drafts of
/// up to 15 tokens, `kernels::GEMV_ORDER_ROWS`), then 24 and 32.
pub const VERIFY_SIZES: [usize; 18] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 32,
];

/// Medians of the measured calls, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyCosts {
    /// One `ditto_decode` step.
    pub decode: f64,
    /// (k, one append of k rows with the LM head on every row).
    pub appends: Vec<(usize, f64)>,
}

impl VerifyCosts {
    /// The table printed by `--measure-verify`: one line per k.
    pub fn table(&self, threads: usize, context: usize) -> String {
        let one = self.cost(1).unwrap_or(self.decode);
        let mut out = format!(
            "# c(k) = append(k rows) / append(1 row); {threads} thread(s), {context} positions of context\n\
             # append(1 row), the plain step: {:.2} ms; ditto_decode: {:.2} ms\n\
             k\tms\tc(k)\tms/row\n",
            one * 1e3,
            self.decode * 1e3
        );
        for &(k, s) in &self.appends {
            out.push_str(&format!(
                "{k}\t{:.2}\t{:.2}\t{:.2}\n",
                s * 1e3,
                s / one,
                s * 1e3 / k as f64
            ));
        }
        out
    }

    /// The measured seconds of an append of k rows, if k was measured.
    pub fn cost(&self, k: usize) -> Option<f64> {
        self.appends.iter().find(|&&(n, _)| n == k).map(|&(_, s)| s)
    }
}

/// Measures [`VerifyCosts`] after the session's current position with
/// `reps` calls per size (the median is kept); `tokens` are appended
/// (cycled to k), and the session is left where it was.
pub fn measure_verify(
    session: &mut Session,
    tokens: &[u32],
    sizes: &[usize],
    reps: usize,
) -> Result<VerifyCosts, Error> {
    let base = session.pos();
    let first_k = |k: usize| -> Vec<u32> { tokens.iter().copied().cycle().take(k).collect() };
    let mut logits = vec![0.0; session.vocab()];
    let token = tokens[0];
    let mut time = |session: &mut Session, k: Option<usize>| -> Result<f64, Error> {
        let start = Instant::now();
        match k {
            None => session.decode(token, &mut logits)?,
            Some(k) => {
                session.append(&first_k(k))?;
            }
        }
        let s = start.elapsed().as_secs_f64();
        session.rollback(base)?;
        Ok(s)
    };
    time(session, None)?;
    for &k in sizes {
        time(session, Some(k))?;
    }
    let mut median = |session: &mut Session, k: Option<usize>| -> Result<f64, Error> {
        let mut runs = (0..reps.max(1))
            .map(|_| time(session, k))
            .collect::<Result<Vec<_>, _>>()?;
        runs.sort_by(f64::total_cmp);
        Ok(runs[runs.len() / 2])
    };
    let decode = median(session, None)?;
    let appends = sizes
        .iter()
        .map(|&k| Ok((k, median(session, Some(k))?)))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(VerifyCosts { decode, appends })
}
