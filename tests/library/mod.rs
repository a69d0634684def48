//! The library end to end with the tiny fixture model and real generated photos.

mod common;
mod crash;
#[cfg(feature = "download")]
mod download;
mod hostile;
mod lifecycle;
mod precision;
mod semantic;
