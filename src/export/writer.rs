//! Writing rows to a Parquet file, one row group at a time, through a temp file renamed into
//! place when complete (a reader never sees half a file).

use super::schema::{fingerprint_json, path_bytes, Columns, Row, FORMAT, KEY_FORMAT, KEY_MODEL};
use crate::{Error, Result};
use glimpse_store::ModelFingerprint;
use parquet::basic::Compression;
use parquet::data_type::{
    ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, FloatType, Int32Type,
    Int64Type,
};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A Parquet error on `path` as the facade's [`Error::Parquet`].
pub(crate) fn parquet_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Streams [`Row`]s into a Parquet file: rows are buffered up to `rows_per_group`, then written
/// as one row group, so memory holds at most one row group whatever the file's size.
pub(crate) struct PartWriter {
    path: PathBuf,
    tmp: PathBuf,
    columns: Columns,
    inner: Option<SerializedFileWriter<BufWriter<File>>>,
    rows: Vec<Row>,
    rows_per_group: usize,
    written: usize,
}

impl PartWriter {
    /// Starts `path` (written as `<path>.tmp` until [`finish`](Self::finish)).
    pub fn create(
        path: &Path,
        columns: Columns,
        fingerprint: &ModelFingerprint,
        rows_per_group: usize,
    ) -> Result<PartWriter> {
        Self::create_with(path, columns, fingerprint, rows_per_group, false)
    }

    /// [`create`](Self::create), snappy-compressed when `snappy`.
    pub fn create_with(
        path: &Path,
        columns: Columns,
        fingerprint: &ModelFingerprint,
        rows_per_group: usize,
        snappy: bool,
    ) -> Result<PartWriter> {
        let tmp = tmp_path(path);
        let schema = Arc::new(
            parse_message_type(&columns.message_type()).expect("the export schema parses"),
        );
        let mut metadata = vec![
            KeyValue::new(KEY_FORMAT.to_string(), FORMAT.to_string()),
            KeyValue::new(KEY_MODEL.to_string(), fingerprint_json(fingerprint)),
        ];
        if columns == Columns::Full {
            let descr = SchemaDescriptor::new(schema.clone());
            metadata.push(KeyValue::new(
                "ARROW:schema".to_string(),
                arrow_schema(&descr, fingerprint.dims as usize, &metadata)
                    .map_err(|e| parquet_error(&tmp, e))?,
            ));
        }
        let props = WriterProperties::builder()
            .set_compression(if snappy {
                Compression::SNAPPY
            } else {
                Compression::UNCOMPRESSED
            })
            // Paths, hashes and embeddings are (nearly) unique: a dictionary only costs.
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from("format"), true)
            .set_max_row_group_row_count(None)
            .set_key_value_metadata(Some(metadata))
            .set_created_by(format!("glimpse {}", env!("CARGO_PKG_VERSION")))
            .build();
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e).disk_full())?;
        let inner = SerializedFileWriter::new(BufWriter::new(file), schema, Arc::new(props))
            .map_err(|e| parquet_error(&tmp, e))?;
        Ok(PartWriter {
            path: path.to_path_buf(),
            tmp,
            columns,
            inner: Some(inner),
            rows: Vec::with_capacity(rows_per_group.clamp(1, 1 << 16)),
            rows_per_group: rows_per_group.max(1),
            written: 0,
        })
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.written + self.rows.len()
    }

    /// Adds a row; writes a row group when `rows_per_group` are buffered.
    pub fn push(&mut self, row: Row) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= self.rows_per_group {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let tmp = self.tmp.clone();
        let err = |e: parquet::errors::ParquetError| parquet_error(&tmp, e).disk_full();
        let writer = self.inner.as_mut().expect("open until finished");
        let mut group = writer.next_row_group().map_err(err)?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(err)? {
            write_column(self.columns, index, &rows, &mut column).map_err(err)?;
            column.close().map_err(err)?;
            index += 1;
        }
        group.close().map_err(err)?;
        self.written += rows.len();
        // Keep the buffer's capacity for the next group.
        self.rows = rows;
        self.rows.clear();
        Ok(())
    }

    /// Writes the last row group and the footer, syncs, and renames the file into place.
    /// Returns the file's size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        let writer = self.inner.take().expect("open until finished");
        let tmp = self.tmp.clone();
        let buf = writer
            .into_inner()
            .map_err(|e| parquet_error(&tmp, e).disk_full())?;
        let file = buf
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()).disk_full())?;
        file.sync_all()
            .map_err(|e| Error::io(&tmp, e).disk_full())?;
        let size = file.metadata().map_err(|e| Error::io(&tmp, e))?.len();
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(size)
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        // Unfinished (an error, or a panic): the temp file is not a Parquet file.
        if self.inner.is_some() {
            self.inner = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The Arrow schema of an export, IPC-encoded and base64'd as Arrow writers store it under
/// `ARROW:schema`: the Parquet schema's own Arrow types, except the embedding, which is a
/// `fixed_size_list<element: float>[dims]` (Parquet has no fixed-size list: it is stored as a
/// LIST, and Arrow readers restore the type from this).
///
/// Arrow readers take the schema's metadata from it (pyarrow's `schema.metadata`), so it
/// repeats the file's key-value `metadata`.
fn arrow_schema(
    descr: &SchemaDescriptor,
    dims: usize,
    metadata: &[KeyValue],
) -> parquet::errors::Result<String> {
    use arrow_schema::{DataType, Field, Schema};
    let schema = parquet::arrow::parquet_to_arrow_schema(descr, None)?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::List(element) if f.name() == "embedding" => {
                let size = i32::try_from(dims).unwrap_or(i32::MAX);
                f.as_ref()
                    .clone()
                    .with_data_type(DataType::FixedSizeList(element.clone(), size))
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    let metadata: std::collections::HashMap<String, String> = metadata
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect();
    let schema = Schema::new(fields).with_metadata(metadata);
    Ok(parquet::arrow::encode_arrow_schema(&schema))
}

/// Where [`PartWriter`] writes `path` until it is complete.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn bytes(b: impl Into<Vec<u8>>) -> ByteArray {
    ByteArray::from(b.into())
}

/// Writes column `index` of `columns` for `rows`.
fn write_column(
    columns: Columns,
    index: usize,
    rows: &[Row],
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
) -> parquet::errors::Result<()> {
    let int64 = |f: &dyn Fn(&Row) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let int32 = |f: &dyn Fn(&Row) -> u32| rows.iter().map(|r| f(r) as i32).collect::<Vec<i32>>();
    let display = |r: &Row| bytes(r.record.path.to_string_lossy().into_owned());
    // The clip-retrieval metadata starts with `image_path`; then both layouts agree, apart
    // from `path_display` (Full only).
    let name = match (columns, index) {
        (Columns::ClipMetadata, 0) => "image_path",
        (Columns::ClipMetadata, i) => FULL[if i >= 3 { i } else { i - 1 }],
        (Columns::Full, i) => FULL[i],
    };
    match name {
        "id" => column
            .typed::<Int64Type>()
            .write_batch(&int64(&|r| r.id), None, None)?,
        "path" => {
            let v: Vec<ByteArray> = rows
                .iter()
                .map(|r| bytes(path_bytes(&r.record.path)))
                .collect();
            column
                .typed::<ByteArrayType>()
                .write_batch(&v, None, None)?
        }
        "path_display" | "image_path" => {
            let v: Vec<ByteArray> = rows.iter().map(display).collect();
            column
                .typed::<ByteArrayType>()
                .write_batch(&v, None, None)?
        }
        "content_hash" => {
            let v: Vec<FixedLenByteArray> = rows
                .iter()
                .map(|r| FixedLenByteArray::from(bytes(r.record.hash.0.to_vec())))
                .collect();
            column
                .typed::<FixedLenByteArrayType>()
                .write_batch(&v, None, None)?
        }
        "size" => column.typed::<Int64Type>().write_batch(
            &int64(&|r| i64::try_from(r.record.size).unwrap_or(i64::MAX)),
            None,
            None,
        )?,
        "mtime_ns" => {
            column
                .typed::<Int64Type>()
                .write_batch(&int64(&|r| r.record.mtime_ns), None, None)?
        }
        "captured_at" => {
            let values: Vec<i64> = rows.iter().filter_map(|r| r.record.captured_at).collect();
            let defs: Vec<i16> = rows
                .iter()
                .map(|r| i16::from(r.record.captured_at.is_some()))
                .collect();
            column
                .typed::<Int64Type>()
                .write_batch(&values, Some(&defs), None)?
        }
        "width" => {
            column
                .typed::<Int32Type>()
                .write_batch(&int32(&|r| r.record.width), None, None)?
        }
        "height" => {
            column
                .typed::<Int32Type>()
                .write_batch(&int32(&|r| r.record.height), None, None)?
        }
        "format" => {
            let v: Vec<ByteArray> = rows
                .iter()
                .map(|r| bytes(r.record.format.clone()))
                .collect();
            column
                .typed::<ByteArrayType>()
                .write_batch(&v, None, None)?
        }
        "added_at" => {
            column
                .typed::<Int64Type>()
                .write_batch(&int64(&|r| r.record.added_at), None, None)?
        }
        "embedding" => {
            // REQUIRED group, REPEATED list, REQUIRED element: every level is defined (1); a
            // row's first value starts a record (repetition 0), the others continue it (1).
            let n: usize = rows.iter().map(|r| r.embedding.len()).sum();
            let mut values = Vec::with_capacity(n);
            let mut reps = Vec::with_capacity(n);
            for r in rows {
                values.extend_from_slice(&r.embedding);
                reps.extend((0..r.embedding.len()).map(|i| i16::from(i > 0)));
            }
            let defs = vec![1i16; n];
            column
                .typed::<FloatType>()
                .write_batch(&values, Some(&defs), Some(&reps))?
        }
        "keywords" => {
            // OPTIONAL group (null: definition 0), REPEATED list (an empty list: 1), REQUIRED
            // element (a word: 2); a row's first level starts a record (repetition 0).
            let mut values = Vec::new();
            let (mut defs, mut reps) = (Vec::new(), Vec::new());
            for r in rows {
                if r.keywords.is_empty() {
                    defs.push(0);
                    reps.push(0);
                }
                for (i, w) in r.keywords.iter().enumerate() {
                    values.push(bytes(w.clone()));
                    defs.push(2);
                    reps.push(i16::from(i > 0));
                }
            }
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, Some(&defs), Some(&reps))?
        }
        other => unreachable!("no column {other} in the export schema"),
    };
    Ok(())
}

/// The columns of [`Columns::Full`], in schema order.
const FULL: [&str; 13] = [
    "id",
    "path",
    "path_display",
    "content_hash",
    "size",
    "mtime_ns",
    "captured_at",
    "width",
    "height",
    "format",
    "added_at",
    "embedding",
    "keywords",
];
