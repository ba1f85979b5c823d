//! The engine's append and rollback, and speculative generation against
//! plain generation, on the fake model whose output is known by rule.

mod common;

use std::sync::atomic::Ordering;

use common::fake_model::{self, FAULTS, WEIGHTS};
use ditto_datastore::SuffixStore;
use ditto_rt::generate::{generate, Flow, Session};
use ditto_rt::model::Model;
use ditto_rt::sampler::{Sampler, SamplerConfig};
use ditto_rt::speculate::{
    generate_by_appends, generate_speculative, Drafter, Sizing, EXPLORE_EVERY,
};

const VOCAB: usize = 37;
const CTX: usize = 96;

fn sampler(temperature: f32, seed: u64) -> Sampler {
    Sampler::new(SamplerConfig {
        temperature,
        top_k: 0,
        top_p: 1.0,
        seed,
    })
}

#[test]
fn rollback_then_append_gives_the_logits_of_never_appending() {
    let config = fake_model::config(VOCAB, CTX);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let prompt = [3, 9, 27, 4];
    let mut straight = Session::new(&model, CTX, 512).unwrap();
    straight.append(&prompt).unwrap();
    let expected = straight.append(&[5, 6]).unwrap();

    let mut session = Session::new(&model, CTX, 512).unwrap();
    session.append(&prompt).unwrap();
    session.append(&[30, 31, 32, 33]).unwrap();
    session.rollback(prompt.len()).unwrap();
    assert_eq!(session.pos(), prompt.len());
    assert_eq!(session.append(&[5, 6]).unwrap(), expected);
    // One row at a time: the same rows.
    session.rollback(prompt.len()).unwrap();
    let mut rows = session.append(&[5]).unwrap();
    rows.extend(session.append(&[6]).unwrap());
    assert_eq!(rows, expected);
    assert!(session.rollback(session.pos() + 1).is_err());
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
}

/// Tokens of a plain generation (`generate`, one append of one token per step),
/// of one append per token, and of speculation with `stores`.
fn three_ways(
    prompt: &[u32],
    max_new: usize,
    eos: &[u32],
    temperature: f32,
    stores: Vec<SuffixStore>,
) -> [(Vec<u32>, usize); 3] {
    let config = fake_model::config(VOCAB, CTX);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let mut out = [(); 3].map(|()| (Vec::new(), 0));

    let mut session = Session::new(&model, CTX, 512).unwrap();
    let logits = session.prefill(prompt).unwrap();
    let g = generate(
        &mut session,
        logits,
        &mut sampler(temperature, 7),
        max_new,
        eos,
        |t| {
            out[0].0.push(t);
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    out[0].1 = g.generated;

    let mut session = Session::new(&model, CTX, 512).unwrap();
    let logits = session.prefill(prompt).unwrap();
    let g = generate_by_appends(
        &mut session,
        &logits,
        &mut sampler(temperature, 7),
        (max_new, eos),
        |t| {
            out[1].0.push(t);
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    out[1].1 = g.generated;

    let mut session = Session::new(&model, CTX, 512).unwrap();
    let logits = session.prefill(prompt).unwrap();
    let mut drafter = Drafter::new(stores, prompt, 8);
    let g = generate_speculative(
        &mut session,
        &logits,
        &mut sampler(temperature, 7),
        (max_new, eos),
        &mut drafter,
        |t| {
            out[2].0.push(t);
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    out[2].1 = g.drafted - g.accepted; // rejected
    assert!(g.accepted <= g.drafted);
    assert_eq!(g.generated, out[2].0.len());
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
    out
}

/// Stores that know the `truth` after `prompt` in stretches, each going
/// wrong after a few tokens: every other draft is partly rejected.
fn misleading_stores(prompt: &[u32], truth: &[u32]) -> Vec<SuffixStore> {
    let mut docs = Vec::new();
    let mut context = prompt.to_vec();
    for (i, &t) in truth.iter().enumerate() {
        if i % 6 == 0 {
            let mut doc = context[context.len().saturating_sub(3)..].to_vec();
            doc.extend_from_slice(&truth[i..(i + 3).min(truth.len())]);
            doc.extend_from_slice(&[(t + 1) % VOCAB as u32, 0, 0]);
            docs.push(doc);
        }
        context.push(t);
    }
    vec![SuffixStore::build(&docs).unwrap()]
}

#[test]
fn speculation_gives_the_tokens_of_plain_generation() {
    let prompt = [3, 5, 7];
    let truth = fake_model::greedy(&prompt, 40, VOCAB);
    // A store that knows a long stretch of the true continuation.
    let mut right = prompt.to_vec();
    right.extend_from_slice(&truth[..20]);
    let stores = vec![SuffixStore::build(&[right]).unwrap()];
    let [plain, appends, speculative] = three_ways(&prompt, 40, &[], 0.0, stores);
    assert_eq!(plain.0, truth);
    assert_eq!(appends.0, truth);
    assert_eq!(speculative.0, truth);
    // Drafts that go wrong.
    let stores = misleading_stores(&prompt, &truth);
    let [_, _, speculative] = three_ways(&prompt, 40, &[], 0.0, stores);
    assert_eq!(speculative.0, truth);
    assert!(
        speculative.1 >= 5,
        "only {} draft tokens rejected",
        speculative.1
    );
}

/// Drafts sized by the adaptive policy (whose choices follow measured
/// times) give the same tokens as plain generation, whatever it chooses.
#[test]
fn adaptively_sized_drafts_give_the_tokens_of_plain_generation() {
    let prompt = [3, 5, 7];
    let truth = fake_model::greedy(&prompt, 40, VOCAB);
    let config = fake_model::config(VOCAB, CTX);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    for stores in [misleading_stores(&prompt, &truth), Vec::new()] {
        let mut session = Session::new(&model, CTX, 512).unwrap();
        let logits = session.prefill(&prompt).unwrap();
        let mut drafter = Drafter::new(stores, &prompt, 8).sized(Sizing::Adaptive);
        let mut out = Vec::new();
        let g = generate_speculative(
            &mut session,
            &logits,
            &mut sampler(0.0, 0),
            (40, &[]),
            &mut drafter,
            |t| {
                out.push(t);
                Ok(Flow::Continue)
            },
        )
        .unwrap();
        assert_eq!(out, truth);
        assert!(g.accepted <= g.drafted);
        assert!(drafter.policy.seen_cost(1).is_some() || g.verifications == g.appends.tokens);
    }
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
}

#[test]
fn speculation_samples_what_plain_generation_samples() {
    let prompt = [1, 2, 3, 1, 2];
    for temperature in [0.5, 1.0, 2.0] {
        let [plain, appends, _] = three_ways(&prompt, 30, &[], temperature, Vec::new());
        assert_eq!(appends.0, plain.0);
        let stores = misleading_stores(&prompt, &plain.0);
        let [_, _, speculative] = three_ways(&prompt, 30, &[], temperature, stores);
        assert_eq!(speculative.0, plain.0, "temperature {temperature}");
        assert!(
            speculative.1 >= 3,
            "only {} draft tokens rejected",
            speculative.1
        );
    }
}

#[test]
fn speculation_stops_where_plain_generation_stops() {
    let prompt = [4, 8];
    let truth = fake_model::greedy(&prompt, 30, VOCAB);
    let mut known = prompt.to_vec();
    known.extend_from_slice(&truth);
    let stores = || vec![SuffixStore::build(std::slice::from_ref(&known)).unwrap()];
    // At an end-of-text id inside an accepted draft.
    let eos = truth[6];
    let [plain, _, speculative] = three_ways(&prompt, 30, &[eos], 0.0, stores());
    assert_eq!(speculative.0, plain.0);
    assert!(!plain.0.contains(&eos));
    // At -n in the middle of a draft, and with -n 1 and 0.
    for max_new in [0, 1, 2, 5, 13] {
        let [plain, _, speculative] = three_ways(&prompt, max_new, &[], 0.0, stores());
        assert_eq!(plain.0.len(), max_new);
        assert_eq!(speculative.0, plain.0, "-n {max_new}");
    }
}

#[test]
fn a_stop_from_emit_ends_speculation_at_that_token() {
    let prompt = [3, 5, 7];
    let truth = fake_model::greedy(&prompt, 20, VOCAB);
    let mut known = prompt.to_vec();
    known.extend_from_slice(&truth);
    let config = fake_model::config(VOCAB, CTX);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let mut session = Session::new(&model, CTX, 512).unwrap();
    let logits = session.prefill(&prompt).unwrap();
    let mut drafter = Drafter::new(vec![SuffixStore::build(&[known]).unwrap()], &prompt, 8);
    let mut out = Vec::new();
    let g = generate_speculative(
        &mut session,
        &logits,
        &mut sampler(0.0, 0),
        (20, &[]),
        &mut drafter,
        |t| {
            out.push(t);
            Ok(if out.len() == 4 {
                Flow::Stop
            } else {
                Flow::Continue
            })
        },
    )
    .unwrap();
    assert_eq!(out, truth[..4]);
    assert!(g.stopped_by_emit);
}

#[test]
fn speculation_at_the_end_of_the_context_drafts_only_what_fits() {
    let config = fake_model::config(VOCAB, 12);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let prompt = [3, 5, 7];
    let truth = fake_model::greedy(&prompt, 9, VOCAB);
    let mut known = prompt.to_vec();
    known.extend_from_slice(&fake_model::greedy(&prompt, 30, VOCAB));
    let mut session = Session::new(&model, 12, 512).unwrap();
    let logits = session.prefill(&prompt).unwrap();
    let mut drafter = Drafter::new(vec![SuffixStore::build(&[known]).unwrap()], &prompt, 8);
    let mut out = Vec::new();
    generate_speculative(
        &mut session,
        &logits,
        &mut sampler(0.0, 0),
        (9, &[]),
        &mut drafter,
        |t| {
            out.push(t);
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    assert_eq!(out, truth);
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
}

/// The speculative-sampling rule, statistically: a drafted token x is
/// taken with probability p(x), and the emitted token is distributed as p
/// whether the draft was taken or not (rejection draws from p without x).
/// The fake model's distribution after a token depends only on the
/// distance d = (t − predicted) mod V: q(d) ∝ exp(−d / T). Each run drafts,
/// after whatever first token was sampled, the token at distance 1.
#[test]
fn drafts_are_taken_with_the_models_probability_and_outputs_keep_its_distribution() {
    const RUNS: u64 = 4000;
    let temperature = 1.0f32;
    let (a, b) = (3u32, 5u32);
    let vocab = VOCAB as u32;
    let predicted = |t: u32, prev: u32| (t + prev + 1) % vocab;
    // After [b, v], the second token's draft: distance 1 from the prediction.
    let docs: Vec<Vec<u32>> = (0..vocab)
        .map(|v| vec![b, v, (predicted(v, b) + 1) % vocab])
        .collect();
    let store = SuffixStore::build(&docs).unwrap();
    let config = fake_model::config(VOCAB, CTX);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let q: Vec<f64> = {
        let w: Vec<f64> = (0..VOCAB)
            .map(|d| (-(d as f64) / temperature as f64).exp())
            .collect();
        let z: f64 = w.iter().sum();
        w.iter().map(|w| w / z).collect()
    };
    let (mut taken, mut by_distance) = (0u64, vec![0u64; VOCAB]);
    for seed in 0..RUNS {
        let mut session = Session::new(&model, CTX, 512).unwrap();
        let logits = session.prefill(&[a, b]).unwrap();
        let mut drafter = Drafter::new(vec![store.clone()], &[a, b], 1);
        let mut out = Vec::new();
        let g = generate_speculative(
            &mut session,
            &logits,
            &mut sampler(temperature, seed),
            (3, &[]),
            &mut drafter,
            |t| {
                out.push(t);
                Ok(Flow::Continue)
            },
        )
        .unwrap();
        // One draft (for the second token; the third has no room for one).
        assert_eq!((g.drafted, out.len()), (1, 3), "seed {seed}");
        taken += g.accepted as u64;
        let d = (out[1] + vocab - predicted(out[0], b)) % vocab;
        by_distance[d as usize] += 1;
    }
    // Taken with probability q(1): within 4 standard deviations.
    let rate = taken as f64 / RUNS as f64;
    let sd = (q[1] * (1.0 - q[1]) / RUNS as f64).sqrt();
    assert!(
        (rate - q[1]).abs() < 4.0 * sd,
        "draft taken {rate:.4} of the time, the model's probability is {:.4}",
        q[1]
    );
    // The emitted token's distance: chi-square over d = 0..5 and the rest
    // (6 degrees of freedom; 22.46 is the 0.1% point).
    let mut observed: Vec<f64> = by_distance[..6].iter().map(|&c| c as f64).collect();
    observed.push(by_distance[6..].iter().sum::<u64>() as f64);
    let mut expected: Vec<f64> = q[..6].iter().map(|p| p * RUNS as f64).collect();
    expected.push(q[6..].iter().sum::<f64>() * RUNS as f64);
    let chi2: f64 = observed
        .iter()
        .zip(&expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    assert!(
        chi2 < 22.46,
        "chi-square {chi2:.2}: {observed:?} vs {expected:?}"
    );
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
}

/// When the adaptive policy declines every draft (rows measured costly,
/// drafts rejected), one declined draft in EXPLORE_EVERY is still verified
/// for one token, so that its beliefs keep being measured.
#[test]
fn a_policy_that_declines_every_draft_still_explores() {
    let prompt = [3, 5, 7, 9, 3, 5];
    let mut drafter = Drafter::new(Vec::new(), &prompt, 8).sized(Sizing::Adaptive);
    drafter.policy.observe_cost(1, 0.040);
    drafter.policy.observe_cost(2, 0.080);
    for _ in 0..50 {
        drafter.policy.observe_draft(0, 2, 1, 0);
    }
    let tries = 2 * EXPLORE_EVERY as usize;
    let chosen: Vec<_> = (0..tries).filter_map(|_| drafter.choose(8)).collect();
    assert_eq!(chosen.len(), 2, "{chosen:?}");
    // The context's match of [3, 5] offers what followed it: 7.
    assert!(chosen
        .iter()
        .all(|(source, _, tokens)| *source == 0 && tokens == &[7]));
    // Fixed sizing never declines.
    let mut fixed = Drafter::new(Vec::new(), &prompt, 8);
    assert_eq!(fixed.choose(8).map(|(_, _, t)| t), Some(vec![7, 9, 3, 5]));
}
