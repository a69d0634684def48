//! Reading an export (or a part) back, a slice of a row group at a time.

use super::schema::{bytes_path, Row, KEY_MODEL};
use super::writer::parquet_error;
use crate::{Error, Result};
use glimpse_store::{ContentHash, ImageRecord, ModelFingerprint};
use parquet::column::reader::{get_typed_column_reader, ColumnReader, ColumnReaderImpl};
use parquet::data_type::{
    ByteArrayType, DataType, FixedLenByteArrayType, FloatType, Int32Type, Int64Type,
};
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Columns an import needs, by their leaf path in the file.
const NEEDED: [&str; 10] = [
    "id",
    "path",
    "content_hash",
    "size",
    "mtime_ns",
    "captured_at",
    "width",
    "height",
    "format",
    "added_at",
];

/// A Parquet file of photos and embeddings, read row group by row group, each in slices.
pub(crate) struct PartReader {
    path: PathBuf,
    reader: SerializedFileReader<File>,
    fingerprint: Option<ModelFingerprint>,
    /// Leaf index of each of [`NEEDED`], then of the embedding's values.
    leaves: Vec<usize>,
    /// Leaf index of the keywords' words, when the file has the column.
    keywords: Option<usize>,
}

impl std::fmt::Debug for PartReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PartReader {
    /// Opens `path` and checks that it has the columns of an export.
    pub fn open(path: &Path) -> Result<PartReader> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| parquet_error(path, e))?;
        let meta = reader.metadata().file_metadata();
        let fingerprint = meta
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == KEY_MODEL))
            .and_then(|kv| kv.value.as_deref())
            .map(|json| {
                serde_json::from_str::<ModelFingerprint>(json)
                    .map_err(|e| parquet_error(path, format!("bad {KEY_MODEL} metadata: {e}")))
            })
            .transpose()?;
        let schema = meta.schema_descr();
        let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        let find = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| parquet_error(path, format!("no column `{name}`")))
        };
        let mut leaves = NEEDED.iter().map(|n| find(n)).collect::<Result<Vec<_>>>()?;
        // The embedding's values: the leaf under `embedding` (`embedding.list.element` here,
        // `embedding.list.item` or `embedding.element` from other writers).
        let embedding = names
            .iter()
            .position(|n| n.starts_with("embedding."))
            .ok_or_else(|| parquet_error(path, "no column `embedding`"))?;
        leaves.push(embedding);
        // The optional keywords' words (absent from older files and other writers').
        let keywords = names.iter().position(|n| n.starts_with("keywords."));
        Ok(PartReader {
            path: path.to_path_buf(),
            reader,
            fingerprint,
            leaves,
            keywords,
        })
    }

    /// The model fingerprint in the file's metadata, if it has one.
    pub fn fingerprint(&self) -> Option<&ModelFingerprint> {
        self.fingerprint.as_ref()
    }

    /// Number of row groups.
    pub fn row_groups(&self) -> usize {
        self.reader.metadata().num_row_groups()
    }

    /// Number of rows.
    pub fn rows(&self) -> u64 {
        self.reader.metadata().file_metadata().num_rows().max(0) as u64
    }

    /// Reads row group `i` in slices of at most `batch` rows (memory: one slice, whatever the
    /// row group's size) and hands each to `f`, until `f` returns `false`; returns whether
    /// every slice was handed over. Every embedding is checked to have `dims` values.
    pub fn for_each_batch(
        &self,
        i: usize,
        dims: usize,
        batch: usize,
        mut f: impl FnMut(Vec<Row>) -> Result<bool>,
    ) -> Result<bool> {
        let path = &self.path;
        let err = |e: parquet::errors::ParquetError| parquet_error(path, e);
        let group = self.reader.get_row_group(i).map_err(err)?;
        let n = group.metadata().num_rows().max(0) as usize;
        let schema = self.reader.metadata().file_metadata().schema_descr();
        let def = |k: usize| schema.column(self.leaves[k]).max_def_level();
        let column = |k: usize| group.get_column_reader(self.leaves[k]).map_err(err);
        let mut ids = get_typed_column_reader::<Int64Type>(column(0)?);
        let mut paths = get_typed_column_reader::<ByteArrayType>(column(1)?);
        let mut hashes = get_typed_column_reader::<FixedLenByteArrayType>(column(2)?);
        let mut sizes = get_typed_column_reader::<Int64Type>(column(3)?);
        let mut mtimes = get_typed_column_reader::<Int64Type>(column(4)?);
        let mut captured = get_typed_column_reader::<Int64Type>(column(5)?);
        let mut widths = get_typed_column_reader::<Int32Type>(column(6)?);
        let mut heights = get_typed_column_reader::<Int32Type>(column(7)?);
        let mut formats = get_typed_column_reader::<ByteArrayType>(column(8)?);
        let mut added = get_typed_column_reader::<Int64Type>(column(9)?);
        let embedding = column(10)?;
        let ColumnReader::FloatColumnReader(_) = &embedding else {
            return Err(parquet_error(
                path,
                "the embedding column does not hold FLOAT values",
            ));
        };
        let mut embeddings = get_typed_column_reader::<FloatType>(embedding);
        let mut keywords = match self.keywords {
            Some(leaf) => {
                let reader = group.get_column_reader(leaf).map_err(err)?;
                let ColumnReader::ByteArrayColumnReader(_) = &reader else {
                    return Err(parquet_error(
                        path,
                        "the keywords column does not hold strings",
                    ));
                };
                Some((
                    get_typed_column_reader::<ByteArrayType>(reader),
                    schema.column(leaf).max_def_level(),
                ))
            }
            None => None,
        };
        let mut done = 0;
        while done < n {
            let take = batch.max(1).min(n - done);
            let ids = read_required(&mut ids, take, def(0)).map_err(err)?;
            let paths = read_required(&mut paths, take, def(1)).map_err(err)?;
            let hashes = read_required(&mut hashes, take, def(2)).map_err(err)?;
            let sizes = read_required(&mut sizes, take, def(3)).map_err(err)?;
            let mtimes = read_required(&mut mtimes, take, def(4)).map_err(err)?;
            let captured = read_optional(&mut captured, take, def(5)).map_err(err)?;
            let widths = read_required(&mut widths, take, def(6)).map_err(err)?;
            let heights = read_required(&mut heights, take, def(7)).map_err(err)?;
            let formats = read_required(&mut formats, take, def(8)).map_err(err)?;
            let added = read_required(&mut added, take, def(9)).map_err(err)?;
            let embeddings = read_lists(&mut embeddings, take, dims, def(10))
                .map_err(|e| parquet_error(path, e))?;
            let mut words = match &mut keywords {
                Some((reader, max_def)) => {
                    read_words(reader, take, *max_def).map_err(|e| parquet_error(path, e))?
                }
                None => vec![Vec::new(); take],
            };
            let lengths = [
                ids.len(),
                paths.len(),
                hashes.len(),
                sizes.len(),
                mtimes.len(),
                captured.len(),
                widths.len(),
                heights.len(),
                formats.len(),
                added.len(),
                embeddings.len(),
                words.len(),
            ];
            if lengths.iter().any(|&l| l != take) {
                return Err(parquet_error(
                    path,
                    format!(
                        "row group {i}: columns of unequal lengths {lengths:?}, expected {take}"
                    ),
                ));
            }
            let mut rows = Vec::with_capacity(take);
            for (k, embedding) in embeddings.into_iter().enumerate() {
                let hash: [u8; 32] = hashes[k].data().try_into().map_err(|_| {
                    parquet_error(
                        path,
                        format!("row group {i}: a content_hash is not 32 bytes"),
                    )
                })?;
                rows.push(Row {
                    id: ids[k],
                    record: ImageRecord {
                        path: bytes_path(paths[k].data()),
                        size: sizes[k].max(0) as u64,
                        mtime_ns: mtimes[k],
                        hash: ContentHash(hash),
                        width: widths[k] as u32,
                        height: heights[k] as u32,
                        format: String::from_utf8_lossy(formats[k].data()).into_owned(),
                        captured_at: captured[k],
                        added_at: added[k],
                    },
                    embedding,
                    keywords: std::mem::take(&mut words[k]),
                });
            }
            done += take;
            if !f(rows)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The `n` values of a column without nulls (a nullable column must hold none).
fn read_required<T: DataType>(
    reader: &mut ColumnReaderImpl<T>,
    n: usize,
    max_def: i16,
) -> parquet::errors::Result<Vec<T::T>> {
    let values = read_optional(reader, n, max_def)?;
    values
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| parquet::errors::ParquetError::General("a required value is null".into()))
}

/// The `n` values of a flat column, `None` for nulls.
fn read_optional<T: DataType>(
    reader: &mut ColumnReaderImpl<T>,
    n: usize,
    max_def: i16,
) -> parquet::errors::Result<Vec<Option<T::T>>> {
    let mut values = Vec::with_capacity(n);
    let mut defs = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        values.clear();
        defs.clear();
        let (records, _, levels) =
            reader.read_records(n - out.len(), Some(&mut defs), None, &mut values)?;
        if records == 0 {
            break;
        }
        if max_def == 0 {
            // A required column: no definition levels.
            out.extend(values.drain(..).map(Some));
        } else {
            let mut it = values.drain(..);
            for &d in &defs[..levels] {
                out.push(if d == max_def { it.next() } else { None });
            }
        }
    }
    Ok(out)
}

/// The `n` lists of floats of the embedding column, each exactly `dims` long and without nulls.
fn read_lists(
    reader: &mut ColumnReaderImpl<FloatType>,
    n: usize,
    dims: usize,
    max_def: i16,
) -> std::result::Result<Vec<Vec<f32>>, String> {
    let mut out = Vec::with_capacity(n);
    let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
    while out.len() < n {
        values.clear();
        defs.clear();
        reps.clear();
        let want = (n - out.len()).min(1024);
        let (records, _, levels) = reader
            .read_records(want, Some(&mut defs), Some(&mut reps), &mut values)
            .map_err(|e| e.to_string())?;
        if records == 0 {
            break;
        }
        if defs[..levels].iter().any(|&d| d != max_def) || values.len() != levels {
            return Err("an embedding is null or holds a null value".into());
        }
        let mut start = 0;
        for end in 1..=levels {
            if end == levels || reps[end] == 0 {
                let len = end - start;
                if len != dims {
                    return Err(format!("an embedding has {len} values, the model {dims}"));
                }
                out.push(values[start..end].to_vec());
                start = end;
            }
        }
    }
    Ok(out)
}

/// The `n` optional lists of strings of the keywords column (null and empty: no words).
fn read_words(
    reader: &mut ColumnReaderImpl<ByteArrayType>,
    n: usize,
    max_def: i16,
) -> std::result::Result<Vec<Vec<String>>, String> {
    let mut out: Vec<Vec<String>> = Vec::with_capacity(n);
    let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
    while out.len() < n {
        values.clear();
        defs.clear();
        reps.clear();
        let want = (n - out.len()).min(1024);
        let (records, _, levels) = reader
            .read_records(want, Some(&mut defs), Some(&mut reps), &mut values)
            .map_err(|e| e.to_string())?;
        if records == 0 {
            break;
        }
        let mut it = values.drain(..);
        for i in 0..levels {
            if reps[i] == 0 {
                out.push(Vec::new());
            }
            if defs[i] == max_def {
                let word = it.next().ok_or("a keyword level without a value")?;
                let last = out.last_mut().ok_or("a keywords list without a start")?;
                last.push(String::from_utf8_lossy(word.data()).into_owned());
            }
        }
    }
    Ok(out)
}
