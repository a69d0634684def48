//! What Glimpse reads about a file besides its pixels: content hash and EXIF capture time.

use glimpse_store::ContentHash;

/// BLAKE3 of the file's bytes: recognises moved files and exact duplicates.
pub(crate) fn content_hash(bytes: &[u8]) -> ContentHash {
    ContentHash(*blake3::hash(bytes).as_bytes())
}

/// EXIF facts Glimpse records (orientation is applied by the decoder).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExifFacts {
    /// `DateTimeOriginal` (else `DateTime`), seconds since the Unix epoch, read as UTC.
    pub captured_at: Option<i64>,
}

/// Reads EXIF from a JPEG, PNG, WebP or TIFF file's bytes; absent or broken EXIF gives defaults
/// (a photo is still indexed without it).
pub(crate) fn read_exif(bytes: &[u8]) -> ExifFacts {
    // ORF and RW2 are TIFF under another signature.
    let patched = crate::formats::raw::as_tiff(bytes);
    let bytes = patched.as_deref().unwrap_or(bytes);
    let mut cursor = std::io::Cursor::new(bytes);
    let Ok(exif) = exif::Reader::new().read_from_container(&mut cursor) else {
        return ExifFacts::default();
    };
    let captured_at = [exif::Tag::DateTimeOriginal, exif::Tag::DateTime]
        .iter()
        .filter_map(|&tag| exif.get_field(tag, exif::In::PRIMARY))
        .find_map(|f| match &f.value {
            exif::Value::Ascii(v) => v.first().and_then(|s| exif::DateTime::from_ascii(s).ok()),
            _ => None,
        })
        .and_then(|dt| unix_seconds(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second));
    ExifFacts { captured_at }
}

/// Civil date-time (UTC) to seconds since the Unix epoch (Howard Hinnant's days_from_civil).
fn unix_seconds(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(60)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_to_unix_seconds() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_seconds(2000, 3, 1, 12, 30, 15), Some(951_913_815));
        assert_eq!(unix_seconds(2024, 2, 29, 23, 59, 59), Some(1_709_251_199));
        assert_eq!(unix_seconds(2024, 13, 1, 0, 0, 0), None);
    }

    #[test]
    fn no_exif_gives_defaults() {
        assert_eq!(read_exif(b"not an image"), ExifFacts::default());
    }
}
