//! Integration tests of the `glimpse` facade: one binary, one module per topic.

mod library;
