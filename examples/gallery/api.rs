//! The HTTP routes: the page, JSON search endpoints, and photo renditions by id.

use crate::guard::{self, Refusal};
use crate::indexing::{self, SharedStatus};
use crate::thumbs::Thumbnails;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use glimpse::{Hit, ImageId, Library, SearchOptions};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Side of the grid's thumbnails, in pixels.
pub const THUMB_SIDE: u32 = 256;
/// Side of the large view, in pixels.
pub const VIEW_SIDE: u32 = 1280;
/// Largest photo accepted for search by example.
const MAX_UPLOAD_BYTES: usize = 64 << 20;
/// Results per search when the page does not say.
const DEFAULT_K: usize = 48;
/// Most results per search.
const MAX_K: usize = 500;

const INDEX_HTML: &str = include_str!("assets/index.html");
const GALLERY_JS: &str = include_str!("assets/gallery.js");
const GALLERY_CSS: &str = include_str!("assets/gallery.css");

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// The library (searches run while the indexing thread writes).
    pub lib: Arc<Library>,
    /// The rendition cache.
    pub thumbs: Thumbnails,
    /// Background indexing, if any.
    pub status: SharedStatus,
    /// Bounds the decodes running at once (a grid asks for dozens of thumbnails).
    pub decodes: Semaphore,
    /// Whether the server listens on a loopback address (then only loopback `Host`s are
    /// answered, see [`guard::host_allowed`]).
    pub loopback: bool,
}

/// The router of the gallery.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/gallery.js",
            get(|| async { page(GALLERY_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/gallery.css",
            get(|| async { page(GALLERY_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/status", get(status))
        .route("/api/folders", get(folders))
        .route("/api/search", get(search_text))
        .route("/api/similar/{id}", get(similar))
        .route(
            "/api/search-image",
            post(search_image).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/api/photo/{id}", get(photo))
        .route("/api/duplicates", get(duplicates))
        .route("/thumb/{id}", get(thumb))
        .route("/view/{id}", get(view))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "not found".into()) })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            check_host,
        ))
        .with_state(app)
}

/// Refuses requests whose `Host` is not loopback when the server is (DNS rebinding), and
/// requests the browser marks as sent by another site (see [`guard`]).
async fn check_host(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Decided before the await: a borrow of the request held across it is not `Send`.
    let refusal = {
        let value = |name| request.headers().get(name).and_then(|h| h.to_str().ok());
        if !guard::host_allowed(value(header::HOST), app.loopback) {
            Some("this gallery answers on localhost only")
        } else if !guard::fetch_site_allowed(value(HeaderName::from_static("sec-fetch-site"))) {
            Some("requests from other sites are refused")
        } else {
            None
        }
    };
    if let Some(message) = refusal {
        return ApiError(StatusCode::FORBIDDEN, message.into()).into_response();
    }
    next.run(request).await
}

fn page(body: &'static str, mime: &'static str) -> Response {
    ([(header::CONTENT_TYPE, mime)], body).into_response()
}

/// An error answered as `{"error": ...}` with a status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let message = match r {
            Refusal::BadId => "not a photo id",
            Refusal::Unknown => "no such photo in the library",
        };
        ApiError(status, message.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl From<glimpse::Error> for ApiError {
    fn from(e: glimpse::Error) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs blocking work (model, store, decoding) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// Filters and size of a search, from the query string.
#[derive(Debug, Default, Deserialize)]
struct Filters {
    /// Results wanted.
    k: Option<usize>,
    /// Only photos under this folder.
    folder: Option<String>,
    /// Only photos captured at or after this time (Unix seconds, EXIF).
    after: Option<i64>,
    /// Only photos captured before this time.
    before: Option<i64>,
    /// Text searches: fuse the photos' words (folder, file name, keywords) with CLIP (the
    /// library's default), or `false` for CLIP alone.
    words: Option<bool>,
}

impl Filters {
    fn k(&self) -> usize {
        self.k.unwrap_or(DEFAULT_K).clamp(1, MAX_K)
    }

    fn options(&self) -> SearchOptions {
        let mut o = SearchOptions::default();
        if let Some(f) = self.folder.as_deref().filter(|f| !f.is_empty()) {
            o = o.folder(f);
        }
        if let Some(t) = self.after {
            o = o.captured_after(t);
        }
        if let Some(t) = self.before {
            o = o.captured_before(t);
        }
        if let Some(on) = self.words {
            o = o.hybrid(on);
        }
        o
    }
}

fn hits_json(hits: &[Hit], started: Instant) -> Value {
    let hits: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "id": h.id,
                "score": h.score,
                "relevance": h.relevance,
                "matched": h.matched,
                "path": h.path.to_string_lossy(),
                "name": h.path.file_name().map(|n| n.to_string_lossy()),
            })
        })
        .collect();
    json!({ "hits": hits, "ms": started.elapsed().as_secs_f64() * 1e3 })
}

async fn status(State(app): State<Arc<App>>) -> Json<Value> {
    let indexing = indexing::lock(&app.status).clone();
    Json(json!({
        "photos": app.lib.len(),
        "model": app.lib.model_name(),
        "library": app.lib.dir().to_string_lossy(),
        "indexing": indexing,
    }))
}

/// The folders holding photos, with their counts (for the folder filter).
async fn folders(State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, path) in app.lib.photos() {
            if let Some(parent) = path.parent() {
                *counts
                    .entry(parent.to_string_lossy().into_owned())
                    .or_default() += 1;
            }
        }
        let list: Vec<Value> = counts
            .into_iter()
            .map(|(folder, n)| json!({ "folder": folder, "photos": n }))
            .collect();
        Ok(Json(json!({ "folders": list })))
    })
    .await
}

/// The text of a search (its filters are a [`Filters`] from the same query string).
#[derive(Debug, Deserialize)]
struct TextQuery {
    q: String,
}

async fn search_text(
    State(app): State<Arc<App>>,
    Query(query): Query<TextQuery>,
    Query(filters): Query<Filters>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let started = Instant::now();
        let text = query.q.trim();
        if text.is_empty() {
            return Err(ApiError(StatusCode::BAD_REQUEST, "empty query".into()));
        }
        let hits = app
            .lib
            .search_text_with(text, filters.k(), &filters.options())?;
        Ok(Json(hits_json(&hits, started)))
    })
    .await
}

async fn similar(
    State(app): State<Arc<App>>,
    Path(segment): Path<String>,
    Query(filters): Query<Filters>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let started = Instant::now();
        let (id, _) = guard::resolve(&segment, |id| app.lib.path(id))?;
        let hits = app.lib.similar(id, filters.k(), &filters.options())?;
        Ok(Json(hits_json(&hits, started)))
    })
    .await
}

/// Search by a photo the page uploads (the request body is the file). The facade searches by
/// a path, so the photo goes to a private temporary file, deleted when the search returns.
async fn search_image(
    State(app): State<Arc<App>>,
    Query(filters): Query<Filters>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if body.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no photo in the request".into(),
        ));
    }
    blocking(move || {
        let started = Instant::now();
        let mut tmp = tempfile::NamedTempFile::new().map_err(anyhow::Error::from)?;
        std::io::Write::write_all(&mut tmp, &body).map_err(anyhow::Error::from)?;
        let hits = app
            .lib
            .search_image_with(tmp.path(), filters.k(), &filters.options())
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        Ok(Json(hits_json(&hits, started)))
    })
    .await
}

/// A photo's metadata: path, file size and time, EXIF capture time, pixel size.
async fn photo(State(app): State<Arc<App>>, Path(segment): Path<String>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let (id, path) = guard::resolve(&segment, |id| app.lib.path(id))?;
        let meta = std::fs::metadata(&path).ok();
        let modified = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let dims = image::ImageReader::open(&path)
            .ok()
            .and_then(|r| r.with_guessed_format().ok())
            .and_then(|r| r.into_dimensions().ok());
        Ok(Json(json!({
            "id": id,
            "path": path.to_string_lossy(),
            "name": path.file_name().map(|n| n.to_string_lossy()),
            "folder": path.parent().map(|p| p.to_string_lossy()),
            "bytes": meta.as_ref().map(|m| m.len()),
            "modified": modified,
            "captured": captured(&path),
            "width": dims.map(|d| d.0),
            "height": dims.map(|d| d.1),
        })))
    })
    .await
}

/// The EXIF capture time as the camera wrote it (`DateTimeOriginal`, else `DateTime`).
fn captured(path: &std::path::Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = std::io::BufReader::new(file);
    let exif = exif::Reader::new().read_from_container(&mut reader).ok()?;
    [exif::Tag::DateTimeOriginal, exif::Tag::DateTime]
        .iter()
        .find_map(|&tag| exif.get_field(tag, exif::In::PRIMARY))
        .map(|f| f.display_value().to_string())
}

#[derive(Debug, Deserialize)]
struct DuplicateQuery {
    min: Option<f32>,
}

async fn duplicates(
    State(app): State<Arc<App>>,
    Query(q): Query<DuplicateQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let started = Instant::now();
        let min = q.min.unwrap_or(0.95).clamp(0.5, 1.0);
        let groups = app.lib.duplicates(min)?;
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| hits_json(g, started)["hits"].clone())
            .collect();
        Ok(Json(json!({ "groups": groups, "min": min,
                        "ms": started.elapsed().as_secs_f64() * 1e3 })))
    })
    .await
}

async fn thumb(State(app): State<Arc<App>>, Path(segment): Path<String>) -> ApiResult<Response> {
    rendition(app, segment, THUMB_SIDE).await
}

async fn view(State(app): State<Arc<App>>, Path(segment): Path<String>) -> ApiResult<Response> {
    rendition(app, segment, VIEW_SIDE).await
}

/// A cached JPEG rendition of a photo the library holds, by id only.
async fn rendition(app: Arc<App>, segment: String, side: u32) -> ApiResult<Response> {
    let (id, path): (ImageId, _) = guard::resolve(&segment, |id| app.lib.path(id))?;
    let _permit = app
        .decodes
        .acquire()
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let thumbs = app.thumbs.clone();
    let (bytes, _cached) = blocking(move || Ok(thumbs.get(id, &path, side)?)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        bytes,
    )
        .into_response())
}
