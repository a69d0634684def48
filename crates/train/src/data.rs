//! Training data: captioned images in memory, augmentation and batching on the CPU.

use std::fs;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use glimpse_encoder::error::{Error, Result};
use glimpse_encoder::preprocess::decode::{decode_path, DecodeOptions};
use glimpse_encoder::preprocess::resize::{resize_rgb8, Filter};
use glimpse_encoder::preprocess::{Pixels, Preprocessor};
use glimpse_synth::{mentions_side, CAPTIONS_FILE};

/// Captioned images, decoded and held in memory.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    images: Vec<RgbImage>,
    captions: Vec<String>,
}

impl Dataset {
    /// Reads a folder with a `captions.tsv` (one `file<TAB>caption` line per image, the file
    /// relative to the folder; empty lines and lines starting with `#` are skipped) and decodes
    /// every image, in parallel.
    ///
    /// # Errors
    /// [`Error::Io`] if `captions.tsv` cannot be read; [`Error::Dataset`] for a line without a
    /// tab or with an empty caption, or no images; the decoding error of the first image that
    /// fails.
    pub fn from_folder(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let tsv = dir.join(CAPTIONS_FILE);
        let text = fs::read_to_string(&tsv).map_err(|source| Error::Io {
            path: tsv.clone(),
            source,
        })?;
        let mut entries: Vec<(PathBuf, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: &str| Error::Dataset {
                path: tsv.clone(),
                message: format!("line {}: {message}", n + 1),
            };
            let (file, caption) = line
                .split_once('\t')
                .ok_or_else(|| bad("expected `file<TAB>caption`"))?;
            if caption.trim().is_empty() {
                return Err(bad("empty caption"));
            }
            entries.push((dir.join(file), caption.trim().to_owned()));
        }
        if entries.is_empty() {
            return Err(Error::Dataset {
                path: tsv,
                message: "no images listed".into(),
            });
        }
        let options = DecodeOptions::default();
        let images = entries
            .par_iter()
            .map(|(path, _)| decode_path(path, &options))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            images,
            captions: entries.into_iter().map(|(_, c)| c).collect(),
        })
    }

    /// A dataset from any `(image, caption)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (RgbImage, String)>) -> Self {
        let (images, captions) = pairs.into_iter().unzip();
        Self { images, captions }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The captions, in order.
    pub fn captions(&self) -> &[String] {
        &self.captions
    }

    /// The images, in order.
    pub fn images(&self) -> &[RgbImage] {
        &self.images
    }
}

/// Random augmentation of training images (applied before the normalisation).
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    /// Range of the crop's area as a fraction of the image's (`RandomResizedCrop`'s `scale`);
    /// `(1.0, 1.0)` disables cropping.
    pub crop_scale: (f32, f32),
    /// Range of the crop's aspect ratio, width / height (`ratio`).
    pub crop_ratio: (f32, f32),
    /// Mirror left ↔ right with probability ½, only for images whose caption says neither
    /// "left" nor "right".
    pub flip: bool,
}

impl Default for Augment {
    /// Mild: 80–100 % of the area, ratio 3/4–4/3, flips where captions allow. (CLIP's 8–100 %
    /// would cut positions and small objects out of the picture.)
    fn default() -> Self {
        Self {
            crop_scale: (0.8, 1.0),
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip: true,
        }
    }
}

impl Augment {
    /// No augmentation: every image goes through the checkpoint's plain preprocessing.
    pub fn none() -> Self {
        Self {
            crop_scale: (1.0, 1.0),
            crop_ratio: (1.0, 1.0),
            flip: false,
        }
    }

    /// Augments and preprocesses one image into `size`² normalised pixels.
    pub fn apply(
        &self,
        image: &RgbImage,
        caption: &str,
        size: usize,
        preprocessor: &Preprocessor,
        rng: &mut impl Rng,
    ) -> Pixels {
        if *self == Augment::none() {
            return preprocessor.preprocess_rgb8(image);
        }
        let (w, h) = (image.width() as f32, image.height() as f32);
        // RandomResizedCrop: up to 10 tries at a crop inside the image, else the whole image.
        let mut crop = (0, 0, image.width(), image.height());
        for _ in 0..10 {
            let area = w * h * rng.gen_range(self.crop_scale.0..=self.crop_scale.1);
            let log_ratio = rng.gen_range(self.crop_ratio.0.ln()..=self.crop_ratio.1.ln());
            let ratio = log_ratio.exp();
            let cw = (area * ratio).sqrt().round();
            let ch = (area / ratio).sqrt().round();
            if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
                let x = rng.gen_range(0.0..=(w - cw)).round() as u32;
                let y = rng.gen_range(0.0..=(h - ch)).round() as u32;
                crop = (x, y, cw as u32, ch as u32);
                break;
            }
        }
        let cropped = image::imageops::crop_imm(image, crop.0, crop.1, crop.2, crop.3).to_image();
        let mut resized = resize_rgb8(&cropped, size as u32, size as u32, Filter::Bicubic);
        if self.flip && !mentions_side(caption) && rng.gen_bool(0.5) {
            image::imageops::flip_horizontal_in_place(&mut resized);
        }
        preprocessor.normalize(&resized)
    }
}

/// Augments and normalises the images at `indices` in parallel; each image's randomness comes
/// from its own seed, so the result does not depend on the thread schedule. Returns the pixels
/// of the batch, `[batch, 3, size, size]` flattened.
pub(crate) fn batch_pixels(
    data: &Dataset,
    indices: &[usize],
    seeds: &[u64],
    augment: &Augment,
    size: usize,
    preprocessor: &Preprocessor,
) -> Vec<f32> {
    let per_image: Vec<Vec<f32>> = indices
        .par_iter()
        .zip(seeds.par_iter())
        .map(|(&i, &seed)| {
            let mut rng = StdRng::seed_from_u64(seed);
            augment
                .apply(
                    &data.images[i],
                    &data.captions[i],
                    size,
                    preprocessor,
                    &mut rng,
                )
                .data
        })
        .collect();
    per_image.concat()
}

/// Draws batches without replacement within an epoch, reshuffling every epoch, from a seeded
/// generator.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    order: Vec<usize>,
    next: usize,
    rng: StdRng,
}

impl Sampler {
    pub(crate) fn new(len: usize, seed: u64) -> Self {
        let mut sampler = Self {
            order: (0..len).collect(),
            next: len,
            rng: StdRng::seed_from_u64(seed),
        };
        sampler.reshuffle_if_done(len);
        sampler
    }

    fn reshuffle_if_done(&mut self, want: usize) {
        use rand::seq::SliceRandom;
        if self.next + want > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.next = 0;
        }
    }

    /// The next `batch` indices (distinct, as long as `batch <= len`) and one augmentation
    /// seed per index.
    pub(crate) fn next_batch(&mut self, batch: usize) -> (Vec<usize>, Vec<u64>) {
        let batch = batch.min(self.order.len());
        self.reshuffle_if_done(batch);
        let indices = self.order[self.next..self.next + batch].to_vec();
        self.next += batch;
        let seeds = (0..batch).map(|_| self.rng.gen()).collect();
        (indices, seeds)
    }
}
