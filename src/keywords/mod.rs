//! Hybrid search: the words photos already carry — folder and file names, EXIF/IPTC/XMP
//! keywords, titles and descriptions, camera make and model, capture year and month — fused
//! with the CLIP ranking, so that "germany" finds `Trips/Germany 2019/` and "oma" the photos
//! tagged Oma, which no pixel names.
//!
//! - **Stored** ([`glimpse_store::PhotoWords`], column family `words`): the words read from a
//!   file's metadata when it is indexed, committed in the same atomic batch as its record (a
//!   crash keeps both or neither), and a JPEG's RAW original.
//! - **Derived**: the words of a record's path and capture date, computed on open and on every
//!   commit or move; nothing to store, nothing to go stale. A library written before words
//!   existed gets these at once (its file-metadata words on the next re-index of a changed
//!   file).
//! - **Index** ([`index::KeywordIndex`], in the catalog): term → photos, in memory.
//! - **Fusion** ([`fuse::rrf`]): reciprocal-rank fusion of the CLIP candidates and the keyword
//!   matches; with [`Hybrid::Off`](crate::Hybrid::Off), or when no query term matches, the
//!   order is exactly the CLIP order.

pub(crate) mod extract;
pub(crate) mod fuse;
pub(crate) mod index;
mod text;

use crate::catalog::Catalog;
use crate::library::Library;
use crate::types::{Hit, ImageId, SearchOptions};
use crate::Result;
use glimpse_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;

/// CLIP candidates fused with the keyword matches: at least this many (or the whole library).
const MIN_CANDIDATES: usize = 100;

/// Loads the stored words of the catalog's photos into its keyword index. An entry that does
/// not decode is skipped (logged): words are side data, the photo stays searchable by CLIP.
pub(crate) fn load_stored(store: &Store, catalog: &mut Catalog) {
    for item in store.all_words() {
        match item {
            Ok((id, words)) if catalog.get(id).is_some() => {
                catalog.words.set_stored(id, &words.words)
            }
            Ok(_) => {}
            Err(e) => log::warn!("skipping unreadable keywords: {e}"),
        }
    }
}

impl Library {
    /// The RAW file photo `id` (a JPEG) was indexed in place of: its same-stem sibling in the
    /// same folder, skipped by indexing. `None` for a photo without one.
    pub fn original(&self, id: ImageId) -> Result<Option<PathBuf>> {
        Ok(self.store.words(id)?.and_then(|w| w.original))
    }

    /// The words a text search matches for photo `id`, as indexed (lower case): its folder and
    /// file-name words, its metadata keywords, its capture year and month.
    pub fn keywords(&self, id: ImageId) -> Vec<String> {
        self.catalog().words.words(id)
    }

    /// A text search with [`SearchOptions::hybrid`]: the CLIP hits fused with the keyword
    /// matches of `query` (see the module docs); the CLIP search alone when hybrid is off or
    /// nothing matches.
    pub(crate) fn search_hybrid(
        &self,
        query: &str,
        q: &[f32],
        k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        if !opts.hybrid.is_on() {
            return self.search_vector(q, k, opts, None);
        }
        let keyword_hits = {
            let catalog = self.catalog();
            catalog.words.rank(query, |id| catalog.allows(id, opts))
        };
        if keyword_hits.is_empty() || k == 0 {
            return self.search_vector(q, k, opts, None);
        }
        let depth = k.saturating_mul(4).max(MIN_CANDIDATES);
        let mut clip_opts = opts.clone();
        clip_opts.min_score = None;
        let clip = self.search_vector(q, depth, &clip_opts, None)?;
        let order = match opts.hybrid {
            crate::Hybrid::Weighted(w) => fuse::weighted(
                &clip.iter().map(|h| (h.id, h.score)).collect::<Vec<_>>(),
                &keyword_hits,
                w,
            ),
            _ => fuse::rrf(
                &clip.iter().map(|h| h.id).collect::<Vec<_>>(),
                &keyword_hits,
            ),
        };
        let mut clip: HashMap<ImageId, Hit> = clip.into_iter().map(|h| (h.id, h)).collect();
        let mut matched: HashMap<ImageId, Vec<String>> = keyword_hits
            .into_iter()
            .map(|h| (h.id, h.matched))
            .collect();
        let index = self.index();
        let catalog = self.catalog();
        let mut hits = Vec::with_capacity(k);
        for id in order {
            if hits.len() == k {
                break;
            }
            let words = matched.remove(&id).unwrap_or_default();
            let hit = match clip.remove(&id) {
                Some(h) => h,
                None => {
                    // A keyword match outside the CLIP candidates: its cosine from the index.
                    let (Some(v), Some(e)) = (index.get(id), catalog.get(id)) else {
                        continue;
                    };
                    let score = v.iter().zip(q).map(|(a, b)| a * b).sum();
                    Hit {
                        id,
                        path: e.path.clone(),
                        score,
                        relevance: None,
                        matched: Vec::new(),
                    }
                }
            };
            // `min_score` bounds the cosine of hits the keywords do not vouch for.
            if words.is_empty() && opts.min_score.is_some_and(|m| hit.score < m) {
                continue;
            }
            hits.push(Hit {
                matched: words,
                ..hit
            });
        }
        Ok(hits)
    }
}
