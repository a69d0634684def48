//! Which image model a query tower was trained into: `glimpse_query_tower.json`, else the
//! model card's usage example (see `docs/MODELS.md`, "Multilingual query towers").

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::layout::read_json_opt;
use crate::error::{Error, Result};

/// The file Glimpse's own towers carry beside `modules.json`.
pub const QUERY_TOWER_FILE: &str = "glimpse_query_tower.json";

/// sentence-transformers' names of the CLIP image models it wraps, and the Hugging Face
/// repositories they are.
pub const SENTENCE_TRANSFORMERS_CLIP: [(&str, &str); 3] = [
    ("clip-ViT-B-32", "openai/clip-vit-base-patch32"),
    ("clip-ViT-B-16", "openai/clip-vit-base-patch16"),
    ("clip-ViT-L-14", "openai/clip-vit-large-patch14"),
];

/// Where a tower's image model was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredBy {
    /// `glimpse_query_tower.json`.
    File(PathBuf),
    /// The model card (`README.md`).
    Card(PathBuf),
}

/// The image model a tower declares: a Hugging Face repository id, a model folder name, or a
/// library model fingerprint digest (`content-v2:<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageModel {
    /// As declared, sentence-transformers' names mapped to their repositories
    /// ([`SENTENCE_TRANSFORMERS_CLIP`]).
    pub id: String,
    /// Where it was read.
    pub declared_by: DeclaredBy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TowerFile {
    image_model: String,
    dims: usize,
}

/// The repository id for a sentence-transformers CLIP name (with or without the
/// `sentence-transformers/` prefix); other names unchanged.
pub fn canonical_image_model(name: &str) -> String {
    let bare = name.strip_prefix("sentence-transformers/").unwrap_or(name);
    SENTENCE_TRANSFORMERS_CLIP
        .iter()
        .find(|(st, _)| st.eq_ignore_ascii_case(bare))
        .map_or_else(|| name.to_owned(), |(_, repo)| (*repo).to_owned())
}

/// Reads the declaration of the tower in `dir` whose output has `dims` dimensions.
///
/// # Errors
/// [`Error::Config`] for a `glimpse_query_tower.json` that is malformed or whose `dims`
/// disagrees with the tower's output.
pub fn read_image_model(dir: &Path, dims: usize) -> Result<Option<ImageModel>> {
    let path = dir.join(QUERY_TOWER_FILE);
    if let Some(value) = read_json_opt(&path)? {
        let file: TowerFile = serde_json::from_value(value).map_err(|e| Error::Config {
            path: path.clone(),
            message: format!("{e} (expected {{\"image_model\": \"<id>\", \"dims\": <n>}})"),
        })?;
        if file.dims != dims {
            return Err(Error::Config {
                path,
                message: format!(
                    "declares dims {}, but the tower's Dense module outputs {dims}",
                    file.dims
                ),
            });
        }
        if file.image_model.trim().is_empty() {
            return Err(Error::Config {
                path,
                message: "image_model is empty".into(),
            });
        }
        return Ok(Some(ImageModel {
            id: canonical_image_model(file.image_model.trim()),
            declared_by: DeclaredBy::File(path),
        }));
    }
    let card = dir.join("README.md");
    let Ok(text) = std::fs::read_to_string(&card) else {
        return Ok(None);
    };
    Ok(image_model_in_card(&text).map(|id| ImageModel {
        id,
        declared_by: DeclaredBy::Card(card),
    }))
}

/// The image model a sentence-transformers card names in its usage example: the first
/// `SentenceTransformer('<name>')` whose name is one of [`SENTENCE_TRANSFORMERS_CLIP`].
pub fn image_model_in_card(text: &str) -> Option<String> {
    const CALL: &str = "SentenceTransformer(";
    let mut rest = text;
    while let Some(at) = rest.find(CALL) {
        rest = &rest[at + CALL.len()..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let inner = &rest[1..];
        let Some(end) = inner.find(quote) else {
            continue;
        };
        let name = &inner[..end];
        let canonical = canonical_image_model(name);
        if canonical != name {
            return Some(canonical);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multilingual_card_names_clip_b32() {
        let card = "img_model = SentenceTransformer('clip-ViT-B-32')\n\
                    text_model = SentenceTransformer('sentence-transformers/clip-ViT-B-32-multilingual-v1')";
        assert_eq!(
            image_model_in_card(card).as_deref(),
            Some("openai/clip-vit-base-patch32")
        );
        assert_eq!(
            image_model_in_card(
                "model = SentenceTransformer(\"sentence-transformers/clip-ViT-L-14\")"
            )
            .as_deref(),
            Some("openai/clip-vit-large-patch14")
        );
        assert_eq!(
            image_model_in_card("SentenceTransformer('all-MiniLM-L6-v2')"),
            None
        );
        assert_eq!(canonical_image_model("glimpse-shapes"), "glimpse-shapes");
    }
}
