//! The page's entry point: installs the panic hook and mounts the app.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    layerlab::ui::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "layerlab-web is the page; build and serve it with `bash scripts/serve.sh`. The native tool is `layerlab`."
    );
}
