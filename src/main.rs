//! The page's entry point: installs the panic hook and mounts the app.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    layerlab_web::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("layerlab-web is the page; build and serve it with `bash scripts/serve.sh`. The native tool is `layerlab`.");
}

#[cfg(target_arch = "wasm32")]
mod layerlab_web {
    //! A placeholder page until the Leptos UI (issue 3): it runs the engine's shape
    //! inference on the presets in the browser and shows the result.
    pub fn mount() {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        let Some(root) = document.get_element_by_id("app") else { return };
        let mut html = String::from("<h1>layerlab</h1><p>A deep-learning playground that runs in your browser. The model builder arrives soon; here are the built-in models, as the engine (compiled to WebAssembly) sees them.</p>");
        for (name, _) in layerlab::PRESETS {
            let spec = layerlab::preset(name).expect("preset");
            match spec.infer() {
                Ok(info) => {
                    html += &format!("<h2 data-testid=\"preset-{name}\">{name}: {} parameters</h2><table><tr><th>#</th><th>layer</th><th>output</th><th>params</th></tr>", info.total_params);
                    for l in &info.layers {
                        html += &format!("<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td></tr>", l.index, l.layer_type, l.output_shape, l.param_count);
                    }
                    html += "</table>";
                }
                Err(e) => html += &format!("<p class=\"error\">{name}: {e}</p>"),
            }
        }
        root.set_inner_html(&html);
    }
}
