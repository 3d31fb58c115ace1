//! skiff-build as a library: the Dockerfile frontend (parser, word expander, .dockerignore).
//! The executor, cache and CLI build on top of it.

pub mod frontend;
