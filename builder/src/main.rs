//! skiff-build: not built yet (issue 3). Exits non-zero so nobody mistakes it for a builder.

fn main() {
    eprintln!("skiff-build: the builder is not implemented yet (see issue 3)");
    std::process::exit(1);
}
