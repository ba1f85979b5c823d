//! Picks the next token from the logits: greedy at temperature 0, otherwise
//! softmax(logits / temperature) cut to the top-k, then to the top-p nucleus,
//! drawn with a seeded generator (same seed, same text).

/// How to sample; `temperature == 0` is greedy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 keeps all.
    pub top_p: f32,
    pub seed: u64,
}

/// A token still in the running, with its probability after the cuts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    pub prob: f32,
}

pub struct Sampler {
    config: SamplerConfig,
    rng: Rng,
    /// Scratch for [`Sampler::candidates`]: up to vocab entries.
    candidates: Vec<Candidate>,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        Sampler {
            config,
            rng: Rng::new(config.seed),
            candidates: Vec::new(),
        }
    }

    /// The next token for `logits` [vocab].
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.config.temperature <= 0.0 {
            return argmax(logits);
        }
        let coin = self.rng.next_f32();
        let candidates = self.candidates(logits);
        let mut cdf = 0.0;
        for c in candidates {
            cdf += c.prob;
            if coin < cdf {
                return c.id;
            }
        }
        candidates.last().map_or(0, |c| c.id) // rounding: cdf ended just below 1
    }

    /// The tokens `sample` draws from at temperature > 0, most likely first,
    /// probabilities renormalized over the kept set.
    pub fn candidates(&mut self, logits: &[f32]) -> &[Candidate] {
        let SamplerConfig {
            temperature,
            top_k,
            top_p,
            ..
        } = self.config;
        let cands = &mut self.candidates;
        cands.clear();
        cands.extend(logits.iter().enumerate().map(|(id, &logit)| Candidate {
            id: id as u32,
            logit: if logit.is_nan() {
                f32::NEG_INFINITY
            } else {
                logit
            },
            prob: 0.0,
        }));
        if cands.is_empty() {
            return cands;
        }

        // top-k: partition so the k largest logits come first.
        if top_k > 0 && top_k < cands.len() {
            cands.select_nth_unstable_by(top_k - 1, most_likely_first);
            cands.truncate(top_k);
        }

        // softmax over what is left, at temperature.
        let max = cands
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0f32;
        for c in cands.iter_mut() {
            c.prob = if max == f32::NEG_INFINITY {
                1.0 // no finite logit at all: nothing to prefer
            } else {
                ((c.logit - max) / temperature).exp()
            };
            total += c.prob;
        }

        // top-p: tokens below (1-p)/(n-1) of the mass cannot be in the
        // nucleus (all of them together hold less than 1-p), so drop them
        // before sorting the vocabulary.
        if top_p < 1.0 && cands.len() > 1 {
            let cutoff = (1.0 - top_p) / (cands.len() - 1) as f32 * total;
            cands.retain(|c| c.prob >= cutoff);
        }
        cands.sort_unstable_by(most_likely_first);
        if top_p < 1.0 {
            let mut mass = 0.0;
            let mut keep = cands.len();
            for (i, c) in cands.iter().enumerate() {
                mass += c.prob;
                if mass >= top_p * total {
                    keep = i + 1;
                    break;
                }
            }
            cands.truncate(keep);
        }

        let kept: f32 = cands.iter().map(|c| c.prob).sum();
        for c in cands.iter_mut() {
            c.prob /= kept;
        }
        cands
    }
}

/// The id of the largest logit (the first one on ties; NaN never wins).
///
/// 16 lanes, each keeping the first largest value of the logits at its
/// positions mod 16 (a loop LLVM turns into vector compares and blends: the
/// scalar loop's dependent branch cost 3 % of a greedy decode step over
/// 151,936 logits), then the largest of the lanes, the lowest id on ties.
/// Logits with no value above −∞ take the scalar loop.
pub fn argmax(logits: &[f32]) -> u32 {
    const LANES: usize = 16;
    let mut value = [f32::NEG_INFINITY; LANES];
    let mut id = [0u32; LANES];
    let chunks = logits.chunks_exact(LANES);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        for lane in 0..LANES {
            // `>` is false for NaN: a NaN never replaces a lane's value.
            if chunk[lane] > value[lane] {
                value[lane] = chunk[lane];
                id[lane] = (c * LANES + lane) as u32;
            }
        }
    }
    let base = logits.len() - tail.len();
    for (lane, &l) in tail.iter().enumerate() {
        if l > value[lane] {
            value[lane] = l;
            id[lane] = (base + lane) as u32;
        }
    }
    let mut best: Option<(f32, u32)> = None;
    for lane in 0..LANES {
        if value[lane] == f32::NEG_INFINITY {
            continue;
        }
        best = match best {
            Some((v, i)) if v > value[lane] || (v == value[lane] && i < id[lane]) => Some((v, i)),
            _ => Some((value[lane], id[lane])),
        };
    }
    match best {
        Some((_, i)) => i,
        None => argmax_scalar(logits),
    }
}

/// [`argmax`] one logit at a time.
fn argmax_scalar(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

fn most_likely_first(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// xorshift64* (Vigna), seeded through splitmix64 so that any seed,
/// 0 included, gives a good state.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    pub fn next_u32(&mut self) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }
}
