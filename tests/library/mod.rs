//! The library end to end with the tiny fixture model and real generated photos.

mod bounds;
mod chinese;
mod common;
mod crash;
mod doubt;
#[cfg(feature = "download")]
mod download;
mod examples;
mod formats;
mod hostile;
mod hybrid;
mod integrity;
mod lifecycle;
mod mutation;
mod precision;
mod query_model;
mod semantic;
mod siglip;
