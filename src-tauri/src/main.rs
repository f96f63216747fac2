//! The `postern` program: one call into the library, so the tray shell and
//! the CLI share one binary.
fn main() {
    std::process::exit(postern::run());
}
