//! The generation loop against a fake model whose output is known by rule.

mod common;

use std::sync::atomic::Ordering;

use common::fake_model::{self, FAULTS, WEIGHTS};
use ditto_rt::generate::{generate, Flow, Session};
use ditto_rt::model::Model;
use ditto_rt::sampler::{Sampler, SamplerConfig};
use ditto_rt::Error;

const VOCAB: usize = 37;

fn greedy_sampler() -> Sampler {
    Sampler::new(SamplerConfig {
        temperature: 0.0,
        top_k: 40,
        top_p: 0.95,
        seed: 0,
    })
}

fn run(
    prompt: &[u32],
    max_new: usize,
    eos: &[u32],
    batch: usize,
) -> (Vec<u32>, ditto_rt::generate::Generation) {
    let config = fake_model::config(VOCAB, 64);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let mut session = Session::new(&model, 64, batch).unwrap();
    let logits = session.prefill(prompt).unwrap();
    assert_eq!(session.pos(), prompt.len());
    let mut out = Vec::new();
    let generation = generate(
        &mut session,
        logits,
        &mut greedy_sampler(),
        max_new,
        eos,
        |id| {
            out.push(id);
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    assert_eq!(
        FAULTS.load(Ordering::SeqCst),
        0,
        "the fake model saw a contract violation"
    );
    (out, generation)
}

#[test]
fn greedy_generation_follows_the_model() {
    let prompt = [3, 5, 7];
    let (ids, generation) = run(&prompt, 10, &[], 512);
    assert_eq!(ids, fake_model::greedy(&prompt, 10, VOCAB));
    assert_eq!(generation.generated, 10);
    assert!(!generation.stopped_at_eos);
    // The last token is never decoded: -n 10 costs 9 decode calls.
    assert_eq!(generation.decode.tokens, 9);
}

#[test]
fn stops_before_an_end_of_text_id() {
    let prompt = [1, 2];
    let expected = fake_model::greedy(&prompt, 12, VOCAB);
    let eos = expected[4];
    let first = expected.iter().position(|&t| t == eos).unwrap();
    let (ids, generation) = run(&prompt, 12, &[99, eos], 512);
    assert_eq!(ids, expected[..first]);
    assert!(generation.stopped_at_eos);
    assert_eq!(generation.generated, first);
}

#[test]
fn emit_can_end_the_generation_without_another_decode() {
    let prompt = [3, 5, 7];
    let config = fake_model::config(VOCAB, 64);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let mut session = Session::new(&model, 64, 512).unwrap();
    let logits = session.prefill(&prompt).unwrap();
    let mut out = Vec::new();
    let generation = generate(&mut session, logits, &mut greedy_sampler(), 10, &[], |id| {
        out.push(id);
        Ok(if out.len() == 3 {
            Flow::Stop
        } else {
            Flow::Continue
        })
    })
    .unwrap();
    assert_eq!(out, fake_model::greedy(&prompt, 3, VOCAB));
    assert!(generation.stopped_by_emit && !generation.stopped_at_eos);
    assert_eq!(generation.generated, 3);
    assert_eq!(generation.decode.tokens, 2);
    assert_eq!(session.pos(), prompt.len() + 2);
}

#[test]
fn max_new_tokens_limits_and_zero_generates_nothing() {
    let (ids, _) = run(&[4], 1, &[], 512);
    assert_eq!(ids, fake_model::greedy(&[4], 1, VOCAB));
    let (ids, generation) = run(&[4], 0, &[], 512);
    assert!(ids.is_empty());
    assert_eq!(generation.decode.tokens, 0);
}

#[test]
fn chunked_prefill_matches_one_chunk() {
    let prompt: Vec<u32> = (0..11).map(|i| (i * 7 + 3) % VOCAB as u32).collect();
    for batch in [1, 2, 3, 4, 11, 512] {
        let (ids, _) = run(&prompt, 6, &[], batch);
        assert_eq!(ids, fake_model::greedy(&prompt, 6, VOCAB), "batch {batch}");
    }
}

#[test]
fn prompt_logits_via_prefill_and_via_decode_agree_with_the_rule() {
    let prompt: Vec<u32> = vec![9, 1, 30, 30, 2, 36, 0];
    let config = fake_model::config(VOCAB, 32);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let expected: Vec<f32> = fake_model::predicted_after(&prompt, VOCAB)
        .iter()
        .flat_map(|&next| fake_model::logits_row(next, VOCAB))
        .collect();
    for batch in [3, 512] {
        let mut session = Session::new(&model, 32, batch).unwrap();
        assert_eq!(
            session.prefill_all_logits(&prompt).unwrap(),
            expected,
            "prefill, batch {batch}"
        );
        assert_eq!(session.pos(), prompt.len());
    }
    let mut session = Session::new(&model, 32, 512).unwrap();
    assert_eq!(
        session.decode_all_logits(&prompt).unwrap(),
        expected,
        "decode"
    );
    // The cache holds the prompt afterwards: generation continues correctly.
    let mut logits = expected[(prompt.len() - 1) * VOCAB..].to_vec();
    let next = ditto_rt::sampler::argmax(&logits);
    session.decode(next, &mut logits).unwrap();
    let mut continued = prompt.clone();
    continued.push(next);
    assert_eq!(
        logits,
        fake_model::logits_row(
            *fake_model::predicted_after(&continued, VOCAB)
                .last()
                .unwrap(),
            VOCAB
        )
    );
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
}

#[test]
fn overflowing_the_context_is_an_error_not_a_crash() {
    let config = fake_model::config(VOCAB, 5);
    let model = Model::new(fake_model::entry_points(&config), WEIGHTS, &config);
    let mut session = Session::new(&model, 5, 512).unwrap();
    assert!(matches!(
        session.prefill(&[1, 2, 3, 4, 5, 6]),
        Err(Error::Usage(_))
    ));
    let logits = session.prefill(&[1, 2, 3]).unwrap();
    // 2 positions left: -n 3 needs 2 decode calls (fits), -n 4 needs 3 (does not).
    let mut tail = Vec::new();
    let err = generate(&mut session, logits, &mut greedy_sampler(), 4, &[], |id| {
        tail.push(id);
        Ok(Flow::Continue)
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Usage(ref m) if m.contains("context full")),
        "{err}"
    );
    assert_eq!(tail.len(), 3);
    assert_eq!(FAULTS.load(Ordering::SeqCst), 0);
}
