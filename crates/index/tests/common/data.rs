//! Synthetic CLIP-like data: a low-dimensional Gaussian mixture projected to `dims` dimensions
//! plus isotropic noise, so that near neighbours are meaningful (unlike uniform noise).
//! Shared by the tests, the criterion bench and the `ann_bench` example.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Parameters of the mixture.
#[derive(Debug, Clone, Copy)]
pub struct Mixture {
    /// Latent dimension.
    pub latent: usize,
    /// Number of clusters.
    pub clusters: usize,
    /// Within-cluster spread relative to the spread of cluster centres.
    pub spread: f32,
    /// Isotropic noise added in the full space, relative to the signal's per-dim scale.
    pub noise: f32,
}

impl Default for Mixture {
    fn default() -> Self {
        Mixture {
            latent: 32,
            clusters: 100,
            spread: 0.6,
            noise: 0.35,
        }
    }
}

fn gauss(rng: &mut StdRng) -> f32 {
    // Box-Muller.
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// A generator: `points(n)` draws from the mixture; the same seed gives the same mixture.
pub struct Generator {
    dims: usize,
    mix: Mixture,
    centres: Vec<f32>,    // clusters × latent
    projection: Vec<f32>, // latent × dims
    rng: StdRng,
}

impl Generator {
    pub fn new(dims: usize, seed: u64) -> Self {
        Self::with_mixture(dims, seed, Mixture::default())
    }

    pub fn with_mixture(dims: usize, seed: u64, mix: Mixture) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = (0..mix.clusters * mix.latent)
            .map(|_| gauss(&mut rng))
            .collect();
        let scale = 1.0 / (mix.latent as f32).sqrt();
        let projection = (0..mix.latent * dims)
            .map(|_| gauss(&mut rng) * scale)
            .collect();
        Generator {
            dims,
            mix,
            centres,
            projection,
            rng,
        }
    }

    /// `n` vectors, flat (`n × dims`), not normalised.
    pub fn points(&mut self, n: usize) -> Vec<f32> {
        let (d, l) = (self.dims, self.mix.latent);
        // Each output coordinate has variance 1 + spread² (unit-variance latent projection).
        let noise = self.mix.noise * (1.0 + self.mix.spread * self.mix.spread).sqrt();
        let mut out = vec![0.0f32; n * d];
        let mut z = vec![0.0f32; l];
        for row in out.chunks_exact_mut(d) {
            let c = self.rng.gen_range(0..self.mix.clusters);
            for (j, zj) in z.iter_mut().enumerate() {
                *zj = self.centres[c * l + j] + self.mix.spread * gauss(&mut self.rng);
            }
            for (j, zj) in z.iter().enumerate() {
                let p = &self.projection[j * d..(j + 1) * d];
                for (o, pv) in row.iter_mut().zip(p) {
                    *o += zj * pv;
                }
            }
            for o in row.iter_mut() {
                *o += noise * gauss(&mut self.rng);
            }
        }
        out
    }
}

/// Unit-normalised copy of each row.
pub fn normalize_rows(flat: &[f32], dims: usize) -> Vec<f32> {
    let mut out = flat.to_vec();
    for row in out.chunks_exact_mut(dims) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= n);
    }
    out
}

/// Exact top-k ids (positions) by cosine, for already-normalised rows, with a keep predicate.
pub fn brute_force(
    base: &[f32],
    dims: usize,
    query: &[f32],
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<(usize, f32)> {
    let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut all: Vec<(usize, f32)> = base
        .chunks_exact(dims)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, row)| {
            (
                i,
                row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() / qn,
            )
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Fraction of `truth` found in `got`.
pub fn recall(got: &[u64], truth: &[u64]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hit = truth.iter().filter(|t| got.contains(t)).count();
    hit as f64 / truth.len() as f64
}
