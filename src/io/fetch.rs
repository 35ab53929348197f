//! Fetching a file in the browser (the page's and the worker's `fetch`).

use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

/// The body of the response to `fetch` (a `fetch_with_str(url)` of a window or a
/// worker), or why there is none.
pub async fn fetch_bytes(fetch: js_sys::Promise, url: &str) -> Result<Vec<u8>, String> {
    let fail = |e: JsValue| format!("could not load {url}: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")));
    let resp: Response = JsFuture::from(fetch).await.map_err(fail)?.unchecked_into();
    if !resp.ok() {
        return Err(format!("could not load {url}: HTTP {}", resp.status()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}
