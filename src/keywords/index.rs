//! The in-memory keyword index: term → photos, rebuilt on open from the store's records and
//! words, kept in step with every commit (it lives in the [`Catalog`](crate::catalog::Catalog)).

use super::text::terms;
use crate::types::ImageId;
use std::collections::{HashMap, HashSet};

/// One photo's terms, each with the word it came from.
#[derive(Debug, Default, Clone)]
struct Doc {
    /// From the record: folders, file stem, capture date.
    derived: Vec<(String, String)>,
    /// From the file's metadata (stored in the store's words).
    stored: Vec<(String, String)>,
}

impl Doc {
    fn all(&self) -> impl Iterator<Item = &(String, String)> {
        self.derived.iter().chain(&self.stored)
    }
}

/// A photo matching a keyword query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeywordHit {
    pub id: ImageId,
    /// Sum of the inverse document frequencies of the query terms it has.
    pub score: f32,
    /// The photo's words that matched, lower case, sorted.
    pub matched: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct KeywordIndex {
    docs: HashMap<ImageId, Doc>,
    postings: HashMap<String, HashSet<ImageId>>,
}

fn terms_of(words: &[String]) -> Vec<(String, String)> {
    words.iter().flat_map(|w| terms(w)).collect()
}

impl KeywordIndex {
    fn unlink(&mut self, id: ImageId) {
        if let Some(doc) = self.docs.get(&id) {
            for (term, _) in doc.all() {
                if let Some(ids) = self.postings.get_mut(term) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        self.postings.remove(term);
                    }
                }
            }
        }
    }

    fn link(&mut self, id: ImageId) {
        if let Some(doc) = self.docs.get(&id) {
            for (term, _) in doc.all() {
                self.postings.entry(term.clone()).or_default().insert(id);
            }
        }
    }

    fn change(&mut self, id: ImageId, f: impl FnOnce(&mut Doc)) {
        self.unlink(id);
        f(self.docs.entry(id).or_default());
        self.link(id);
    }

    /// Sets the words that follow from photo `id`'s record (its path and capture date).
    pub fn set_derived(&mut self, id: ImageId, words: &[String]) {
        let t = terms_of(words);
        self.change(id, |d| d.derived = t);
    }

    /// Sets the words of photo `id`'s file metadata.
    pub fn set_stored(&mut self, id: ImageId, words: &[String]) {
        let t = terms_of(words);
        self.change(id, |d| d.stored = t);
    }

    /// Whether photo `id` has every term of `words` (none: `false`).
    pub fn has(&self, id: ImageId, words: &str) -> bool {
        let wanted = terms(words);
        let Some(doc) = self.docs.get(&id) else {
            return false;
        };
        !wanted.is_empty() && wanted.iter().all(|(t, _)| doc.all().any(|(d, _)| d == t))
    }

    /// Photo `id`'s words (lower case, as found), sorted.
    pub fn words(&self, id: ImageId) -> Vec<String> {
        let mut out: Vec<String> = self
            .docs
            .get(&id)
            .map(|d| d.all().map(|(_, w)| w.clone()).collect())
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    pub fn remove(&mut self, id: ImageId) {
        self.unlink(id);
        self.docs.remove(&id);
    }

    /// The photos having at least one of `query`'s terms, best first (score, then id), among
    /// those `allow` admits. A term every photo has (or, in a library of 10 or more, more than
    /// half of them: a home folder's name) distinguishes nothing and is ignored.
    pub fn rank(&self, query: &str, allow: impl Fn(ImageId) -> bool) -> Vec<KeywordHit> {
        let n = self.docs.len();
        let mut query_terms: Vec<String> = terms(query).into_iter().map(|(t, _)| t).collect();
        query_terms.sort();
        query_terms.dedup();
        let mut scores: HashMap<ImageId, f32> = HashMap::new();
        let mut used: Vec<&str> = Vec::new();
        for term in &query_terms {
            let Some(ids) = self.postings.get(term) else {
                continue;
            };
            let df = ids.len();
            if (df == n && n > 1) || (n >= 10 && 2 * df > n) {
                continue;
            }
            // BM25's idf (always positive).
            let idf = ((n as f32 - df as f32 + 0.5) / (df as f32 + 0.5) + 1.0).ln();
            used.push(term);
            for &id in ids {
                if allow(id) {
                    *scores.entry(id).or_default() += idf;
                }
            }
        }
        let mut hits: Vec<KeywordHit> = scores
            .into_iter()
            .map(|(id, score)| {
                let mut matched: Vec<String> = self.docs[&id]
                    .all()
                    .filter(|(t, _)| used.contains(&t.as_str()))
                    .map(|(_, w)| w.clone())
                    .collect();
                matched.sort();
                matched.dedup();
                KeywordHit { id, score, matched }
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ranks_by_rare_terms_and_forgets_removed_photos() {
        let mut index = KeywordIndex::default();
        index.set_derived(1, &w(&["home", "Germany 2019", "IMG_1"]));
        index.set_derived(2, &w(&["home", "Germany 2019", "IMG_2"]));
        index.set_derived(3, &w(&["home", "Beach", "IMG_3"]));
        index.set_stored(3, &w(&["Oma", "Germany"]));
        index.set_derived(4, &w(&["home", "Beach", "IMG_4"]));
        let hits = index.rank("germany", |_| true);
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(hits[0].matched, ["germany"]);
        // "oma" and "germany": photo 3 has both.
        assert_eq!(index.rank("Oma in Germany", |_| true)[0].id, 3);
        // "home" is everywhere: no information.
        assert!(index.rank("home", |_| true).is_empty());
        assert_eq!(index.rank("germany", |id| id != 1).len(), 2);
        index.remove(3);
        assert!(index.rank("oma", |_| true).is_empty());
        index.set_derived(2, &w(&["home", "Italy"]));
        assert_eq!(index.rank("germany", |_| true).len(), 1);
    }
}
