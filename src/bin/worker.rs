//! The training Web Worker's entry point (see `layerlab::worker`).

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    layerlab::worker::web::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("layerlab-worker runs inside the page as a Web Worker; serve the page with `bash scripts/serve.sh`.");
}
