//! Parity on the wgpu backend (in CI: Mesa's lavapipe, a software Vulkan driver). Every process
//! pays wgpu's shader compilation and autotuning on first use, so the checks share one test
//! and one small model. Run with `cargo test -p glimpse-encoder --features wgpu --test
//! wgpu_parity` (set `XDG_RUNTIME_DIR` to silence lavapipe).
#![cfg(feature = "wgpu")]

mod common;

use common::cosine;

use std::time::Instant;

use common::{fixtures, Reference};
use glimpse_encoder::{Backend, ClipEncoder, Error, Towers};

const MIN_COSINE: f64 = 0.99999;

/// The two tests touch the process environment (one sets a variable, one spawns a child):
/// they take turns.
static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn tiny_clip_on_wgpu_matches_reference() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    // The first run of each kernel is compiled and autotuned; with the minimal autotune level
    // the test takes about half as long (70 s instead of 150 s on lavapipe, 2 cores) and computes
    // the same embeddings. Set before the runtime starts, under the lock above.
    if std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_none() {
        std::env::set_var("CUBECL_AUTOTUNE_LEVEL", "minimal");
    }
    let start = Instant::now();
    let device = Backend::Wgpu
        .device()
        .expect("a wgpu adapter (install mesa-vulkan-drivers)");
    println!("wgpu init: {:?}", start.elapsed());
    let encoder = ClipEncoder::load(fixtures().join("tiny-clip"), &device, Towers::Both).unwrap();
    let reference = Reference::load();

    let images = reference.images();
    let pixels: Vec<Vec<f32>> = images
        .iter()
        .map(|(name, _)| reference.tensor(&format!("pixel_values.{name}")).f32())
        .collect();
    let t = Instant::now();
    let embeds = encoder.embed_pixel_values(&pixels).unwrap();
    println!(
        "wgpu images, first batch (compiles kernels): {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let again = encoder.embed_pixel_values(&pixels).unwrap();
    println!("wgpu images, second batch: {:?}", t.elapsed());
    let mut min = f64::INFINITY;
    for (((name, _), e), e2) in images.iter().zip(&embeds).zip(&again) {
        let want = reference.tensor(&format!("image_embeds.{name}")).f32();
        let c = cosine(e, &want);
        min = min.min(c);
        assert!(c >= MIN_COSINE, "image {name}: cosine {c}");
        assert!(cosine(e, e2) >= MIN_COSINE);
    }
    println!(
        "wgpu images: min cosine {min:.9} (1 - cos = {:.1e})",
        1.0 - min
    );

    let ids: Vec<Vec<u32>> = reference.texts().into_iter().map(|(_, ids)| ids).collect();
    let t = Instant::now();
    let embeds = encoder.embed_token_ids(&ids).unwrap();
    println!(
        "wgpu texts, first batch (compiles kernels): {:?}",
        t.elapsed()
    );
    let mut min = f64::INFINITY;
    for (i, e) in embeds.iter().enumerate() {
        let want = reference.tensor(&format!("text_embeds.{i}")).f32();
        let c = cosine(e, &want);
        min = min.min(c);
        assert!(c >= MIN_COSINE, "text {i}: cosine {c}");
    }
    println!(
        "wgpu texts: min cosine {min:.9} (1 - cos = {:.1e})",
        1.0 - min
    );
    println!("wgpu total: {:?}", start.elapsed());
}

/// With no Vulkan driver visible, asking for wgpu is a typed error, not a panic. Runs in a child
/// process (the runtime is initialised once per process) that sees no Vulkan ICD.
#[test]
fn wgpu_without_an_adapter_is_a_typed_error() {
    const CHILD: &str = "GLIMPSE_WGPU_NO_ADAPTER_CHILD";
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    if std::env::var_os(CHILD).is_some() {
        let err = Backend::Wgpu.device().unwrap_err();
        assert!(
            matches!(
                err,
                Error::BackendUnavailable {
                    backend: "wgpu",
                    ..
                }
            ),
            "{err:?}"
        );
        println!("{err}");
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "wgpu_without_an_adapter_is_a_typed_error",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("child: {stdout}");
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("backend `wgpu` is unavailable"), "{stdout}");
}
