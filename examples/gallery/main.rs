//! A gallery in the browser: search a library by text or by example photo and look at the
//! results as pictures.
//!
//! `cargo run --example gallery -- --library <DIR> [--photos <DIR>] [--model <DIR>]
//!  [--port 8080] [--bind 127.0.0.1]`
//!
//! Then open the printed address. The page (plain HTML, CSS and JavaScript, built into the
//! binary) offers a search box, a thumbnail grid best first (score on hover), a large view with
//! the photo's metadata and "more like this", search by a dropped or picked photo, folder and
//! capture-date filters, and a duplicates view. With `--photos`, the folder is indexed in the
//! background and the page shows the progress live while searches keep working.
//!
//! Photos are served only by their library id, as thumbnails and large views made once and
//! cached in `<library>/thumbnails/`; nothing else on disk is reachable (see `guard.rs`). The
//! server binds to the loopback address unless `--bind` says otherwise.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod guard;
mod indexing;
mod thumbs;

use anyhow::Context;
use clap::Parser;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(about = "Search a Glimpse library in the browser")]
struct Args {
    /// Library directory.
    #[arg(long)]
    library: PathBuf,
    /// Index (or update) this folder in the background while the page is up.
    #[arg(long)]
    photos: Option<PathBuf>,
    /// CLIP checkpoint directory (Hugging Face layout).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on. Anything but a loopback address lets other machines search
    /// your photos and see them.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Thumbnails and large views decoded at once.
    #[arg(long, default_value_t = 2)]
    decodes: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lib = Arc::new(common::open(&args.library, args.model.as_ref(), None)?);
    let status = Arc::new(Mutex::new(indexing::IndexStatus::default()));
    let thumbs = thumbs::Thumbnails::new(lib.dir());
    // Renditions of photos removed since the last run go (the library is the truth).
    thumbs.prune(|id| lib.path(id).is_some());
    if let Some(photos) = &args.photos {
        indexing::start(lib.clone(), photos.clone(), status.clone(), thumbs.clone());
    }
    let app = Arc::new(api::App {
        thumbs,
        lib,
        status,
        decodes: tokio::sync::Semaphore::new(args.decodes.max(1)),
        loopback: args.bind.is_loopback(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        if !local.ip().is_loopback() {
            eprintln!("gallery: listening on {local}, reachable from other machines");
        }
        // One line on stdout with the address, for people and for scripts.
        println!("gallery: http://{local}/");
        std::io::stdout().flush()?;
        axum::serve(listener, api::router(app))
            .await
            .context("serving")
    })
}
