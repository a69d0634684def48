//! The library end to end with the tiny fixture model and real generated photos.

mod common;
mod crash;
mod hostile;
mod lifecycle;
mod semantic;
