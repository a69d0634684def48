//! HEIC/HEIF and AVIF through libheif (Debian's `libheif-dev`: HEVC through libde265, AV1
//! through dav1d/aom), with a small hand-written binding of the dozen functions used here
//! (libheif 1.15's C API; no `-sys` crate, no bindgen run).
//!
//! What is decoded: the file's *primary* image (a multi-image file's others, thumbnails,
//! depth and alpha auxiliaries are not), with its `irot`/`imir`/`clap` transformations applied
//! by libheif (the HEIF spec makes them authoritative: the EXIF orientation of a HEIF is not
//! applied again), converted to 8-bit interleaved RGB(A): 10/12-bit (HDR) content is clamped to
//! 8 bits by libheif's `convert_hdr_to_8bit`. The size limits are checked from the header
//! before any pixel is decoded.

use crate::read::Limits;
use crate::{EncoderError, Error, Result};
use image::{DynamicImage, RgbImage, RgbaImage};
use std::ffi::{c_int, c_void, CStr};
use std::path::Path;
use std::sync::Once;

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct HeifContext {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct HeifImageHandle {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct HeifImage {
        _private: [u8; 0],
    }

    /// `struct heif_error`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct HeifError {
        pub code: c_int,
        pub subcode: c_int,
        pub message: *const c_char,
    }

    /// `struct heif_decoding_options` up to version 4 (libheif 1.15); only ever allocated by
    /// libheif (`heif_decoding_options_alloc`), which sets `version` to what it has.
    #[repr(C)]
    pub struct DecodingOptions {
        pub version: u8,
        pub ignore_transformations: u8,
        pub start_progress: *const c_void,
        pub on_progress: *const c_void,
        pub end_progress: *const c_void,
        pub progress_user_data: *mut c_void,
        pub convert_hdr_to_8bit: u8,
        pub strict_decoding: u8,
        pub decoder_id: *const c_char,
    }

    pub const COLORSPACE_RGB: c_int = 1;
    pub const CHROMA_INTERLEAVED_RGB: c_int = 10;
    pub const CHROMA_INTERLEAVED_RGBA: c_int = 11;
    pub const CHANNEL_INTERLEAVED: c_int = 10;

    #[link(name = "heif")]
    extern "C" {
        pub fn heif_init(params: *mut c_void) -> HeifError;
        pub fn heif_context_alloc() -> *mut HeifContext;
        pub fn heif_context_free(ctx: *mut HeifContext);
        pub fn heif_context_set_maximum_image_size_limit(ctx: *mut HeifContext, max_width: c_int);
        pub fn heif_context_read_from_memory_without_copy(
            ctx: *mut HeifContext,
            mem: *const c_void,
            size: usize,
            options: *const c_void,
        ) -> HeifError;
        pub fn heif_context_get_primary_image_handle(
            ctx: *mut HeifContext,
            handle: *mut *mut HeifImageHandle,
        ) -> HeifError;
        pub fn heif_image_handle_release(handle: *const HeifImageHandle);
        pub fn heif_image_handle_get_width(handle: *const HeifImageHandle) -> c_int;
        pub fn heif_image_handle_get_height(handle: *const HeifImageHandle) -> c_int;
        pub fn heif_image_handle_has_alpha_channel(handle: *const HeifImageHandle) -> c_int;
        pub fn heif_image_handle_get_luma_bits_per_pixel(handle: *const HeifImageHandle) -> c_int;
        pub fn heif_decoding_options_alloc() -> *mut DecodingOptions;
        pub fn heif_decoding_options_free(options: *mut DecodingOptions);
        pub fn heif_decode_image(
            handle: *const HeifImageHandle,
            out: *mut *mut HeifImage,
            colorspace: c_int,
            chroma: c_int,
            options: *const DecodingOptions,
        ) -> HeifError;
        pub fn heif_image_get_width(image: *const HeifImage, channel: c_int) -> c_int;
        pub fn heif_image_get_height(image: *const HeifImage, channel: c_int) -> c_int;
        pub fn heif_image_get_plane_readonly(
            image: *const HeifImage,
            channel: c_int,
            stride: *mut c_int,
        ) -> *const u8;
        pub fn heif_image_release(image: *const HeifImage);
    }
}

/// A parsed HEIF file and its primary image's handle; both freed on drop. Borrows the bytes
/// (read without a copy).
struct Primary<'a> {
    ctx: *mut ffi::HeifContext,
    handle: *mut ffi::HeifImageHandle,
    _bytes: std::marker::PhantomData<&'a [u8]>,
}

impl Drop for Primary<'_> {
    fn drop(&mut self) {
        // SAFETY: both pointers came from libheif and are released exactly once.
        unsafe {
            if !self.handle.is_null() {
                ffi::heif_image_handle_release(self.handle);
            }
            ffi::heif_context_free(self.ctx);
        }
    }
}

fn decode_error(path: &Path, what: &str, e: ffi::HeifError) -> Error {
    let message = if e.message.is_null() {
        String::new()
    } else {
        // SAFETY: libheif's messages are static NUL-terminated strings ("always defined").
        unsafe { CStr::from_ptr(e.message) }
            .to_string_lossy()
            .into_owned()
    };
    Error::Encoder(EncoderError::ImageDecode {
        path: path.to_path_buf(),
        message: format!(
            "libheif: {what}: {message} (error {}/{})",
            e.code, e.subcode
        ),
    })
}

fn check(path: &Path, what: &str, e: ffi::HeifError) -> Result<()> {
    if e.code == 0 {
        Ok(())
    } else {
        Err(decode_error(path, what, e))
    }
}

static INIT: Once = Once::new();

/// Parses `bytes` and opens the primary image, refusing one larger than `limits` (and wider or
/// higher than 65 535 pixels, libheif's own limit being set to that) before any decoding.
fn open<'a>(bytes: &'a [u8], path: &Path, limits: &Limits) -> Result<(Primary<'a>, u32, u32)> {
    INIT.call_once(|| {
        // SAFETY: heif_init(NULL) loads libheif's plugins (if any); reference-counted.
        unsafe { ffi::heif_init(std::ptr::null_mut()) };
    });
    // SAFETY: a fresh context; freed by `Primary`'s drop.
    let ctx = unsafe { ffi::heif_context_alloc() };
    if ctx.is_null() {
        return Err(Error::Encoder(EncoderError::ImageDecode {
            path: path.to_path_buf(),
            message: "libheif could not allocate a context".into(),
        }));
    }
    let mut primary = Primary {
        ctx,
        handle: std::ptr::null_mut(),
        _bytes: std::marker::PhantomData,
    };
    // SAFETY: `bytes` outlives the context (the `'a` borrow of `Primary`); libheif reads it in
    // place and never writes it.
    unsafe {
        ffi::heif_context_set_maximum_image_size_limit(ctx, 65_535);
        let e = ffi::heif_context_read_from_memory_without_copy(
            ctx,
            bytes.as_ptr().cast::<c_void>(),
            bytes.len(),
            std::ptr::null(),
        );
        check(path, "reading the file", e)?;
        let e = ffi::heif_context_get_primary_image_handle(ctx, &mut primary.handle);
        check(path, "finding the primary image", e)?;
    }
    // SAFETY: the handle is valid (checked above).
    let (w, h) = unsafe {
        (
            ffi::heif_image_handle_get_width(primary.handle),
            ffi::heif_image_handle_get_height(primary.handle),
        )
    };
    let (w, h) = (w.max(0) as u32, h.max(0) as u32);
    if w == 0 || h == 0 {
        return Err(Error::Encoder(EncoderError::ImageDecode {
            path: path.to_path_buf(),
            message: format!("the primary image declares a size of {w}x{h}"),
        }));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(Error::Encoder(EncoderError::ImageTooLarge {
            path: path.to_path_buf(),
            message: format!("{w}x{h} is {pixels} pixels, limit {}", limits.max_pixels),
        }));
    }
    Ok((primary, w, h))
}

/// The most memory a decode of this file holds at once, from its header: libheif's decoded
/// planes (YCbCr, up to 16 bits a sample), its RGB(A) conversion, and our copy of that.
pub(crate) fn peak_bytes(bytes: &[u8], path: &Path, limits: &Limits) -> Result<u64> {
    let (primary, w, h) = open(bytes, path, limits)?;
    // SAFETY: valid handle.
    let deep = unsafe { ffi::heif_image_handle_get_luma_bits_per_pixel(primary.handle) } > 8;
    let pixels = u64::from(w) * u64::from(h);
    let planes = pixels * 4 * if deep { 2 } else { 1 };
    Ok(planes + 2 * 4 * pixels + (1 << 20))
}

/// Decodes the primary image to 8-bit RGB (RGBA when it has alpha), transformations applied.
pub(crate) fn decode(bytes: &[u8], path: &Path, limits: &Limits) -> Result<DynamicImage> {
    let (primary, _, _) = open(bytes, path, limits)?;
    // SAFETY: valid handle.
    let alpha = unsafe { ffi::heif_image_handle_has_alpha_channel(primary.handle) } != 0;
    let chroma = if alpha {
        ffi::CHROMA_INTERLEAVED_RGBA
    } else {
        ffi::CHROMA_INTERLEAVED_RGB
    };
    let mut image: *mut ffi::HeifImage = std::ptr::null_mut();
    // SAFETY: options come from libheif and are freed right after the call; the fields set
    // exist in the version it reports.
    let e = unsafe {
        let options = ffi::heif_decoding_options_alloc();
        if !options.is_null() && (*options).version >= 2 {
            (*options).convert_hdr_to_8bit = 1;
        }
        let e = ffi::heif_decode_image(
            primary.handle,
            &mut image,
            ffi::COLORSPACE_RGB,
            chroma,
            options,
        );
        if !options.is_null() {
            ffi::heif_decoding_options_free(options);
        }
        e
    };
    check(path, "decoding the primary image", e)?;
    struct Decoded(*mut ffi::HeifImage);
    impl Drop for Decoded {
        fn drop(&mut self) {
            // SAFETY: released once.
            unsafe { ffi::heif_image_release(self.0) }
        }
    }
    let image = Decoded(image);
    let channels = if alpha { 4 } else { 3 };
    let mut stride: c_int = 0;
    // SAFETY: the interleaved plane of the image just decoded; `stride` bytes per row, `height`
    // rows, valid until `image` is released (after the copy below).
    let (w, h, plane) = unsafe {
        let w = ffi::heif_image_get_width(image.0, ffi::CHANNEL_INTERLEAVED);
        let h = ffi::heif_image_get_height(image.0, ffi::CHANNEL_INTERLEAVED);
        let p = ffi::heif_image_get_plane_readonly(image.0, ffi::CHANNEL_INTERLEAVED, &mut stride);
        (w, h, p)
    };
    let bad = |message: String| {
        Error::Encoder(EncoderError::ImageDecode {
            path: path.to_path_buf(),
            message,
        })
    };
    if plane.is_null() || w <= 0 || h <= 0 || (stride as i64) < i64::from(w) * channels as i64 {
        return Err(bad(format!(
            "libheif returned no usable plane ({w}x{h}, stride {stride})"
        )));
    }
    let (w, h, stride) = (w as usize, h as usize, stride as usize);
    let row = w * channels;
    let mut raw = Vec::with_capacity(row * h);
    for y in 0..h {
        // SAFETY: row `y` lies within the plane (stride >= row, checked above).
        let line = unsafe { std::slice::from_raw_parts(plane.add(y * stride), row) };
        raw.extend_from_slice(line);
    }
    drop(image);
    let (w, h) = (w as u32, h as u32);
    let img = if alpha {
        RgbaImage::from_raw(w, h, raw).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(w, h, raw).map(DynamicImage::ImageRgb8)
    };
    img.ok_or_else(|| bad("decoded buffer of the wrong size".into()))
}
