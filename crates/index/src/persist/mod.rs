//! `save` / `load`: a self-checking manifest and the graph files it names, in one directory.
//!
//! # Format (version 4)
//!
//! `dir/index.glimpse`, the manifest:
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `GLMPSIDX` |
//! | 8..12 | format version (u32 LE) |
//! | 12..16 | dims (u32 LE) |
//! | 16..24 | live entries (u64 LE) |
//! | 24..32 | slots = graph nodes, tombstones included (u64 LE) |
//! | 32..36, 36..44 | lengths of the config and meta sections |
//! | 44..52, 52..60 | lengths of the graph and data files |
//! | 60..68 | generation: the graph files are `graph-<generation as 16 hex digits>.hnsw.{graph,data}` (0: no graph) |
//! | 68..72, 72..76 | CRC-32 of the graph file and of the data file |
//! | 76..80 | CRC-32 of the config and meta sections |
//! | 80..84 | CRC-32 of bytes 0..80 |
//! | then | config (bincode), meta (bincode: id and tombstone of every slot) |
//!
//! and beside it the graph's two files (`.hnsw.graph`: its links, `.hnsw.data`: the vectors;
//! layouts in `graph/io.rs`). **Opening reads the index in place and never writes a second
//! copy of it** (format 1 kept everything in one file and unpacked it into a scratch folder on
//! every open). Format 2 had the same layout with hnsw_rs's dump as the graph files; format 3
//! holds the crate's own graph; format 4 appends the search snapshot (its links with the
//! repair's, the seeds and the 8-bit codes: `flat/io.rs`) to the links file, so an open reads
//! it back instead of rebuilding it (which coded every vector: a pass over the whole vectors
//! file).
//! The graph is persisted, not rebuilt: reloading 100k × 512 takes seconds where a rebuild
//! takes a minute. The vectors are stored once, in the data file, which the loaded index
//! **maps** as its vector storage (`src/vectors.rs`): opening neither copies nor parses them,
//! and their pages stay out of the resident set until searches read them. The links file is
//! read once: the graph's links are parsed into its atomics and the snapshot's links and
//! codes copied into huge-page arrays (every link checked to name a node).
//!
//! **Checksums on open.** Both graph files' CRC-32 are still verified before anything is
//! trusted (a flipped byte anywhere is [`Error::Corrupt`]), now by positioned reads in 64 MiB
//! slices on the rayon pool, CRCs combined in order, without mapping them (the pages stay in
//! the page cache, not in this process). Trade-off, measured in `docs/PERFORMANCE.md`: this
//! is a pass over the whole data file at every open (fast when the page cache holds it, the
//! disk's read rate when not); deferring it would make opening O(links) but let a damaged
//! vector change a rescored score silently, which the reliability contract excludes.
//!
//! **Unchanged saves write nothing.** An index remembers the directory it was loaded from or
//! last saved to, the generation there and its change count; saving it there again with no
//! change in between (and the manifest still naming that generation, with graph files of the
//! recorded lengths) returns at once.
//!
//! Every check (magic, version, header CRC, exact length, payload CRC, both files' length and
//! CRC streamed before they are parsed, consistency of ids/tombstones/graph) runs before
//! anything is trusted, so a truncated, corrupted or missing file is an [`Error`], never a
//! panic or a silently wrong index.
//!
//! # Atomic saves
//!
//! A save dumps the graph under a fresh generation and fsyncs both files, writes the manifest
//! to `index.glimpse.<pid>.tmp`, fsyncs it, renames it over `index.glimpse` and fsyncs the
//! directory. Only then are the previous generation's files removed. A crash at any point
//! leaves the old manifest with its own files, or the new one with its own: never a mix. What
//! an interrupted save leaves behind (a temp manifest, an unreferenced generation) is listed
//! by [`leftovers`] and removed by [`remove_leftovers`] (the library calls it on open) or by
//! the next save, so nothing accumulates. Loading a directory while another *process* saves
//! into it is not supported (the library's store lock prevents it).
//!
//! Format 1, 2 and 3 files are refused with [`Error::UnsupportedVersion`]; the library then
//! rebuilds the index from its store. Measured at 100k × 512: docs/PERFORMANCE.md.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::IndexConfig;
use crate::error::{Error, Result};
use crate::flat::FlatGraph;
use crate::graph::Graph;
use crate::index::{Index, SavedAt, State};
use crate::integrity::Integrity;
use crate::slots::Slots;
use crate::vectors::Vectors;

mod files;
mod header;

use files::{Keep, DATA_SUFFIX, GRAPH_SUFFIX};
use header::{Header, HEADER_LEN};

/// Name of the manifest inside the directory given to [`Index::save`] / [`Index::load`].
pub const FILE_NAME: &str = "index.glimpse";
/// The file format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 4;

#[derive(Serialize, Deserialize)]
struct Meta {
    ids: Vec<u64>,
    dead: Vec<bool>,
}

/// Removes a half-written temp file unless disarmed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Removes a generation's graph files unless disarmed (a save that failed half way).
struct NewGeneration<'a> {
    dir: &'a Path,
    generation: Option<u64>,
}

impl Drop for NewGeneration<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.generation.take() {
            for suffix in [GRAPH_SUFFIX, DATA_SUFFIX] {
                let _ = fs::remove_file(files::graph_file(self.dir, g, suffix));
            }
        }
    }
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 1 << 34 }>()
}

/// Files in `dir` that no saved index refers to: what an interrupted save left (a temp
/// manifest, graph files of a generation the manifest does not name) and format 1's scratch
/// folders. When the manifest is missing, every graph file is listed (nothing can refer to
/// it); when it exists but cannot be read or checked, only temp files are listed (nothing is
/// removed on doubt: the index is rebuilt and its next save cleans up).
pub fn leftovers(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    let dir = dir.as_ref();
    let path = dir.join(FILE_NAME);
    // The header alone names the generation (its CRC and the file's length are checked);
    // the sections are read once, by the load that follows an open.
    let keep = match read_header(&path) {
        Ok((h, _)) => Keep::Generation(h.generation),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Keep::Generation(0)
        }
        Err(_) => Keep::AllGraphs,
    };
    files::leftovers_except(dir, keep)
}

/// Removes [`leftovers`]; returns the paths removed. Call only when no other process saves
/// into `dir`.
pub fn remove_leftovers(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    files::remove_all(leftovers(dir))
}

/// Reads and checks the manifest: its header and the config + meta bytes after it.
fn read_manifest(path: &Path) -> Result<(Header, Vec<u8>)> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let (h, mut file) = read_header(path)?;
    let len = HEADER_LEN as u64 + u64::from(h.config_len) + h.meta_len;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).map_err(io)?;
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if rest.len() as u64 + HEADER_LEN as u64 != len {
        return Err(corrupt("file changed while read"));
    }
    if crc32fast::hash(&rest) != h.payload_crc {
        return Err(corrupt("payload checksum mismatch"));
    }
    Ok((h, rest))
}

/// Opens the manifest and reads and checks its header (against the file's length); the file
/// is left positioned after the header.
fn read_header(path: &Path) -> Result<(Header, File)> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok((Header::decode(&head, len, path)?, file))
}

impl Index {
    /// Saves the index into `dir` (creating it), atomically; see the [`persist`](crate::persist)
    /// module for the files and the guarantees.
    ///
    /// Searches continue during a save; writers wait for it.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let _writer = self.lock_writer("save");
        // Never write damage found by `open`'s check under a fresh checksum.
        self.integrity.wait()?;
        let state = self.state.read();
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let final_path = dir.join(FILE_NAME);
        let changes = self.changes.load(Ordering::Relaxed);
        let canonical = fs::canonicalize(dir).map_err(Error::io(dir))?;
        let unchanged = self
            .saved
            .lock()
            .clone()
            .filter(|s| s.dir == canonical && s.changes == changes && still_saved(dir, s));
        if let Some(saved) = unchanged {
            // Unchanged since it was loaded from or saved to `dir`: nothing is written, and
            // what an interrupted save left still goes.
            files::remove_all(files::leftovers_except(
                dir,
                Keep::Generation(saved.generation),
            ));
            return Ok(());
        }

        // 1. The graph files, under a fresh generation, durable before the manifest names them.
        let mut generation = NewGeneration {
            dir,
            generation: None,
        };
        let (mut graph_len, mut graph_crc, mut data_len, mut data_crc) = (0, 0, 0, 0);
        if state.graph.len() > 0 {
            let g = files::fresh_generation(dir);
            generation.generation = Some(g);
            let links_path = files::graph_file(dir, g, GRAPH_SUFFIX);
            let data_path = files::graph_file(dir, g, DATA_SUFFIX);
            let flat = state.complete_flat();
            state
                .graph
                .dump(&links_path, &data_path, &state.slots, &flat)
                .map_err(|e| Error::Graph {
                    operation: "dump",
                    reason: format!("{}: {e}", dir.display()),
                })?;
            for (suffix, len, crc) in [
                (GRAPH_SUFFIX, &mut graph_len, &mut graph_crc),
                (DATA_SUFFIX, &mut data_len, &mut data_crc),
            ] {
                let path = files::graph_file(dir, g, suffix);
                files::sync_file(&path).map_err(Error::io(&path))?;
                (*len, *crc) = files::checksum(&path).map_err(Error::io(&path))?;
            }
        }

        // 2. The manifest, through a temp file and a rename.
        let slots = &state.slots;
        let encode_err = |e: bincode::error::EncodeError| Error::Io {
            path: final_path.clone(),
            source: std::io::Error::other(e.to_string()),
        };
        let config =
            bincode::serde::encode_to_vec(&self.config, bincode_config()).map_err(encode_err)?;
        let meta = Meta {
            ids: slots.ids().to_vec(),
            dead: slots.dead_flags().to_vec(),
        };
        let meta = bincode::serde::encode_to_vec(&meta, bincode_config()).map_err(encode_err)?;
        let mut payload = crc32fast::Hasher::new();
        payload.update(&config);
        payload.update(&meta);
        let header = Header {
            version: FORMAT_VERSION,
            dims: self.config.dims as u32,
            live: slots.live_len() as u64,
            slots: slots.slot_len() as u64,
            config_len: config.len() as u32,
            meta_len: meta.len() as u64,
            graph_len,
            graph_crc,
            data_len,
            data_crc,
            generation: generation.generation.unwrap_or(0),
            payload_crc: payload.finalize(),
        };
        let tmp_path = dir.join(format!("{FILE_NAME}.{}.tmp", std::process::id()));
        let mut guard = TempFile(Some(tmp_path.clone()));
        let write = || -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp_path)?);
            w.write_all(&header.encode())?;
            w.write_all(&config)?;
            w.write_all(&meta)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        };
        write().map_err(Error::io(&tmp_path))?;
        fs::rename(&tmp_path, &final_path).map_err(Error::io(&final_path))?;
        guard.0 = None;
        generation.generation = None;
        files::sync_dir(dir).map_err(Error::io(dir))?;

        // 3. The previous generation (and anything an interrupted save left) goes.
        files::remove_all(files::leftovers_except(
            dir,
            Keep::Generation(header.generation),
        ));
        *self.saved.lock() = Some(SavedAt {
            dir: canonical,
            generation: header.generation,
            changes,
        });
        // Writing the data file read every vector: hand their pages back.
        state.slots.vectors().release();
        Ok(())
    }

    /// Loads an index saved by [`save`](Self::save) from `dir`, in place.
    ///
    /// A missing manifest is [`Error::Io`] (kind `NotFound`); a foreign file
    /// [`Error::NotAnIndex`]; another format version [`Error::UnsupportedVersion`]; a
    /// truncated or corrupt manifest, or a missing, truncated or corrupt graph file,
    /// [`Error::Corrupt`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Index> {
        load(dir.as_ref(), None, Verify::Now)
    }

    /// [`load`](Self::load) that returns before the vectors file's checksum is verified: the
    /// manifest and the links file (links, search snapshot, codes) are checked as by `load`,
    /// the vectors file's length too, and its CRC-32 is computed on a background thread while
    /// the index already answers searches (opening is then O(links + codes), not O(vectors):
    /// see `docs/PERFORMANCE.md`).
    ///
    /// Until that check ends, searches read the vectors unverified (damage there can only
    /// change a rescored score). Once it found damage, [`verify`](Self::verify), every search
    /// and [`save`](Self::save) return [`Error::Corrupt`]; a save always waits for the check,
    /// so damage is never written under a fresh checksum.
    pub fn open(dir: impl AsRef<Path>) -> Result<Index> {
        load(dir.as_ref(), None, Verify::Background)
    }

    /// [`open`](Self::open) with [`load_expecting`](Self::load_expecting)'s checks.
    pub fn open_expecting(dir: impl AsRef<Path>, expected: &IndexConfig) -> Result<Index> {
        expected.validate()?;
        load(dir.as_ref(), Some(expected), Verify::Background)
    }

    /// Waits for the background check of [`open`](Self::open) (at once for an index that was
    /// built, or [`load`](Self::load)ed); [`Error::Corrupt`] when the vectors file is damaged.
    pub fn verify(&self) -> Result<()> {
        self.integrity.wait()
    }

    /// True while [`open`](Self::open)'s background check runs.
    pub fn is_verifying(&self) -> bool {
        self.integrity.is_pending()
    }

    /// [`load`](Self::load), then checks that the file was built with `expected`'s `dims`, `m`
    /// and `ef_construction` ([`Error::Incompatible`] otherwise) and adopts `expected`'s
    /// search-time settings (`ef_search`, `exact_threshold`, `compact_ratio`).
    pub fn load_expecting(dir: impl AsRef<Path>, expected: &IndexConfig) -> Result<Index> {
        expected.validate()?;
        load(dir.as_ref(), Some(expected), Verify::Now)
    }
}

/// When [`load`] checks the vectors file's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Before returning.
    Now,
    /// On a background thread ([`Index::open`]).
    Background,
}

fn load(dir: &Path, expected: Option<&IndexConfig>, verify: Verify) -> Result<Index> {
    let path = dir.join(FILE_NAME);
    let corrupt = |reason: String| Error::Corrupt {
        path: path.clone(),
        reason,
    };
    let (h, sections) = read_manifest(&path)?;
    let (config_bytes, meta_bytes) = sections.split_at(h.config_len as usize);

    // The graph files must be exactly the ones the manifest names, checked before they are
    // parsed: the links file (links, search snapshot, codes) is read once and checked in
    // memory, the vectors file streamed (it is mapped, not read, afterwards).
    let mut links = None;
    let mut background = None;
    if h.generation != 0 {
        let check = |file: &Path, got: std::io::Result<(u64, u32)>, len: u64, crc: u32| match got {
            Ok((l, c)) if l == len && c == crc => Ok(()),
            Ok((l, _)) if l != len => Err(corrupt(format!(
                "{} is {l} bytes, the manifest says {len}",
                file.display()
            ))),
            Ok(_) => Err(corrupt(format!("{} checksum mismatch", file.display()))),
            Err(e) => Err(corrupt(format!("{}: {e}", file.display()))),
        };
        let file = files::graph_file(dir, h.generation, GRAPH_SUFFIX);
        // SAFETY: see `crate::vectors` (a saved file is never written while mapped).
        let got = File::open(&file)
            .and_then(|f| unsafe { memmap2::Mmap::map(&f) })
            .map(|map| {
                let got = (map.len() as u64, files::crc_of(&map));
                links = Some(Arc::new(map));
                got
            });
        check(&file, got, h.graph_len, h.graph_crc)?;
        let file = files::graph_file(dir, h.generation, DATA_SUFFIX);
        match verify {
            Verify::Now => check(&file, files::checksum(&file), h.data_len, h.data_crc)?,
            Verify::Background => {
                // The length now (the file is mapped below), the checksum later.
                let len = fs::metadata(&file).map(|m| m.len());
                check(&file, len.map(|l| (l, h.data_crc)), h.data_len, h.data_crc)?;
                let opened =
                    File::open(&file).map_err(|e| corrupt(format!("{}: {e}", file.display())))?;
                background = Some((file, opened));
            }
        }
    }

    let (mut config, _): (IndexConfig, usize) =
        bincode::serde::decode_from_slice(config_bytes, bincode_config())
            .map_err(|e| corrupt(format!("config: {e}")))?;
    config.validate().map_err(|e| corrupt(e.to_string()))?;
    let (meta, _): (Meta, usize) = bincode::serde::decode_from_slice(meta_bytes, bincode_config())
        .map_err(|e| corrupt(format!("meta: {e}")))?;
    let slots_n = h.slots as usize;
    if config.dims != h.dims as usize || meta.ids.len() != slots_n || meta.dead.len() != slots_n {
        return Err(corrupt("header, config and id table disagree".into()));
    }
    if let Some(want) = expected {
        let differs = |what: &str, file: usize, want: usize| {
            Err(Error::Incompatible {
                path: path.clone(),
                reason: format!("{what} is {file} in the file, {want} expected"),
            })
        };
        if config.dims != want.dims {
            return differs("dims", config.dims, want.dims);
        }
        if config.m != want.m {
            return differs("m", config.m, want.m);
        }
        if config.ef_construction != want.ef_construction {
            return differs(
                "ef_construction",
                config.ef_construction,
                want.ef_construction,
            );
        }
        config.ef_search = want.ef_search;
        config.exact_threshold = want.exact_threshold;
        config.compact_ratio = want.compact_ratio;
    }

    let dims = config.dims;
    let (graph, flat, data) = match h.generation {
        0 if slots_n == 0 => (
            Graph::new(&config, 0),
            FlatGraph::empty(),
            Vectors::new(dims),
        ),
        0 => return Err(corrupt(format!("{slots_n} slots but no graph"))),
        g => Graph::load(
            links
                .as_ref()
                .expect("a generation's links file was mapped"),
            &files::graph_file(dir, g, DATA_SUFFIX),
            &config,
            slots_n,
        )
        .map_err(corrupt)?,
    };
    drop(links);
    let slots = Slots::from_parts(dims, data, meta.ids, meta.dead)
        .ok_or_else(|| corrupt("inconsistent id table".into()))?;
    if slots.live_len() as u64 != h.live {
        return Err(corrupt(format!(
            "{} live ids, header says {}",
            slots.live_len(),
            h.live
        )));
    }
    let mut index = Index::from_parts(config, State::with_flat(slots, graph, flat));
    if let Some((file, opened)) = background {
        let integrity = Arc::new(Integrity::pending());
        index.integrity = Arc::clone(&integrity);
        let (len, crc) = (h.data_len, h.data_crc);
        std::thread::spawn(move || {
            let outcome = match files::checksum_file(&opened) {
                Ok((l, c)) if l == len && c == crc => Ok(()),
                Ok(_) => Err((file, "vectors file checksum mismatch".to_string())),
                Err(e) => Err((file, e.to_string())),
            };
            integrity.finish(outcome);
        });
    }
    *index.saved.lock() = fs::canonicalize(dir).ok().map(|dir| SavedAt {
        dir,
        generation: h.generation,
        changes: 0,
    });
    Ok(index)
}

/// Whether `dir`'s manifest still names `saved`'s generation, with graph files of the lengths
/// it records (a cheap check: an unchanged save writes nothing; a damaged directory is
/// rewritten).
fn still_saved(dir: &Path, saved: &SavedAt) -> bool {
    let Ok((h, _)) = read_header(&dir.join(FILE_NAME)) else {
        return false;
    };
    let len_is = |suffix: &str, len: u64| {
        fs::metadata(files::graph_file(dir, h.generation, suffix)).is_ok_and(|m| m.len() == len)
    };
    h.generation == saved.generation
        && (h.generation == 0
            || (len_is(GRAPH_SUFFIX, h.graph_len) && len_is(DATA_SUFFIX, h.data_len)))
}
