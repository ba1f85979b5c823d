//! The sampler against independent references: argmax, softmax in f64,
//! the nucleus computed by a full sort.

use ditto_rt::sampler::{argmax, Rng, Sampler, SamplerConfig};

fn config(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> SamplerConfig {
    SamplerConfig {
        temperature,
        top_k,
        top_p,
        seed,
    }
}

fn random_logits(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next_f32() * 10.0 - 5.0).collect()
}

/// softmax(logits / t) in f64.
fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / t).exp())
        .collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn greedy_is_argmax() {
    for seed in 0..20 {
        let logits = random_logits(seed, 1000);
        let want = logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &l)| {
                if l > best.1 {
                    (i, l)
                } else {
                    best
                }
            })
            .0 as u32;
        assert_eq!(argmax(&logits), want);
        let mut sampler = Sampler::new(config(0.0, 40, 0.95, seed));
        assert_eq!(sampler.sample(&logits), want);
    }
    // Ties go to the first; NaN never wins.
    assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
    assert_eq!(argmax(&[f32::NAN, 2.0, f32::NAN, 1.0]), 1);
}

/// The first index of the largest non-NaN logit, one at a time (0 when
/// there is none above −∞).
fn first_max(logits: &[f32]) -> u32 {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if l > best.1 {
            best = (i, l);
        }
    }
    best.0 as u32
}

#[test]
fn argmax_over_a_vocabulary() {
    // Lengths around the 16 lanes and the size of a real vocabulary; NaN and
    // −∞ sprinkled in; the maximum repeated at ids in different lanes.
    let mut rng = Rng::new(7);
    for len in [1, 15, 16, 17, 33, 1000, 151_936, 151_943] {
        for case in 0..4 {
            let mut logits = random_logits(len as u64 + case, len);
            for l in logits.iter_mut() {
                match rng.next_f32() {
                    r if r < 0.01 => *l = f32::NAN,
                    r if r < 0.02 => *l = f32::NEG_INFINITY,
                    _ => {}
                }
            }
            if case >= 2 && len > 3 {
                // The same maximum at several ids: the first must win.
                let at = [len / 3, len / 2, len - 1];
                for &i in &at {
                    logits[i] = 6.0;
                }
            }
            if case == 3 {
                logits[len - 1] = f32::NAN;
            }
            assert_eq!(
                argmax(&logits),
                first_max(&logits),
                "len {len}, case {case}"
            );
        }
    }
    // Nothing above −∞.
    assert_eq!(argmax(&[f32::NEG_INFINITY; 40]), 0);
    let mut mixed = vec![f32::NEG_INFINITY; 40];
    mixed[3] = f32::NAN;
    assert_eq!(argmax(&mixed), 0);
}

#[test]
fn top_k_one_is_greedy() {
    for seed in 0..20 {
        let logits = random_logits(100 + seed, 500);
        let mut sampler = Sampler::new(config(1.5, 1, 1.0, seed));
        for _ in 0..10 {
            assert_eq!(sampler.sample(&logits), argmax(&logits));
        }
    }
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let logits = random_logits(7, 300);
    let draw = |seed| {
        let mut sampler = Sampler::new(config(1.0, 0, 1.0, seed));
        (0..200)
            .map(|_| sampler.sample(&logits))
            .collect::<Vec<u32>>()
    };
    assert_eq!(draw(42), draw(42));
    assert_eq!(draw(0), draw(0));
    assert_ne!(draw(42), draw(43));
}

#[test]
fn top_k_keeps_the_k_largest() {
    let logits = random_logits(11, 200);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let mut sampler = Sampler::new(config(1.0, 7, 1.0, 0));
    let mut kept: Vec<usize> = sampler
        .candidates(&logits)
        .iter()
        .map(|c| c.id as usize)
        .collect();
    kept.sort();
    let mut want = order[..7].to_vec();
    want.sort();
    assert_eq!(kept, want);
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_p() {
    for (seed, top_p, temperature) in [
        (1, 0.5, 1.0),
        (2, 0.9, 0.7),
        (3, 0.95, 1.3),
        (4, 0.1, 1.0),
        (5, 0.999, 2.0),
    ] {
        let logits = random_logits(seed, 1000);
        let probs = softmax(&logits, temperature as f64);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let mut mass = 0.0;
        let mut want = Vec::new();
        for &i in &order {
            want.push(i);
            mass += probs[i];
            if mass >= top_p as f64 {
                break;
            }
        }
        let mut sampler = Sampler::new(config(temperature, 0, top_p, seed));
        let candidates = sampler.candidates(&logits);
        let kept: Vec<usize> = candidates.iter().map(|c| c.id as usize).collect();
        assert_eq!(kept, want, "top_p {top_p}");
        // Renormalized over the nucleus, in order.
        let nucleus: f64 = want.iter().map(|&i| probs[i]).sum();
        for c in candidates {
            assert!((c.prob as f64 - probs[c.id as usize] / nucleus).abs() < 1e-5);
        }
        // Draws stay inside the nucleus.
        let mut sampler = Sampler::new(config(temperature, 0, top_p, seed));
        for _ in 0..2000 {
            assert!(want.contains(&(sampler.sample(&logits) as usize)));
        }
    }
}

#[test]
fn temperature_draws_follow_the_softmax() {
    let logits = [1.0, 2.0, 0.5, -1.0, 1.5];
    let temperature = 0.8;
    let probs = softmax(&logits, temperature as f64);
    let mut sampler = Sampler::new(config(temperature, 0, 1.0, 1234));
    let draws = 200_000;
    let mut counts = [0usize; 5];
    for _ in 0..draws {
        counts[sampler.sample(&logits) as usize] += 1;
    }
    for i in 0..5 {
        let freq = counts[i] as f64 / draws as f64;
        // Standard deviation is at most 0.0012 here: 0.008 is more than 6 of them.
        assert!(
            (freq - probs[i]).abs() < 0.008,
            "token {i}: {freq} vs {}",
            probs[i]
        );
    }
}

#[test]
fn rng_is_uniform_enough() {
    let mut rng = Rng::new(0);
    let mut buckets = [0usize; 10];
    for _ in 0..100_000 {
        let x = rng.next_f32();
        assert!((0.0..1.0).contains(&x));
        buckets[(x * 10.0) as usize] += 1;
    }
    for b in buckets {
        assert!((9_500..10_500).contains(&b), "{buckets:?}");
    }
}
