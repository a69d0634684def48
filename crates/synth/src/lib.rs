//! A generator of captioned synthetic photos: coloured shapes on textured backgrounds.
//!
//! Every picture shows one object: a [`Shape`] of some [`Colour`], [`Size`] and [`Position`] on
//! a [`Background`] texture, with anti-aliased edges, colour jitter and mid-tone, low-saturation
//! backgrounds (so that the object's colour is never the background's). Each picture comes with a
//! caption naming some or all of its attributes in varied wording ("a small red circle at the
//! top left on a striped background", "a photo of a big violet diamond", "red circle, top
//! left").
//!
//! It exists so that Glimpse can train and test a model that *understands* something without
//! any download: the demo model in `models/glimpse-shapes/` was trained on these pictures, and
//! text→image search over them can be checked semantically (does "a red circle" find red
//! circles?) rather than only numerically.
//!
//! Everything is deterministic: the same seed gives the same specs, pixels and captions on every
//! machine (the generator uses `rand`'s portable ChaCha stream, never the OS's randomness).
//!
//! ```
//! use glimpse_synth::{self as synth, Colour, Shape};
//!
//! // A balanced validation set: every colour × shape, other attributes random.
//! let specs = synth::balanced_specs(48, 7);
//! assert_eq!(specs[0].colour, Colour::Red);
//! assert_eq!(specs[0].shape, Shape::Circle);
//! let image = synth::render(&specs[0], 64);
//! assert_eq!(image.dimensions(), (64, 64));
//! // The queries that such a set answers: "a red circle", ...
//! assert_eq!(synth::queries()[0].0, "a red circle");
//! ```
#![deny(missing_docs)]

mod error;
mod generate;
mod render;
mod spec;
mod zh;

pub use error::{Error, Result};
pub use generate::{captions_of, generate, generate_specs, Format, Sample};
pub use render::render;
pub use spec::{
    balanced_specs, caption, captions, mentions_side, queries, queries_zh, random_specs,
    Background, Captions, Colour, Position, Shape, Size, Spec, CAPTIONS_FILE, CAPTIONS_ZH_FILE,
    DEFAULT_SIZE,
};

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::fs;

    #[test]
    fn deterministic_and_varied() {
        let a = random_specs(20, 3);
        assert_eq!(a, random_specs(20, 3));
        assert_ne!(a, random_specs(20, 4));
        assert_eq!(render(&a[0], 48), render(&a[0], 48));
        let mut rng = StdRng::seed_from_u64(1);
        let captions: std::collections::HashSet<String> =
            (0..50).map(|_| caption(&a[0], &mut rng)).collect();
        assert!(captions.len() > 5, "{captions:?}");
    }

    #[test]
    fn object_has_its_colour() {
        for spec in balanced_specs(48, 11) {
            let spec = Spec {
                size: Size::Large,
                position: Position::Center,
                ..spec
            };
            let image = render(&spec, 64);
            // Sample the centre of the object (every shape covers its centre).
            let p = image.get_pixel(32, 32).0;
            let want = spec.colour.rgb();
            let dist: i32 = (0..3).map(|i| (p[i] as i32 - want[i] as i32).abs()).sum();
            assert!(dist < 110, "{spec:?}: {p:?} vs {want:?}");
        }
    }

    #[test]
    fn shapes_differ() {
        let base = Spec {
            shape: Shape::Circle,
            colour: Colour::Red,
            size: Size::Large,
            position: Position::Center,
            background: Background::Plain,
            seed: 9,
        };
        let images: Vec<RgbImage> = Shape::ALL
            .iter()
            .map(|&shape| render(&Spec { shape, ..base }, 64))
            .collect();
        for i in 0..images.len() {
            for j in i + 1..images.len() {
                let differing = images[i]
                    .pixels()
                    .zip(images[j].pixels())
                    .filter(|(a, b)| a != b)
                    .count();
                assert!(
                    differing > 100,
                    "{:?} vs {:?}",
                    Shape::ALL[i],
                    Shape::ALL[j]
                );
            }
        }
    }

    #[test]
    fn captions_and_queries() {
        let spec = Spec {
            shape: Shape::Circle,
            colour: Colour::Orange,
            size: Size::Small,
            position: Position::TopLeft,
            background: Background::Striped,
            seed: 0,
        };
        assert_eq!(
            spec.full_caption(),
            "a small orange circle at the top left on a striped background"
        );
        assert_eq!(spec.query(), "an orange circle");
        assert_eq!(
            spec.full_caption_zh(),
            "条纹背景上，左上角有一个小的橙色圆形"
        );
        assert_eq!(spec.query_zh(), "一个橙色圆形");
        assert_eq!(queries_zh()[0].0, "一个红色圆形");
        assert_eq!(queries_zh().len(), queries().len());
        assert!(mentions_side("red circle, top left"));
        assert!(!mentions_side("a red circle at the top"));
        assert_eq!(spec.mirrored().position, Position::TopRight);
        assert_eq!(Position::Center.mirrored(), Position::Center);
        assert_eq!(queries().len(), 48);
        let specs = balanced_specs(96, 1);
        assert_eq!(specs[47].colour, Colour::Black);
        assert_eq!(specs[47].shape, Shape::Diamond);
        assert_eq!(specs[48].colour, Colour::Red);
    }

    /// Both languages come from one draw: the Chinese names the spec's colour and shape in
    /// the same place the English does, and the English is what `caption` alone gives.
    #[test]
    fn chinese_captions_follow_the_english() {
        let specs = random_specs(300, 5);
        let (mut a, mut b) = (StdRng::seed_from_u64(8), StdRng::seed_from_u64(8));
        let mut wordings = std::collections::HashSet::new();
        for spec in &specs {
            let both = captions(spec, &mut a);
            assert_eq!(both.en, caption(spec, &mut b));
            let colour_zh = ["红色", "绿色", "蓝色", "黄色", "紫", "橙色", "白色", "黑色"]
                [Colour::ALL.iter().position(|&c| c == spec.colour).unwrap()];
            assert!(both.zh.contains(colour_zh), "{spec:?}: {both:?}");
            assert!(!both.zh.is_ascii(), "{both:?}");
            // A side is named in Chinese exactly when it is in English (mirror flips rely on it).
            let zh_side = both.zh.contains('左') || both.zh.contains('右');
            assert_eq!(mentions_side(&both.en), zh_side, "{both:?}");
            wordings.insert(both.zh);
        }
        assert!(wordings.len() > 150, "{}", wordings.len());
    }

    #[test]
    fn generate_writes_pictures_and_captions() {
        let dir = tempfile::tempdir().unwrap();
        let samples = generate(dir.path(), 5, 2).unwrap();
        let tsv = fs::read_to_string(dir.path().join(CAPTIONS_FILE)).unwrap();
        assert_eq!(tsv.lines().count(), 5);
        let zh = fs::read_to_string(dir.path().join(CAPTIONS_ZH_FILE)).unwrap();
        let zh: Vec<&str> = zh.lines().collect();
        assert_eq!(zh.len(), 5);
        for (sample, line) in samples.iter().zip(&zh) {
            assert_eq!(line.split_once('\t').unwrap().1, sample.caption_zh);
        }
        for (sample, line) in samples.iter().zip(tsv.lines()) {
            let (file, caption) = line.split_once('\t').unwrap();
            assert_eq!(dir.path().join(file), sample.path);
            assert_eq!(caption, sample.caption);
            assert!(!sample.caption_zh.is_empty());
            let image = image::open(&sample.path).unwrap();
            assert_eq!(image.width(), DEFAULT_SIZE);
        }
    }
}
