//! Fusing the CLIP ranking with the keyword ranking.
//!
//! Reciprocal-rank fusion (Cormack et al. 2009): a photo's fused score is
//! `1/(K + clip_rank) + 1/(K + keyword_rank)` with `K` = [`RRF_K`], ranks from 1, a photo
//! absent from a list contributing nothing for it (a keyword match outside the CLIP candidates
//! takes the rank after the last candidate). Photos tied on keyword score share its best rank,
//! so among them CLIP decides. RRF needs no calibration between a cosine and a keyword score
//! and was measured against a weighted sum on the labelled set of `tests/library/hybrid.rs`
//! (docs/ARCHITECTURE.md gives the figures).

use super::index::KeywordHit;
use crate::types::ImageId;
use std::collections::HashMap;

/// RRF's rank offset (the paper's 60).
pub(crate) const RRF_K: f32 = 60.0;

/// Keyword ranks, ties sharing the best rank of their group (1-based).
fn keyword_ranks(keywords: &[KeywordHit]) -> HashMap<ImageId, usize> {
    let mut ranks = HashMap::new();
    let mut rank = 0;
    let mut last = f32::NAN;
    for (i, h) in keywords.iter().enumerate() {
        if h.score != last {
            rank = i + 1;
            last = h.score;
        }
        ranks.insert(h.id, rank);
    }
    ranks
}

/// The fused order of `clip` (ids best first) and `keywords` (best first): each id once.
pub(crate) fn rrf(clip: &[ImageId], keywords: &[KeywordHit]) -> Vec<ImageId> {
    let kw = keyword_ranks(keywords);
    let outside = clip.len() + 1;
    let clip_rank: HashMap<ImageId, usize> = clip
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i + 1))
        .collect();
    let mut ids: Vec<ImageId> = clip.to_vec();
    ids.extend(
        keywords
            .iter()
            .map(|h| h.id)
            .filter(|id| !clip_rank.contains_key(id)),
    );
    let score = |id: &ImageId| {
        let c = clip_rank.get(id).copied().unwrap_or(outside);
        let mut s = 1.0 / (RRF_K + c as f32);
        if let Some(&r) = kw.get(id) {
            s += 1.0 / (RRF_K + r as f32);
        }
        (s, c)
    };
    let mut scored: Vec<(f32, usize, ImageId)> = ids
        .into_iter()
        .map(|id| {
            let (s, c) = score(&id);
            (s, c, id)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    scored.into_iter().map(|(_, _, id)| id).collect()
}

/// The alternative measured against [`rrf`]: `cosine + weight · keyword_score / best
/// keyword_score` (a photo outside the CLIP candidates counts the lowest candidate cosine).
pub(crate) fn weighted(
    clip: &[(ImageId, f32)],
    keywords: &[KeywordHit],
    weight: f32,
) -> Vec<ImageId> {
    let best = keywords.iter().map(|h| h.score).fold(0.0f32, f32::max);
    let floor = clip.iter().map(|c| c.1).fold(f32::INFINITY, f32::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let mut score: HashMap<ImageId, f32> = clip.iter().copied().collect();
    for h in keywords {
        let s = score.entry(h.id).or_insert(floor);
        if best > 0.0 {
            *s += weight * h.score / best;
        }
    }
    let mut out: Vec<(ImageId, f32)> = score.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.into_iter().map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(id: ImageId, score: f32) -> KeywordHit {
        KeywordHit {
            id,
            score,
            matched: vec![],
        }
    }

    #[test]
    fn keyword_matches_lift_and_clip_orders_the_rest() {
        // No keyword match: exactly the CLIP order.
        assert_eq!(rrf(&[5, 3, 9], &[]), [5, 3, 9]);
        // 7 is outside the CLIP candidates but matches; 9 matches too (tied): both first,
        // in CLIP order (9 before the outsider), then the others in CLIP order.
        assert_eq!(rrf(&[5, 3, 9], &[kw(7, 1.0), kw(9, 1.0)]), [9, 7, 5, 3]);
        assert_eq!(weighted(&[(5, 0.3), (3, 0.2)], &[kw(3, 2.0)], 0.5), [3, 5]);
    }
}
