//! The words a photo's file carries, kept beside its record ([`CF_WORDS`](crate::schema::CF_WORDS)).

use crate::record::{decode_versioned, encode_versioned};
use crate::schema::{bytes_to_path, decode_id, id_key, path_to_bytes, CF_WORDS};
use crate::{Error, ImageId, Result, Store};
use rocksdb::IteratorMode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a photo's file says about it in words, as read when it was indexed: EXIF/IPTC/XMP
/// keywords, titles and descriptions, camera make and model; and, for a JPEG indexed in place
/// of its RAW sibling, that RAW file. (Words that follow from the record alone — folder and
/// file names, capture date, format — are not stored: they are derived from it.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhotoWords {
    /// The words, as found (not normalised).
    pub words: Vec<String>,
    /// The RAW file this photo is the JPEG of.
    pub original: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct WordsV1 {
    words: Vec<String>,
    original: Option<Vec<u8>>,
}

pub(crate) fn encode(w: &PhotoWords) -> Vec<u8> {
    encode_versioned(&WordsV1 {
        words: w.words.clone(),
        original: w.original.as_deref().map(path_to_bytes),
    })
}

fn decode(key: &dyn Fn() -> String, bytes: &[u8]) -> Result<PhotoWords> {
    let v: WordsV1 = decode_versioned(key, bytes)?;
    Ok(PhotoWords {
        words: v.words,
        original: v.original.as_deref().map(bytes_to_path),
    })
}

impl Store {
    /// The words stored for image `id` (`None`: none were, e.g. a photo indexed before words
    /// existed).
    pub fn words(&self, id: ImageId) -> Result<Option<PhotoWords>> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(CF_WORDS), id_key(id))
            .map_err(|e| Error::db(format!("reading words {id}"), e))?;
        bytes
            .map(|b| decode(&|| format!("words/{id}"), &b))
            .transpose()
    }

    /// Every `(id, words)` pair in id order; an entry that fails to decode yields an error item
    /// and the scan goes on.
    pub fn all_words(&self) -> impl Iterator<Item = Result<(ImageId, PhotoWords)>> + '_ {
        self.db
            .iterator_cf(self.cf(CF_WORDS), IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| Error::db("scanning words", e))?;
                let id = decode_id(CF_WORDS, &key)?;
                Ok((id, decode(&|| format!("words/{id}"), &value)?))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContentHash, ImageRecord, ModelFingerprint};

    #[test]
    fn words_commit_with_the_record_and_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .set_model(&ModelFingerprint {
                name: "m".into(),
                dims: 2,
                config_digest: "d".into(),
            })
            .unwrap();
        let record = ImageRecord {
            path: "/p/a.jpg".into(),
            size: 1,
            mtime_ns: 1,
            hash: ContentHash([3; 32]),
            width: 1,
            height: 1,
            format: "jpeg".into(),
            captured_at: None,
            added_at: 0,
        };
        let words = PhotoWords {
            words: vec!["Oma".into(), "Canon".into()],
            original: Some("/p/a.CR2".into()),
        };
        let mut batch = store.batch();
        let id = batch.insert(&record, &[0.6, 0.8]).unwrap();
        batch.set_words(id, &words).unwrap();
        // Uncommitted: not visible.
        assert_eq!(store.words(id).unwrap(), None);
        batch.commit().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.words(id).unwrap(), Some(words.clone()));
        assert_eq!(
            store.all_words().map(Result::unwrap).collect::<Vec<_>>(),
            vec![(id, words)]
        );
        store.remove(id).unwrap();
        assert_eq!(store.words(id).unwrap(), None);
        // Words for an image that does not exist are refused.
        let mut batch = store.batch();
        assert!(matches!(
            batch.set_words(99, &PhotoWords::default()),
            Err(Error::NotFound(99))
        ));
    }
}
