//! containerd-shim-skiff-v2: not built yet (issue 4). Exits non-zero so containerd reports it.

fn main() {
    eprintln!("containerd-shim-skiff-v2: the shim is not implemented yet (see issue 4)");
    std::process::exit(1);
}
