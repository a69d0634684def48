//! Prints generated captions, one `english<TAB>chinese` line per picture spec, for tools outside
//! Rust (the vocabulary script `scripts/make_zh_vocab.py`).
//!
//! ```text
//! cargo run -p glimpse-synth --example captions -- 12000 7 > captions.tsv
//! ```
//!
//! The arguments are the number of specs ([`glimpse_synth::random_specs`], default 12000) and
//! the seed (default 7); the captions are the ones [`glimpse_synth::generate_specs`] writes for
//! those specs with that caption seed (the `train` example's training set by default).

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(12000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let specs = glimpse_synth::random_specs(n, seed);
    for both in glimpse_synth::captions_of(&specs, seed) {
        println!("{}\t{}", both.en, both.zh);
    }
}
