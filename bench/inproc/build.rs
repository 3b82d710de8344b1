//! Each bundled plugin exports the same root-module symbol (`export_plugin!`), which a `.so`
//! needs and this binary, calling each plugin's `plugin()` directly, never reads. Linking the
//! three libraries into one binary would fail on it, so the linker keeps the first definition.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--allow-multiple-definition");
}
