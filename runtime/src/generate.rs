//! Running the model over a sequence: the prompt through `ditto_prefill`
//! (in chunks) and `ditto_lm_head` on its last row, then one append of one
//! token ([`Session::append`]: `ditto_prefill` and `ditto_lm_head` on one
//! row) per generated token until `-n` tokens or an end-of-text id.
//! `ditto_decode`, the compiled decode step, serves `--logits-via decode`.

use std::time::Instant;

use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::sampler::Sampler;
use crate::Error;

/// Prompt tokens per `ditto_prefill` call: bounds the hidden buffer and the
/// generated code's own activations.
pub const PREFILL_BATCH: usize = 512;

/// One sequence being run: the caches and the next free position.
pub struct Session<'m, 'w> {
    model: &'m Model<'w>,
    cache: KvCache,
    /// [batch, d_model]: final-normed hidden states of one prefill chunk
    hidden: Vec<f32>,
    /// [batch] i32: the token ids of one prefill chunk
    chunk_tokens: Vec<i32>,
    batch: usize,
    /// Positions 0..pos hold K/V.
    pos: usize,
}

impl<'m, 'w> Session<'m, 'w> {
    /// A session of `ctx` positions that prefills `batch` tokens per call.
    pub fn new(model: &'m Model<'w>, ctx: usize, batch: usize) -> Result<Self, Error> {
        let batch = batch.clamp(1, ctx.max(1));
        Ok(Session {
            model,
            cache: KvCache::new(model.config(), ctx)?,
            hidden: vec![0.0; batch * model.d_model()],
            chunk_tokens: Vec::with_capacity(batch),
            batch,
            pos: 0,
        })
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Logits per row.
    pub fn vocab(&self) -> usize {
        self.model.vocab()
    }

    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// Fails unless `n` more positions fit.
    fn reserve(&self, n: usize) -> Result<(), Error> {
        if self.pos + n > self.cache.ctx() {
            return Err(Error::Usage(format!(
                "context full: {} positions used, {n} more asked, the context holds {} (see --ctx)",
                self.pos,
                self.cache.ctx()
            )));
        }
        Ok(())
    }

    /// Runs `tokens` through prefill, `batch` at a time; calls `rows(start,
    /// hidden)` after each chunk with the chunk's hidden states [len, d].
    fn prefill_chunks(
        &mut self,
        tokens: &[u32],
        mut rows: impl FnMut(&Model, usize, &[f32]),
    ) -> Result<(), Error> {
        self.reserve(tokens.len())?;
        let d = self.model.d_model();
        for (i, chunk) in tokens.chunks(self.batch).enumerate() {
            self.chunk_tokens.clear();
            self.chunk_tokens.extend(chunk.iter().map(|&t| t as i32));
            let hidden = &mut self.hidden[..chunk.len() * d];
            self.model
                .prefill(&mut self.cache, &self.chunk_tokens, self.pos, hidden);
            self.pos += chunk.len();
            rows(self.model, i * self.batch, hidden);
        }
        Ok(())
    }

    /// Feeds the prompt; returns the logits [vocab] after its last token.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<f32>, Error> {
        let (vocab, d) = (self.model.vocab(), self.model.d_model());
        let mut logits = vec![0.0; vocab];
        let last = tokens.len().saturating_sub(1);
        self.prefill_chunks(tokens, |model, start, hidden| {
            let rows = hidden.len() / d;
            if (start..start + rows).contains(&last) {
                let row = last - start;
                model.lm_head(&hidden[row * d..(row + 1) * d], &mut logits);
            }
        })?;
        Ok(logits)
    }

    /// Feeds the prompt; returns the logits of every position [T, vocab],
    /// from prefill and the LM head on all rows.
    pub fn prefill_all_logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>, Error> {
        self.append(tokens)
    }

    /// Rolls the sequence back to `pos` positions: what was appended after
    /// them is forgotten (the next append writes over their K/V; no step
    /// reads a position at or past its own).
    pub fn rollback(&mut self, pos: usize) -> Result<(), Error> {
        if pos > self.pos {
            return Err(Error::Usage(format!(
                "cannot roll back to position {pos}: the sequence holds {}",
                self.pos
            )));
        }
        self.pos = pos;
        Ok(())
    }

    /// The engine's one step: appends `tokens` [T] at the next positions
    /// through `ditto_prefill` and returns the next-token logits after each
    /// of them [T, vocab] (`ditto_lm_head` on every row). Up to
    /// [`crate::kernels::GEMV_ORDER_ROWS`] rows, a row's logits do not
    /// depend on how many rows were appended with it (every product of so
    /// few rows is the GEMV of each row; tested), so verifying k drafted
    /// tokens in one call gives each the logits one append per token
    /// would: what plain generation computes.
    pub fn append(&mut self, tokens: &[u32]) -> Result<Vec<f32>, Error> {
        let vocab = self.model.vocab();
        let mut logits = vec![0.0; tokens.len() * vocab];
        self.prefill_chunks(tokens, |model, start, hidden| {
            let rows = hidden.len() / model.d_model();
            model.lm_head(hidden, &mut logits[start * vocab..(start + rows) * vocab]);
        })?;
        Ok(logits)
    }

    /// Feeds the prompt one `ditto_decode` call per token; returns the
    /// logits of every position [T, vocab].
    pub fn decode_all_logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>, Error> {
        let vocab = self.model.vocab();
        let mut logits = vec![0.0; tokens.len() * vocab];
        for (&token, row) in tokens.iter().zip(logits.chunks_exact_mut(vocab)) {
            self.decode(token, row)?;
        }
        Ok(logits)
    }

    /// `token` at the next position; writes the next-token `logits` [vocab].
    pub fn decode(&mut self, token: u32, logits: &mut [f32]) -> Result<(), Error> {
        self.reserve(1)?;
        self.model.decode(&mut self.cache, token, self.pos, logits);
        self.pos += 1;
        Ok(())
    }
}

/// Tokens processed and the wall time they took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub tokens: usize,
    pub seconds: f64,
}

impl Stats {
    pub fn since(start: Instant, tokens: usize) -> Stats {
        Stats {
            tokens,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// `prefill: 12 tokens in 0.050 s (240.0 tok/s)`
    pub fn line(&self, what: &str) -> String {
        let rate = if self.seconds > 0.0 {
            self.tokens as f64 / self.seconds
        } else {
            0.0
        };
        format!(
            "{what}: {} tokens in {:.3} s ({rate:.1} tok/s)",
            self.tokens, self.seconds
        )
    }
}

/// What `emit` tells the generation loop after taking a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// End here (a stop string was reached): no decode step for this token.
    Stop,
}

/// How a generation ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    /// Tokens handed to `emit` (an end-of-text id is not).
    pub generated: usize,
    pub stopped_at_eos: bool,
    /// `emit` answered [`Flow::Stop`].
    pub stopped_by_emit: bool,
    /// The decode steps (appends of one token): one per generated token but
    /// the last.
    pub decode: Stats,
}

/// Samples a token from `logits` (the prompt's last row), hands it to
/// `emit`, appends it for the next logits ([`Session::append`], the
/// engine's one step, whose rows do not depend on how many are appended
/// together: the speculative generation's output is this one's), and so
/// on: at most `max_new`
/// tokens, stopping before any id in `eos` or after `emit` says [`Flow::Stop`].
pub fn generate(
    session: &mut Session,
    mut logits: Vec<f32>,
    sampler: &mut Sampler,
    max_new: usize,
    eos: &[u32],
    mut emit: impl FnMut(u32) -> Result<Flow, Error>,
) -> Result<Generation, Error> {
    let start = Instant::now();
    let mut generated = 0;
    let mut decoded = 0;
    let mut stopped_at_eos = false;
    let mut stopped_by_emit = false;
    while generated < max_new {
        let token = sampler.sample(&logits);
        if eos.contains(&token) {
            stopped_at_eos = true;
            break;
        }
        let flow = emit(token)?;
        generated += 1;
        if flow == Flow::Stop {
            stopped_by_emit = true;
            break;
        }
        if generated == max_new {
            break; // the last token needs no decode step
        }
        logits = session.append(&[token])?;
        decoded += 1;
    }
    Ok(Generation {
        generated,
        stopped_at_eos,
        stopped_by_emit,
        decode: Stats::since(start, decoded),
    })
}
