//! The migrations are embedded with `include_str!`, which tracks the files that existed at the
//! last build only; a new migration directory must rebuild the crate too.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
