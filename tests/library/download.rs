//! Fetching a model from a Hugging Face Hub endpoint (feature `download`): a real HTTP
//! exchange with a local server that speaks the Hub's `resolve` protocol, the cache layout it
//! leaves, offline mode and an unreachable Hub.

use super::common::{make_folder, model_dir};
use glimpse::{download_model_with, Error, HubOptions, Library, MODEL_FILES};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const REPO: &str = "glimpse-tests/tiny-clip";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A Hub that serves the tiny fixture model's files under `/{REPO}/resolve/main/`, answering
/// range requests as the Hub does (206, `content-range`, `etag`, `x-repo-commit`).
struct FakeHub {
    endpoint: String,
    /// Requests for whole files (not the 1-byte metadata probes).
    downloads: Arc<AtomicUsize>,
}

fn serve(files: Arc<HashMap<String, Vec<u8>>>, stream: TcpStream, downloads: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut range_start = 0usize;
    let mut probe = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(range) = lower.strip_prefix("range: bytes=") {
            let range = range.trim();
            probe = range == "0-0";
            range_start = range
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let prefix = format!("/{REPO}/resolve/main/");
    let mut out = stream;
    let Some(body) = path.strip_prefix(&prefix).and_then(|f| files.get(f)) else {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    let end = if probe { 1.min(body.len()) } else { body.len() };
    if !probe {
        downloads.fetch_add(1, Ordering::SeqCst);
    }
    let part = &body[range_start.min(end)..end];
    let etag = blake3::hash(body).to_hex();
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {}-{}/{}\r\n\
         etag: \"{etag}\"\r\nx-repo-commit: {COMMIT}\r\nconnection: close\r\n\r\n",
        part.len(),
        range_start,
        (range_start + part.len()).saturating_sub(1),
        body.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(part);
}

impl FakeHub {
    fn start(model: &Path) -> FakeHub {
        let files: HashMap<String, Vec<u8>> = MODEL_FILES
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    std::fs::read(model.join(f)).expect("fixture file"),
                )
            })
            .collect();
        let files = Arc::new(files);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let downloads = Arc::new(AtomicUsize::new(0));
        let counter = downloads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(files.clone(), stream, &counter);
            }
        });
        FakeHub {
            endpoint,
            downloads,
        }
    }
}

fn options(cache: &Path, endpoint: Option<String>, offline: bool) -> HubOptions {
    let options = HubOptions::new(cache).offline(offline);
    match endpoint {
        Some(url) => options.endpoint(url),
        None => options,
    }
}

#[test]
fn downloads_into_the_hf_cache_layout_and_the_model_loads() {
    let hub = FakeHub::start(&model_dir());
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let dir = download_model_with(REPO, &options(&cache, Some(hub.endpoint.clone()), false))
        .expect("download from the local hub");
    assert_eq!(
        dir,
        cache
            .join("models--glimpse-tests--tiny-clip/snapshots")
            .join(COMMIT)
    );
    let main = std::fs::read_to_string(cache.join("models--glimpse-tests--tiny-clip/refs/main"));
    assert_eq!(main.unwrap().trim(), COMMIT);
    for f in MODEL_FILES {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(model_dir().join(f)).unwrap(),
            "{f} differs from what the hub served"
        );
    }
    assert_eq!(hub.downloads.load(Ordering::SeqCst), MODEL_FILES.len());

    // The downloaded directory is a working model: index and search with it.
    let photos = tmp.path().join("photos");
    make_folder(&photos);
    let lib = Library::builder()
        .model(&dir)
        .open(tmp.path().join("lib"))
        .unwrap();
    let report = lib.index_folder(&photos, &Default::default()).unwrap();
    assert!(report.added > 0 && report.failed.is_empty(), "{report:?}");
    assert!(!lib.search_text("a red square", 3).unwrap().is_empty());

    // A second call finds everything in the cache: nothing is fetched again, and offline
    // mode answers from the cache too.
    let again = download_model_with(REPO, &options(&cache, Some(hub.endpoint.clone()), false));
    assert_eq!(again.unwrap(), dir);
    let offline = download_model_with(REPO, &options(&cache, None, true));
    assert_eq!(offline.unwrap(), dir);
    assert_eq!(hub.downloads.load(Ordering::SeqCst), MODEL_FILES.len());
}

#[test]
fn offline_with_an_empty_cache_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = download_model_with(REPO, &options(tmp.path(), None, true)).unwrap_err();
    match err {
        Error::Download {
            repo,
            file,
            message,
        } => {
            assert_eq!(repo, REPO);
            assert_eq!(file, "config.json");
            assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
        }
        other => panic!("expected Error::Download, got {other:?}"),
    }
}

#[test]
fn an_unreachable_hub_or_a_missing_repository_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on: the connection is refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = download_model_with(REPO, &options(tmp.path(), Some(endpoint), false)).unwrap_err();
    assert!(
        matches!(&err, Error::Download { file, .. } if file == "config.json"),
        "{err:?}"
    );

    let hub = FakeHub::start(&model_dir());
    let err = download_model_with(
        "nobody/nothing",
        &options(tmp.path(), Some(hub.endpoint), false),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Download { repo, .. } if repo == "nobody/nothing"),
        "{err:?}"
    );
    // Nothing half-written is left looking like a model.
    assert!(!tmp
        .path()
        .join("models--nobody--nothing/snapshots")
        .exists());
}
