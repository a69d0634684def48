//! The words a photo's file carries: EXIF (make, model, description, Windows `XP*` title,
//! subject and keywords), IPTC-IIM (keywords, object name, headline, caption, city, country)
//! and XMP (`dc:subject`, `dc:title`, `dc:description`, Lightroom's hierarchical subjects);
//! and the words that follow from a photo's record: its folders, its file name, the capture
//! year and month.
//!
//! Every reader is bounded: IPTC and XMP are looked for in the first [`SCAN_BYTES`] of the file
//! (where JPEG, PNG, WebP, HEIF and TIFF writers put them), and at most [`MAX_WORDS`] words
//! are kept.

use std::path::Path;

/// How far into a file IPTC and XMP are looked for.
const SCAN_BYTES: usize = 1 << 20;
/// Most words kept per photo.
const MAX_WORDS: usize = 256;
/// Longest single word or phrase kept, in bytes.
const MAX_WORD_BYTES: usize = 200;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn push(out: &mut Vec<String>, text: &str) {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.is_empty() || out.len() >= MAX_WORDS {
        return;
    }
    let mut end = text.len().min(MAX_WORD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    if !out.iter().any(|w| w == text) {
        out.push(text.to_string());
    }
}

/// The words in a file's EXIF, IPTC and XMP metadata, as written there.
pub(crate) fn file_words(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    exif_words(bytes, &mut out);
    let head = &bytes[..bytes.len().min(SCAN_BYTES)];
    iptc_words(head, &mut out);
    xmp_words(head, &mut out);
    out
}

fn exif_words(bytes: &[u8], out: &mut Vec<String>) {
    let patched = crate::formats::raw::as_tiff(bytes);
    let bytes = patched.as_deref().unwrap_or(bytes);
    let Ok(exif) = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)) else {
        return;
    };
    for tag in [
        exif::Tag::Make,
        exif::Tag::Model,
        exif::Tag::ImageDescription,
    ] {
        if let Some(f) = exif.get_field(tag, exif::In::PRIMARY) {
            if let exif::Value::Ascii(v) = &f.value {
                for s in v {
                    push(out, &String::from_utf8_lossy(s));
                }
            }
        }
    }
    // XPTitle, XPComment, XPKeywords, XPSubject: UCS-2 little-endian in BYTE arrays.
    for number in [0x9C9B, 0x9C9C, 0x9C9E, 0x9C9F] {
        let tag = exif::Tag(exif::Context::Tiff, number);
        if let Some(f) = exif.get_field(tag, exif::In::PRIMARY) {
            if let exif::Value::Byte(b) = &f.value {
                let units: Vec<u16> = b
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                for part in String::from_utf16_lossy(&units).split(';') {
                    push(out, part);
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// IPTC-IIM datasets of record 2 in a Photoshop `8BIM` resource block.
fn iptc_words(head: &[u8], out: &mut Vec<String>) {
    let Some(start) = find(head, b"Photoshop 3.0\0") else {
        return;
    };
    let block = &head[start..];
    let block = &block[..block.len().min(1 << 20)];
    let mut at = 0;
    while at + 5 <= block.len() {
        if block[at] == 0x1C && block[at + 1] == 0x02 {
            let tag = block[at + 2];
            let len = u16::from_be_bytes([block[at + 3], block[at + 4]]) as usize;
            let Some(data) = block.get(at + 5..at + 5 + len) else {
                return;
            };
            // 5 object name, 25 keywords, 90 city, 101 country, 105 headline, 120 caption.
            if matches!(tag, 5 | 25 | 90 | 101 | 105 | 120) {
                push(out, &String::from_utf8_lossy(data));
            }
            at += 5 + len;
        } else {
            at += 1;
        }
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The `rdf:li` items (or the plain text) of the XMP properties Glimpse reads.
fn xmp_words(head: &[u8], out: &mut Vec<String>) {
    let Some(start) = find(head, b"<x:xmpmeta") else {
        return;
    };
    let rest = &head[start..];
    let end = find(rest, b"</x:xmpmeta>").unwrap_or(rest.len());
    let xmp = String::from_utf8_lossy(&rest[..end]);
    for property in [
        "dc:subject",
        "dc:title",
        "dc:description",
        "lr:hierarchicalSubject",
        "photoshop:City",
        "photoshop:Country",
        "photoshop:Headline",
    ] {
        let open = format!("<{property}");
        let close = format!("</{property}>");
        let mut from = 0;
        while let Some(i) = xmp[from..].find(&open) {
            let body_start = match xmp[from + i..].find('>') {
                Some(j) => from + i + j + 1,
                None => break,
            };
            if xmp[..body_start - 1].ends_with('/') {
                // `<dc:subject/>`: empty.
                from = body_start;
                continue;
            }
            let Some(k) = xmp[body_start..].find(&close) else {
                break;
            };
            let body = &xmp[body_start..body_start + k];
            if body.contains('<') && !body.contains("<rdf:li") {
                // Markup without items (`<rdf:Bag></rdf:Bag>`, `<rdf:Alt/>`): only the text
                // between its tags is a word.
                let text: String = body
                    .split('<')
                    .filter_map(|chunk| chunk.split_once('>').map(|(_, t)| t))
                    .collect();
                let text = unescape(text.trim());
                if !text.trim().is_empty() {
                    push(out, text.trim());
                }
            } else if body.contains("<rdf:li") {
                for li in body.split("<rdf:li").skip(1) {
                    if let (Some(a), Some(b)) = (li.find('>'), li.find("</rdf:li>")) {
                        if a < b {
                            for part in unescape(&li[a + 1..b]).split('|') {
                                push(out, part);
                            }
                        }
                    }
                }
            } else {
                push(out, &unescape(body));
            }
            from = body_start + k;
        }
    }
}

/// Civil (year, month 1–12) of a Unix time, UTC (Howard Hinnant's civil_from_days).
fn year_month(seconds: i64) -> (i64, usize) {
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as usize)
}

/// The words that follow from a photo's record: each folder of its path, its file stem, its
/// extension, and its capture year and month name.
pub(crate) fn record_words(path: &Path, captured_at: Option<i64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(parent) = path.parent() {
        for c in parent.components() {
            if let std::path::Component::Normal(name) = c {
                push(&mut out, &name.to_string_lossy());
            }
        }
    }
    if let Some(stem) = path.file_stem() {
        push(&mut out, &stem.to_string_lossy());
    }
    // The extension names the format: `keyword("heic")` or `keyword("nef")` filters by it.
    if let Some(ext) = path.extension() {
        push(&mut out, &ext.to_string_lossy().to_lowercase());
    }
    if let Some(t) = captured_at {
        let (year, month) = year_month(t);
        push(&mut out, &year.to_string());
        push(&mut out, MONTHS[month - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_words_name_folders_stem_and_date() {
        // 2019-06-15T12:00:00Z
        let w = record_words(
            Path::new("/home/a/Trips/Germany 2019/IMG_1.jpg"),
            Some(1_560_600_000),
        );
        assert_eq!(
            w,
            [
                "home",
                "a",
                "Trips",
                "Germany 2019",
                "IMG_1",
                "jpg",
                "2019",
                "june"
            ]
        );
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(951_913_815), (2000, 3));
    }

    #[test]
    fn xmp_and_iptc_keywords_are_read() {
        let xmp = b"..<x:xmpmeta xmlns:x='adobe:ns:meta/'><dc:subject><rdf:Bag>\
            <rdf:li>Oma</rdf:li><rdf:li>Tom &amp; Jerry</rdf:li></rdf:Bag></dc:subject>\
            <dc:title><rdf:Alt><rdf:li xml:lang='x-default'>Birthday</rdf:li></rdf:Alt>\
            </dc:title></x:xmpmeta>";
        assert_eq!(file_words(xmp), ["Oma", "Tom & Jerry", "Birthday"]);
        let mut iptc = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x10".to_vec();
        iptc.extend(b"\x1c\x02\x19\x00\x04Alps\x1c\x02\x5a\x00\x06Zurich");
        assert_eq!(file_words(&iptc), ["Alps", "Zurich"]);
        // Empty containers give no words; plain text is one.
        let empty = b"<x:xmpmeta><dc:subject><rdf:Bag></rdf:Bag></dc:subject><dc:title/>\
            <dc:description><rdf:Alt>\n </rdf:Alt></dc:description>\
            <photoshop:City>Bern</photoshop:City></x:xmpmeta>";
        assert_eq!(file_words(empty), ["Bern"]);
        // Damage: a length past the end stops the reader, nothing panics.
        assert!(file_words(b"Photoshop 3.0\0\x1c\x02\x19\xff\xffab").is_empty());
    }
}
