//! Speculative decoding by retrieval (CodeSwift, REST): drafts come from
//! the datastores (`ditto-datastore`: the repository's suffix array, the
//! running context's n-grams), and the model verifies a whole draft with
//! one append of its tokens.
//!
//! ```text
//! token := sample(logits after the prompt)
//! loop:
//!     emit token                                 (stop at EOS, -n, a stop string)
//!     draft := choose(context + token)           (each source's retrieval sized
//!                                                 by the policy, the best rate: policy.rs)
//!     rows  := append([token] + draft)           one ditto_prefill + ditto_lm_head, [1+d, vocab]
//!     policy learns the append's time and how much of the draft was taken
//!     j := 0
//!     loop: t := sample(rows[j])
//!           if j < d and t == draft[j]: emit t; j += 1      (accepted)
//!           else: token := t; break                         (the model's own next token)
//!     roll back to the positions of the prompt, token and the j accepted drafts
//! ```
//!
//! Every emitted token is sampled, in order, from the logits of the
//! positions before it, with the sampler drawing once per token: the same
//! tokens as one append per token. A row's logits do not depend on the rows
//! appended with it (tested), so the output is bit for bit that of
//! generation through appends ([`generate_by_appends`]), whatever is drafted.

pub mod policy;

use std::time::Instant;

use ditto_datastore::suffix::Query;
use ditto_datastore::{ContextStore, Retrieved, SuffixStore};

use crate::generate::{Flow, Session, Stats};
use crate::sampler::Sampler;
use crate::Error;
pub use policy::{Policy, Sizing, MAX_DRAFT};

/// Where drafts come from, and how long they are made.
pub struct Drafter {
    /// The fixed corpora (the repository, a common code store), searched in order.
    pub stores: Vec<SuffixStore>,
    /// The prompt and what the model has written so far.
    pub context: ContextStore,
    pub query: Query,
    pub policy: Policy,
    /// Times the adaptive policy declined every draft offered.
    declined: u32,
}

/// One in this many declined drafts is verified (one token) all the same.
pub const EXPLORE_EVERY: u32 = 16;

impl Drafter {
    /// Drafts of at most `max_draft` tokens (and [`MAX_DRAFT`]), verified
    /// whole ([`Sizing::Fixed`]; see [`Drafter::sized`]).
    pub fn new(stores: Vec<SuffixStore>, prompt: &[u32], max_draft: usize) -> Drafter {
        let mut context = ContextStore::new();
        context.extend(prompt);
        let sources = 1 + stores.len();
        Drafter {
            stores,
            context,
            query: Query {
                max_draft: max_draft.min(MAX_DRAFT),
                ..Query::default()
            },
            policy: Policy::new(Sizing::Fixed, sources),
            declined: 0,
        }
    }

    /// The same drafter with drafts sized by `sizing`.
    pub fn sized(mut self, sizing: Sizing) -> Drafter {
        self.policy.sizing = sizing;
        self
    }

    /// The matches after the current context, each with its draft of at
    /// most `max` tokens, by source: 0 the running context, 1 + i
    /// `stores[i]`.
    pub fn candidates(&self, max: usize) -> Vec<(usize, Retrieved)> {
        let query = Query {
            max_draft: max.min(self.query.max_draft),
            ..self.query
        };
        if query.max_draft == 0 {
            return Vec::new();
        }
        let context = self.context.retrieve(&query).map(|r| (0, r));
        let stores = self.stores.iter().enumerate().filter_map(|(i, store)| {
            store
                .retrieve(self.context.tokens(), &query)
                .map(|r| (1 + i, r))
        });
        context.into_iter().chain(stores).collect()
    }

    /// The draft to verify after the current context, at most `max`
    /// tokens, and its source and match length: with [`Sizing::Fixed`],
    /// the longest match's whole draft (the running context first on
    /// ties, then the stores in order); adaptively, of every source's
    /// draft sized by the policy, the one with the most expected tokens
    /// per second (none if a plain step beats them all; but every
    /// [`EXPLORE_EVERY`]th time the policy declines every draft, the first
    /// token of the longest match is verified anyway, so that what the
    /// policy believes of a source keeps being measured).
    pub fn choose(&mut self, max: usize) -> Option<(usize, usize, Vec<u32>)> {
        let mut best: Option<(usize, usize, Vec<u32>)> = None;
        let mut longest: Option<(usize, usize, u32)> = None;
        let mut best_rate = 1.0 / self.policy.cost(1);
        for (source, found) in self.candidates(max) {
            if let Some(&first) = found.draft.tokens.first() {
                if longest.is_none_or(|(_, m, _)| found.matched > m) {
                    longest = Some((source, found.matched, first));
                }
            }
            let (d, rate) = self
                .policy
                .size(source, found.matched, found.draft.tokens.len());
            let better = match (&best, self.policy.sizing) {
                (None, Sizing::Fixed) => true,
                (Some((_, matched, _)), Sizing::Fixed) => found.matched > *matched,
                (_, Sizing::Adaptive) => d > 0 && rate > best_rate,
            };
            if better {
                let mut tokens = found.draft.tokens;
                tokens.truncate(d);
                best = Some((source, found.matched, tokens));
                best_rate = rate;
            }
        }
        let best = best.filter(|(_, _, tokens)| !tokens.is_empty());
        if best.is_some() || self.policy.sizing == Sizing::Fixed {
            return best;
        }
        let (source, matched, first) = longest?;
        self.declined += 1;
        self.declined
            .is_multiple_of(EXPLORE_EVERY)
            .then(|| (source, matched, vec![first]))
    }
}

/// How a speculative generation went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecGeneration {
    /// Tokens handed to `emit`.
    pub generated: usize,
    pub stopped_at_eos: bool,
    pub stopped_by_emit: bool,
    /// Draft tokens verified and accepted.
    pub drafted: usize,
    pub accepted: usize,
    /// Appends that verified a draft (the others were plain steps).
    pub verifications: usize,
    /// Appends (model forwards) after the prompt, and their time.
    pub appends: Stats,
    /// Seconds spent retrieving drafts.
    pub retrieval_seconds: f64,
    /// Seconds of an append of one row (a plain step) as the policy last
    /// measured it, if any was made.
    pub plain_step_seconds: Option<f64>,
}

/// Generates as [`crate::generate::generate`] does, with at most
/// `max_draft` retrieved tokens verified per append.
pub fn generate_speculative(
    session: &mut Session,
    logits: &[f32],
    sampler: &mut Sampler,
    limits: (usize, &[u32]),
    drafter: &mut Drafter,
    mut emit: impl FnMut(u32) -> Result<Flow, Error>,
) -> Result<SpecGeneration, Error> {
    let (max_new, eos) = limits;
    let vocab = logits.len();
    let start = Instant::now();
    let mut g = SpecGeneration {
        generated: 0,
        stopped_at_eos: false,
        stopped_by_emit: false,
        drafted: 0,
        accepted: 0,
        verifications: 0,
        appends: Stats {
            tokens: 0,
            seconds: 0.0,
        },
        retrieval_seconds: 0.0,
        plain_step_seconds: None,
    };
    let mut appends = 0;
    if max_new == 0 {
        return Ok(g);
    }
    let mut token = sampler.sample(logits);
    // Emits one token; false when the generation ends with it (or before it).
    let mut take = |t: u32, g: &mut SpecGeneration| -> Result<bool, Error> {
        if eos.contains(&t) {
            g.stopped_at_eos = true;
            return Ok(false);
        }
        let flow = emit(t)?;
        g.generated += 1;
        if flow == Flow::Stop {
            g.stopped_by_emit = true;
            return Ok(false);
        }
        Ok(g.generated < max_new)
    };
    loop {
        if !take(token, &mut g)? {
            break;
        }
        drafter.context.push(token);
        // Room for the drafts: the tokens still to emit after `token`, the context.
        let room = (max_new - g.generated - 1)
            .min(session.cache().ctx().saturating_sub(session.pos() + 1));
        let looked = Instant::now();
        let chosen = drafter.choose(room);
        g.retrieval_seconds += looked.elapsed().as_secs_f64();
        let (source, matched, draft) = chosen.unwrap_or((0, 0, Vec::new()));
        g.drafted += draft.len();
        g.verifications += usize::from(!draft.is_empty());
        let base = session.pos();
        let mut rows_in = Vec::with_capacity(1 + draft.len());
        rows_in.push(token);
        rows_in.extend_from_slice(&draft);
        let forward = Instant::now();
        let rows = session.append(&rows_in)?;
        drafter
            .policy
            .observe_cost(rows_in.len(), forward.elapsed().as_secs_f64());
        appends += 1;
        let mut j = 0;
        let mut ended = false;
        loop {
            let t = sampler.sample(&rows[j * vocab..(j + 1) * vocab]);
            if j < draft.len() && t == draft[j] {
                g.accepted += 1;
                j += 1;
                if !take(t, &mut g)? {
                    ended = true;
                    break;
                }
                drafter.context.push(t);
            } else {
                token = t;
                break;
            }
        }
        if !draft.is_empty() {
            let verified = if ended { j } else { (j + 1).min(draft.len()) };
            drafter.policy.observe_draft(source, matched, verified, j);
        }
        session.rollback(base + 1 + j)?;
        if ended {
            break;
        }
    }
    g.appends = Stats::since(start, appends);
    g.plain_step_seconds = drafter.policy.seen_cost(1);
    Ok(g)
}

/// Plain generation through the engine's append, one token per call: the
/// reference whose output [`generate_speculative`] reproduces bit for bit.
pub fn generate_by_appends(
    session: &mut Session,
    logits: &[f32],
    sampler: &mut Sampler,
    limits: (usize, &[u32]),
    emit: impl FnMut(u32) -> Result<Flow, Error>,
) -> Result<SpecGeneration, Error> {
    let mut drafter = Drafter::new(Vec::new(), &[], 0);
    generate_speculative(session, logits, sampler, limits, &mut drafter, emit)
}
