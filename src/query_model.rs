//! A library's query model ([`LibraryBuilder::query_model`]): a text-only tower in
//! sentence-transformers layout that embeds `search_text` queries into the image model's
//! space, checked against that model when the library opens and loaded on the first query.
//!
//! [`LibraryBuilder::query_model`]: crate::LibraryBuilder::query_model

use crate::model::Model;
use crate::{Error, Result};
use glimpse_encoder::backend::Backend;
use glimpse_encoder::sentence::{declared, ImageModel, QueryTower, SentenceLayout};
use glimpse_encoder::{LoadOptions, Precision};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(crate) struct QueryModel {
    dir: PathBuf,
    backend: Backend,
    precision: Precision,
    tower: OnceLock<QueryTower>,
}

impl QueryModel {
    /// Reads the tower's layout and declaration in `dir` (no weights) and checks it against
    /// the library's image model: the same dimension always; with `checked`, also the image
    /// model it declares (see [`declared_matches`]).
    ///
    /// # Errors
    /// [`Error::QueryModelMismatch`]; [`Error::Encoder`] for a layout Glimpse does not load.
    pub fn open(
        dir: &Path,
        image: &Model,
        backend: Backend,
        precision: Precision,
        checked: bool,
    ) -> Result<Self> {
        let mismatch = |reason: String| Error::QueryModelMismatch {
            path: dir.to_path_buf(),
            reason,
        };
        let layout = SentenceLayout::from_dir(dir)?;
        let dims = layout.dims();
        if dims != image.dims() {
            return Err(mismatch(format!(
                "its embeddings have {dims} dimensions, the library's model {} has {}",
                image.fingerprint().name,
                image.dims()
            )));
        }
        if checked {
            match declared::read_image_model(dir, dims)? {
                None => {
                    return Err(mismatch(format!(
                        "it declares no image model (no {} and no model card naming one); \
                         add that file, or use query_model_unchecked",
                        declared::QUERY_TOWER_FILE
                    )))
                }
                Some(ImageModel { id, declared_by }) => {
                    if !declared_matches(&id, image)? {
                        return Err(mismatch(format!(
                            "it was trained for `{id}` ({declared_by:?}), the library's model is \
                             {} (known as {}); use query_model_unchecked to override",
                            image.fingerprint(),
                            image.identities().join(", ")
                        )));
                    }
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            backend,
            precision,
            tower: OnceLock::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tower, loaded on first use.
    fn tower(&self) -> Result<&QueryTower> {
        if let Some(t) = self.tower.get() {
            return Ok(t);
        }
        let device = self.backend.device()?;
        let options = LoadOptions::default().precision(self.precision);
        let tower = QueryTower::load(&self.dir, &device, &options)?;
        Ok(self.tower.get_or_init(|| tower))
    }

    /// L2-normalised embeddings of texts, in the image model's space.
    pub fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(self.tower()?.embed_texts(texts)?)
    }
}

/// Whether a tower's declared image model `id` names `image`: a fingerprint digest
/// (`content-v2:…`) equal to the model's (at its precision or at f32); otherwise a name,
/// compared without case to the model's [identities](Model::identities) — whole repository
/// ids when both name an owner (`openai/clip-vit-base-patch32`), else the last part
/// (`clip-vit-base-patch32`, `glimpse-shapes`).
fn declared_matches(id: &str, image: &Model) -> Result<bool> {
    if id.starts_with(crate::model::DIGEST_SCHEME) {
        return Ok(image.digests()?.iter().any(|d| d == id));
    }
    Ok(names_match(id, &image.identities()))
}

fn names_match(id: &str, names: &[String]) -> bool {
    let id = id.to_lowercase();
    let last = |s: &str| s.rsplit('/').next().unwrap_or_default().to_owned();
    names
        .iter()
        .map(|n| n.to_lowercase())
        .any(|n| n == id || ((!n.contains('/') || !id.contains('/')) && last(&n) == last(&id)))
}

#[cfg(test)]
mod tests {
    use super::names_match;

    #[test]
    fn names_compare_by_repository_or_folder() {
        let names = [
            "clip-vit-base-patch32".to_owned(),
            "openai/clip-vit-base-patch32".to_owned(),
        ];
        assert!(names_match("openai/clip-vit-base-patch32", &names));
        assert!(names_match("OpenAI/CLIP-ViT-Base-Patch32", &names));
        assert!(names_match("clip-vit-base-patch32", &names));
        assert!(!names_match("laion/clip-vit-base-patch32", &names[1..]));
        assert!(names_match("laion/clip-vit-base-patch32", &names[..1]));
        assert!(!names_match("openai/clip-vit-large-patch14", &names));
        assert!(!names_match("glimpse-shapes", &names));
    }
}
