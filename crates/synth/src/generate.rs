//! Writing generated pictures and their captions into a folder.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::render::render;
use crate::spec::*;

/// One generated picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The file written.
    pub path: PathBuf,
    /// What the picture shows.
    pub spec: Spec,
    /// Its caption (also in `captions.tsv`).
    pub caption: String,
    /// The same caption in Chinese (also in `captions_zh.tsv`).
    pub caption_zh: String,
}

/// The picture file format [`generate_specs`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Lossless PNG.
    #[default]
    Png,
    /// JPEG at quality 92 (smaller files, slight artefacts, like real photos).
    Jpeg,
}

/// Writes `n` random pictures (from [`random_specs`]`(n, seed)`) of [`DEFAULT_SIZE`] pixels as
/// PNG files `00000.png`, ... into `dir` (created if missing), with their captions in
/// `dir/captions.tsv` (and in Chinese in `dir/captions_zh.tsv`).
///
/// # Errors
/// [`Error::Io`] if the folder or a file cannot be written.
pub fn generate(dir: impl AsRef<Path>, n: usize, seed: u64) -> Result<Vec<Sample>> {
    generate_specs(dir, &random_specs(n, seed), seed, DEFAULT_SIZE, Format::Png)
}

/// Writes one picture per spec (of `size` pixels, in `format`) into `dir` with captions drawn
/// from a generator seeded with `caption_seed`, and `dir/captions.tsv` (English) and
/// `dir/captions_zh.tsv` (the same captions in Chinese). Pictures are rendered in parallel.
///
/// # Errors
/// [`Error::Io`] if the folder or a file cannot be written.
pub fn generate_specs(
    dir: impl AsRef<Path>,
    specs: &[Spec],
    caption_seed: u64,
    size: u32,
    format: Format,
) -> Result<Vec<Sample>> {
    use rayon::prelude::*;

    let dir = dir.as_ref();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let extension = match format {
        Format::Png => "png",
        Format::Jpeg => "jpg",
    };
    let samples: Vec<Sample> = specs
        .iter()
        .zip(captions_of(specs, caption_seed))
        .enumerate()
        .map(|(i, (spec, Captions { en, zh }))| Sample {
            path: dir.join(format!("{i:05}.{extension}")),
            spec: *spec,
            caption: en,
            caption_zh: zh,
        })
        .collect();
    samples.par_iter().try_for_each(|sample| {
        let image = render(&sample.spec, size);
        save(&image, &sample.path, format)
    })?;
    type Column = fn(&Sample) -> &str;
    let files: [(&str, Column); 2] = [
        (CAPTIONS_FILE, |s| &s.caption),
        (CAPTIONS_ZH_FILE, |s| &s.caption_zh),
    ];
    for (file, text) in files {
        let tsv_path = dir.join(file);
        let mut tsv = Vec::new();
        for sample in &samples {
            let name = sample
                .path
                .file_name()
                .expect("generated names have a file name")
                .to_string_lossy();
            writeln!(tsv, "{name}\t{}", text(sample)).expect("writing to a Vec");
        }
        fs::write(&tsv_path, tsv).map_err(io(&tsv_path))?;
    }
    Ok(samples)
}

/// The captions [`generate_specs`] writes for `specs` with `caption_seed`, in English and
/// Chinese, without rendering a picture (for training a text tower on captions alone).
///
/// ```
/// let specs = glimpse_synth::random_specs(3, 7);
/// let captions = glimpse_synth::captions_of(&specs, 7);
/// assert_eq!(captions.len(), 3);
/// assert!(captions[0].zh.contains("三角形")); // "a red triangle": "一个红色三角形"
/// ```
pub fn captions_of(specs: &[Spec], caption_seed: u64) -> Vec<Captions> {
    let mut rng = StdRng::seed_from_u64(caption_seed ^ 0xCA97_1045);
    specs.iter().map(|spec| captions(spec, &mut rng)).collect()
}

fn save(image: &RgbImage, path: &Path, format: Format) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::create(path).map_err(io)?;
    let mut writer = std::io::BufWriter::new(file);
    let encoded = match format {
        Format::Png => image.write_to(&mut writer, image::ImageFormat::Png),
        Format::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, 92).encode_image(image)
        }
    };
    encoded.map_err(|e| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    writer.flush().map_err(io)
}
