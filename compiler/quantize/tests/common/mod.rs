//! Test data and naive references shared by the integration tests.
#![allow(dead_code)]

/// xorshift64* uniform generator in [0, 1), independent of the crate's RNG.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn normals(&mut self, len: usize, sigma: f64) -> Vec<f32> {
        (0..len).map(|_| (self.normal() * sigma) as f32).collect()
    }
}

/// Index `i` of a packed stream read bit by bit, exactly as the format doc
/// words it: bit `t` of the stream is bit `t mod 8` of byte `t / 8`.
pub fn read_index(stream: &[u8], bits: u8, i: usize) -> u8 {
    let mut q = 0u8;
    for t in 0..bits as usize {
        let bit = i * bits as usize + t;
        q |= ((stream[bit / 8] >> (bit % 8)) & 1) << t;
    }
    q
}

/// Ŵ decoded from the format doc's formula, independently of the crate.
pub fn decode(q: &ditto_quantize::Quantized) -> Vec<f32> {
    let levels = 1usize << q.bits;
    (0..q.n * q.k)
        .map(|i| {
            let idx = read_index(&q.indices, q.bits, i) as usize;
            q.codebooks[(i / q.block) * levels + idx].to_f32()
        })
        .collect()
}

/// `‖A − B‖_F / ‖A‖_F` in f64.
pub fn rel_frobenius(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let den: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// J(c) = Σ_i w_i min_j (x_i − c_j)², brute force.
pub fn objective(values: &[f32], weights: &[f32], centroids: &[f64]) -> f64 {
    values
        .iter()
        .zip(weights)
        .map(|(&x, &w)| {
            let d = centroids
                .iter()
                .map(|&c| (x as f64 - c).powi(2))
                .fold(f64::INFINITY, f64::min);
            w as f64 * d
        })
        .sum()
}
