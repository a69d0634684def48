//! Zero-shot classification, tagging and near-duplicate detection.

use crate::library::Library;
use crate::types::{Hit, ImageId, SearchOptions};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Labels with their probabilities, best first.
pub type Tags = Vec<(String, f32)>;

/// The prompt template CLIP's zero-shot evaluation uses for single labels.
pub const PROMPT_TEMPLATE: &str = "a photo of a {}";

/// Softmax of `scale * cosine` over labels (CLIP's zero-shot rule).
fn softmax_scores(image: &[f32], labels: &[Vec<f32>], scale: f32) -> Vec<f32> {
    let logits: Vec<f32> = labels
        .iter()
        .map(|t| scale * t.iter().zip(image).map(|(a, b)| a * b).sum::<f32>())
        .collect();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

impl Library {
    fn label_embeddings(&self, labels: &[&str]) -> Result<Vec<Vec<f32>>> {
        let prompts: Vec<String> = labels
            .iter()
            .map(|l| PROMPT_TEMPLATE.replace("{}", l))
            .collect();
        self.model.embed_texts(&prompts)
    }

    /// Zero-shot classification of an image file: the probability of each label (prompted as
    /// "a photo of a {label}"), softmax over `exp(logit_scale)`-scaled similarities, in the
    /// order given.
    pub fn classify(&self, image: impl AsRef<Path>, labels: &[&str]) -> Result<Vec<(String, f32)>> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let e = self.embed_image(image.as_ref())?;
        let texts = self.label_embeddings(labels)?;
        let probs = softmax_scores(&e, &texts, self.model.logit_scale()?);
        Ok(labels.iter().map(|l| l.to_string()).zip(probs).collect())
    }

    /// Zero-shot tags for every photo of the library: for each photo, the labels whose
    /// probability (as in [`classify`](Self::classify)) is at least `threshold`, best first.
    /// Photos with no such label are left out.
    pub fn tag_all(&self, labels: &[&str], threshold: f32) -> Result<Vec<(ImageId, Tags)>> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let texts = self.label_embeddings(labels)?;
        let scale = self.model.logit_scale()?;
        let mut out = Vec::new();
        for item in self.store.embeddings() {
            let (id, e) = item?;
            let probs = softmax_scores(&e, &texts, scale);
            let mut tags: Vec<(String, f32)> = labels
                .iter()
                .zip(probs)
                .filter(|(_, p)| *p >= threshold)
                .map(|(l, p)| (l.to_string(), p))
                .collect();
            tags.sort_by(|a, b| b.1.total_cmp(&a.1));
            if !tags.is_empty() {
                out.push((id, tags));
            }
        }
        Ok(out)
    }

    /// Groups of near-identical photos: photos linked by cosine similarity ≥ `min_similarity`
    /// (e.g. 0.95), grouped transitively; each group sorted by id, groups by their first id.
    pub fn duplicates(&self, min_similarity: f32) -> Result<Vec<Vec<Hit>>> {
        const NEIGHBOURS: usize = 16;
        let ids = self.catalog().ids();
        let position: HashMap<ImageId, usize> =
            ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let mut parent: Vec<usize> = (0..ids.len()).collect();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let opts = SearchOptions::default().min_score(min_similarity);
        for (i, &id) in ids.iter().enumerate() {
            let hits = match self.similar(id, NEIGHBOURS, &opts) {
                Ok(h) => h,
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for hit in hits {
                if let Some(&j) = position.get(&hit.id) {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        let mut groups: HashMap<usize, Vec<ImageId>> = HashMap::new();
        for (i, &id) in ids.iter().enumerate() {
            let root = find(&mut parent, i);
            groups.entry(root).or_default().push(id);
        }
        let index = self.index();
        let mut out: Vec<Vec<Hit>> = groups
            .into_values()
            .filter(|g| g.len() > 1)
            .map(|g| {
                let first = index.get(g[0]);
                g.into_iter()
                    .filter_map(|id| {
                        let path = self.path(id)?;
                        let score = match (&first, index.get(id)) {
                            (Some(a), Some(b)) => a.iter().zip(&b).map(|(x, y)| x * y).sum(),
                            _ => 1.0,
                        };
                        Some(Hit {
                            id,
                            path,
                            score,
                            relevance: None,
                            matched: Vec::new(),
                        })
                    })
                    .collect()
            })
            .collect();
        out.sort_by_key(|g: &Vec<Hit>| g.first().map(|h| h.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_prefers_the_closest_label_and_sums_to_one() {
        let image = [1.0, 0.0];
        let labels = vec![vec![0.0, 1.0], vec![1.0, 0.0], vec![0.6, 0.8]];
        let p = softmax_scores(&image, &labels, 100.0);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p[1] > 0.99 && p[1] > p[2] && p[2] > p[0]);
    }
}
