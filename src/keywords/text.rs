//! Text to search terms: Unicode word segmentation (UAX #29, `unicode-segmentation`: a Chinese
//! or Japanese name splits into its ideographs), camel case and letter/digit runs split
//! (`GermanyTrip2019` → `germany trip 2019`), lower case, English stop words dropped, Snowball
//! stemming (`rust-stemmers`: `mountains` and `mountain` meet).

use rust_stemmers::{Algorithm, Stemmer};
use std::sync::OnceLock;
use unicode_segmentation::UnicodeSegmentation;

/// Words that name nothing in a photo's folder or keywords.
const STOP_WORDS: [&str; 40] = [
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "this", "to", "was", "with", "img", "dsc", "dscn", "dscf",
    "pxl", "photo", "photos", "picture", "pictures", "image", "images", "copy", "jpg", "jpeg",
    "me", "my",
];

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

/// Splits `GermanyTrip2019` into `Germany Trip 2019`: a boundary before an upper-case letter
/// that follows a lower-case one, and between letters and digits.
fn split_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if let Some(p) = prev {
            let case = p.is_lowercase() && c.is_uppercase();
            let digits = (p.is_alphabetic() && c.is_ascii_digit())
                || (p.is_ascii_digit() && c.is_alphabetic());
            if case || digits {
                out.push(' ');
            }
        }
        // Underscores join words in UAX #29 ("ExtendNumLet"); in file names they separate.
        out.push(if c == '_' { ' ' } else { c });
        prev = Some(c);
    }
    out
}

/// The search terms of `text`, each with the word it came from (lower case): `(term, word)`.
pub(crate) fn terms(text: &str) -> Vec<(String, String)> {
    let split = split_runs(text);
    let mut out = Vec::new();
    for word in split.unicode_words() {
        let lower = word.to_lowercase();
        let ascii = lower.is_ascii();
        if (ascii && lower.len() < 2) || STOP_WORDS.contains(&lower.as_str()) {
            continue;
        }
        let term = if ascii && !lower.bytes().all(|b| b.is_ascii_digit()) {
            stemmer().stem(&lower).into_owned()
        } else {
            lower.clone()
        };
        out.push((term, lower));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Vec<String> {
        terms(text).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn file_and_folder_names_become_terms() {
        assert_eq!(t("Germany 2019"), ["germani", "2019"]);
        assert_eq!(t("GermanyTrip2019"), ["germani", "trip", "2019"]);
        assert_eq!(t("IMG_4031"), ["4031"]);
        assert_eq!(t("mountains-at_dawn"), ["mountain", "dawn"]);
        assert_eq!(t("Oma's Geburtstag"), ["oma", "geburtstag"]);
        // UAX #29 splits Han text into ideographs: a query for 北京 meets a folder 北京2019.
        assert_eq!(t("北京2019"), ["北", "京", "2019"]);
        assert_eq!(t("a photo of the sea"), ["sea"]);
    }
}
