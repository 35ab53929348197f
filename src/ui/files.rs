//! The model as files: Download (`model.json` + `weights.safetensors`), Open (a
//! file picker, or files dropped onto the page), Export to PyTorch (a zip), and
//! the run kept in the browser's IndexedDB (a checkpoint: weights, optimizer
//! state, data position, and the loss history), so that a reload goes on with it
//! (the worker checks every weights file and checkpoint against the model first).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::share::Notice;
use super::{client, Editor};
use crate::nn::ModelSpec;
use crate::worker::protocol::{Command, History, MAX_WEIGHTS_BYTES};

/// The largest model file (JSON) the page opens.
pub const MAX_SPEC_BYTES: usize = 1 << 20;
/// `GetWeights` purposes.
pub const FOR_DOWNLOAD: &str = "download";

/// Weights opened with a new model wait here until the worker has the model.
#[derive(Clone, Copy)]
pub struct PendingWeights(pub StoredValue<Option<String>>);

/// Saves bytes as a file through the browser's download.
pub fn download(name: &str, bytes: &[u8], mime: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Ok(a) = doc.create_element("a").map(|e| e.unchecked_into::<web_sys::HtmlAnchorElement>()) {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    // The click has started the download; the URL may go once it has been read.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 10_000);
    }
}

fn file_stem(spec: &ModelSpec) -> String {
    crate::escape::file_stem(&spec.name, "model")
}

/// The worker sent weights: download them, or keep them in the browser.
pub fn on_weights(purpose: &str, spec: ModelSpec, b64: &str) {
    let Ok(bytes) = B64.decode(b64) else { return };
    if purpose == FOR_DOWNLOAD {
        // One download (browsers hold back a second automatic one): a zip with
        // model.json and weights.safetensors, which Open reads back.
        let stem = file_stem(&spec);
        let files = vec![
            ("model.json".to_string(), spec.to_json_pretty().into_bytes()),
            ("weights.safetensors".to_string(), bytes),
        ];
        if let Ok(zip) = crate::io::export::zip(&stem, &files) {
            download(&format!("{stem}.zip"), &zip, "application/zip");
        }
    }
}

/// The worker sent the run's checkpoint: keep it (with what the page shows of
/// the run) in this browser, so that a reload goes on with it.
pub fn on_checkpoint(spec: ModelSpec, steps: usize, b64: &str, history: History) {
    let Ok(bytes) = B64.decode(b64) else { return };
    wasm_bindgen_futures::spawn_local(async move {
        let _ = store::save(&spec, &bytes, steps, &history).await;
    });
}

/// The worker sent an export: zip it (with MNIST for image models, so that
/// `python train.py` runs as it is) and download it.
pub fn on_exported(format: String, files: Vec<(String, String)>, problem: RwSignal<Option<String>>) {
    wasm_bindgen_futures::spawn_local(async move {
        let mut files: Vec<(String, Vec<u8>)> =
            files.into_iter().filter_map(|(n, b)| B64.decode(b).ok().map(|b| (n, b))).collect();
        let spec = files
            .iter()
            .find(|f| f.0 == "model.json")
            .and_then(|f| ModelSpec::from_json(&String::from_utf8_lossy(&f.1)).ok());
        let stem = spec.as_ref().map(file_stem).unwrap_or_else(|| "model".into());
        if spec.as_ref().is_some_and(|s| !s.input.is_tokens()) {
            for name in [
                crate::data::mnist::TRAIN_IMAGES,
                crate::data::mnist::TRAIN_LABELS,
                crate::data::mnist::TEST_IMAGES,
                crate::data::mnist::TEST_LABELS,
            ] {
                let url = format!("mnist/{name}");
                let fetched = match web_sys::window() {
                    Some(w) => crate::io::fetch::fetch_bytes(w.fetch_with_str(&url), &url).await,
                    None => Err("no window".into()),
                };
                match fetched {
                    Ok(b) => files.push((format!("mnist/{name}"), b)),
                    Err(e) => {
                        problem.set(Some(format!("The export is downloaded without MNIST ({e}); pass train.py --data DIR with the four MNIST files.")));
                        break;
                    }
                }
            }
        }
        let folder = format!("{stem}-{format}");
        match crate::io::export::zip(&folder, &files) {
            Ok(zip) => download(&format!("{folder}.zip"), &zip, "application/zip"),
            Err(e) => problem.set(Some(e.to_string())),
        }
    });
}

async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buf =
        JsFuture::from(file.array_buffer()).await.map_err(|e| format!("{}: could not be read ({e:?})", file.name()))?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// Opens a model file (`.json`), a weights file (`.safetensors`), both, or a zip
/// with them (the page's Download); says what was opened, or what is wrong with
/// which file.
pub async fn open_files(files: Vec<web_sys::File>, editor: Editor, pending: PendingWeights, locked: bool) -> Notice {
    // Every file read, within its size limit; a zip opens into its files.
    let mut items: Vec<(String, Vec<u8>)> = Vec::new();
    let mut opened = Vec::new();
    for f in files {
        let name = f.name();
        let lower = name.to_lowercase();
        let limit = if lower.ends_with(".json") {
            MAX_SPEC_BYTES
        } else if lower.ends_with(".safetensors") || lower.ends_with(".zip") {
            MAX_WEIGHTS_BYTES
        } else {
            return Notice::problem(format!("{name}: layerlab opens a model file (.json) and its weights (.safetensors), or a zip of them; this is neither."));
        };
        if f.size() > limit as f64 {
            return Notice::problem(format!(
                "{name}: {:.1} MB is more than layerlab opens for such a file (at most {} MB); is it the right file?",
                f.size() / 1e6,
                limit >> 20
            ));
        }
        let bytes = match read_file(&f).await {
            Ok(b) => b,
            Err(e) => return Notice::problem(e),
        };
        if let Err(problem) = add_file(&mut items, name.clone(), bytes) {
            return problem;
        }
        opened.push(name);
    }
    open_items(items, opened, editor, pending, locked)
}

/// A file read (a zip opens into its model and weights files), or why it
/// cannot be opened.
fn add_file(items: &mut Vec<(String, Vec<u8>)>, name: String, bytes: Vec<u8>) -> Result<(), Notice> {
    if !name.to_lowercase().ends_with(".zip") {
        items.push((name, bytes));
        return Ok(());
    }
    match crate::io::export::unzip(&bytes, MAX_WEIGHTS_BYTES) {
        Ok(entries) => items.extend(
            entries
                .into_iter()
                .filter(|(n, _)| n.to_lowercase().ends_with(".json") || n.to_lowercase().ends_with(".safetensors"))
                .map(|(n, b)| (format!("{name}: {n}"), b)),
        ),
        Err(e) => return Err(Notice::problem(format!("{name}: {e}"))),
    }
    if !items.iter().any(|(n, _)| n.starts_with(&name)) {
        return Err(Notice::problem(format!(
            "{name}: the archive holds no model file (.json) or weights (.safetensors)."
        )));
    }
    Ok(())
}

/// A response's body, read in chunks; `None` once it passes `limit` bytes
/// (the rest is not read).
async fn read_capped(resp: &web_sys::Response, limit: usize) -> Result<Option<Vec<u8>>, JsValue> {
    let Some(body) = resp.body() else { return Ok(Some(Vec::new())) };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        if js_sys::Reflect::get(&chunk, &"done".into())?.as_bool().unwrap_or(true) {
            return Ok(Some(out));
        }
        let value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into())?.unchecked_into();
        if out.len() + value.length() as usize > limit {
            let _ = reader.cancel();
            return Ok(None);
        }
        out.extend(value.to_vec());
    }
}

/// Opens the file a lesson link names (`Lesson::open`: a zip or
/// safetensors of the lesson's model on the web), as Open would; a file
/// that cannot be fetched or opened leaves the lesson on fresh weights, and
/// the notice says why.
pub async fn open_link(link: String, editor: Editor, pending: PendingWeights, locked: bool) -> Notice {
    let shown = crate::escape::printable(&link);
    let failed = |why: String| {
        Notice::problem(format!(
            "The lesson's file {shown} could not be opened ({why}); the lesson starts from fresh weights."
        ))
    };
    let lower = link.split(['?', '#']).next().unwrap_or_default().to_lowercase();
    if !(lower.ends_with(".zip") || lower.ends_with(".safetensors")) {
        return failed("it is not a .zip or .safetensors file".into());
    }
    let Some(window) = web_sys::window() else { return failed("no window".into()) };
    let resp: web_sys::Response = match JsFuture::from(window.fetch_with_str(&link)).await {
        Ok(r) => r.unchecked_into(),
        Err(e) => {
            return failed(e.as_string().unwrap_or_else(|| "the site did not answer, or does not allow it".into()))
        }
    };
    if !resp.ok() {
        return failed(format!("HTTP {}", resp.status()));
    }
    // A stated size past the limit is refused before the body is read.
    let stated = resp.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<f64>().ok());
    if stated.is_some_and(|n| n > MAX_WEIGHTS_BYTES as f64) {
        return failed(format!("it is larger than {} MB", MAX_WEIGHTS_BYTES >> 20));
    }
    // Read piece by piece, and stopped past the limit: a server that states
    // no size cannot make the page hold more.
    let bytes = match read_capped(&resp, MAX_WEIGHTS_BYTES).await {
        Ok(Some(b)) => b,
        Ok(None) => return failed(format!("it is larger than {} MB", MAX_WEIGHTS_BYTES >> 20)),
        Err(_) => return failed("its contents could not be read".into()),
    };
    let name = lower.rsplit('/').next().unwrap_or("file").to_string();
    let mut items = Vec::new();
    if let Err(problem) = add_file(&mut items, name.clone(), bytes) {
        return failed(problem.text);
    }
    open_items(items, vec![name], editor, pending, locked)
}

/// Opens what the files held: the model (undoably) and its weights. In a
/// lesson that fixes the model (`locked`), only that model's weights open.
fn open_items(
    items: Vec<(String, Vec<u8>)>,
    opened: Vec<String>,
    editor: Editor,
    pending: PendingWeights,
    locked: bool,
) -> Notice {
    let mut spec = None;
    let mut weights = None;
    for (name, bytes) in items {
        if name.to_lowercase().ends_with(".json") {
            if bytes.len() > MAX_SPEC_BYTES {
                return Notice::problem(format!(
                    "{name}: too large for a model file (at most {} MB)",
                    MAX_SPEC_BYTES >> 20
                ));
            }
            match ModelSpec::from_json(&String::from_utf8_lossy(&bytes)) {
                Ok(s) => spec = Some(s),
                Err(e) => return Notice::problem(format!("{name}: {e}")),
            }
        } else {
            weights = Some(B64.encode(bytes));
        }
    }
    if locked {
        // The lesson's model stays: a model file must be it (its settings aside).
        let other = spec.take().is_some_and(|s| editor.spec.with_untracked(|cur| !cur.same_model(&s)));
        if other {
            return Notice::problem(format!(
                "{}: another model than this lesson's; the lesson fixes its model. Open the weights of this model (its Download from layerlab).",
                opened.join(" and ")
            ));
        }
    }
    let changed = spec.as_ref().is_some_and(|s| editor.spec.with_untracked(|cur| cur != s));
    if let Some(s) = spec {
        editor.edit(|cur| *cur = s);
    }
    if let Some(w) = weights {
        if changed {
            // Sent right after the new model reaches the worker.
            pending.0.set_value(Some(w));
        } else {
            client::send_new_run(&Command::LoadWeights { safetensors: w }, true);
        }
    }
    let mut text = format!("Opened {}.", opened.join(" and "));
    if changed {
        text.push_str(" Undo brings back the model you had.");
    }
    Notice { text, problem: false }
}

/// The Open / Download / Export buttons.
#[component]
pub fn FileButtons() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let pending = expect_context::<PendingWeights>();
    let notice = expect_context::<RwSignal<Option<Notice>>>();
    let page = expect_context::<super::share::PageState>();
    let picker = NodeRef::<leptos::html::Input>::new();
    let valid = Memo::new(move |_| editor.spec.with(|s| s.infer().is_ok()));
    let on_pick = move |_| {
        let Some(input) = picker.get() else { return };
        let files: Vec<web_sys::File> =
            input.files().map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
        input.set_value("");
        if files.is_empty() {
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let n = open_files(files, editor, pending, page.model_locked()).await;
            notice.set(Some(n));
        });
    };
    view! {
        <span class="file-buttons">
            <input type="file" multiple accept=".json,.safetensors,.zip" class="hidden" data-testid="open-input" node_ref=picker on:change=on_pick/>
            <button data-testid="open-button"
                title=move || if page.model_locked() { "Open trained weights of this lesson's model (.safetensors, or the .zip of its Download)" } else { "Open a model file (.json) and/or its weights (.safetensors), or the .zip of a Download; you can also drop them onto the page" }
                on:click=move |_| if let Some(i) = picker.get() { i.click() }>"Open…"</button>
            <button data-testid="download-button" disabled=move || !valid.get() title="Download the model (.json) and its current weights (.safetensors)"
                on:click=move |_| client::send(&Command::GetWeights { purpose: FOR_DOWNLOAD.into() })>"Download"</button>
            <button data-testid="export-button" disabled=move || !valid.get() title="Download PyTorch code (model.py, train.py) with the current weights, as a zip"
                on:click=move |_| client::send(&Command::Export { format: "pytorch".into() })>"Export to PyTorch"</button>
            <button data-testid="export-keras-button" disabled=move || !valid.get() title="Download Keras 3 code (model.py, train.py) with the current weights, as a zip"
                on:click=move |_| client::send(&Command::Export { format: "keras".into() })>"Keras"</button>
        </span>
    }
}

/// The trained model in IndexedDB: one record, the last model trained in this
/// browser (spec, weights, steps).
pub mod store {
    use super::*;

    const DB: &str = "layerlab";
    const STORE: &str = "models";
    /// The one record earlier versions kept.
    const LEGACY_KEY: &str = "current";
    /// The keys of the runs kept, the most recent first (localStorage, JSON).
    const INDEX_KEY: &str = "layerlab.kept-runs";
    /// The most runs kept in this browser (a run of the Seed CNN is about
    /// 1 MB); the least recent goes first.
    pub const MAX_KEPT_RUNS: usize = 8;

    /// The spec as a run is kept: its model and the settings a run keeps
    /// (the learning rate and the epochs change during one, the name is a
    /// label), so that Undo back to a model finds its run.
    pub fn normalized(spec: &ModelSpec) -> ModelSpec {
        let mut s = spec.clone();
        s.training.optimizer.set_lr(1.0);
        s.training.epochs = 1;
        s.name.clear();
        s
    }

    /// The key a model's run is kept under (FNV-1a of its normalized JSON).
    pub fn run_key(spec: &ModelSpec) -> String {
        let json = serde_json::to_string(&normalized(spec)).unwrap_or_default();
        let hash = json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        format!("run-{hash:016x}")
    }

    /// Resolves when an IndexedDB request succeeds (with its result) or fails.
    fn wait(req: &web_sys::IdbRequest) -> JsFuture {
        let promise = js_sys::Promise::new(&mut |resolve, reject| {
            let r = req.clone();
            let ok = Closure::once_into_js(move || {
                let _ = resolve.call1(&JsValue::NULL, &r.result().unwrap_or(JsValue::UNDEFINED));
            });
            let err = Closure::once_into_js(move || {
                let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("IndexedDB request failed"));
            });
            req.set_onsuccess(Some(ok.unchecked_ref()));
            req.set_onerror(Some(err.unchecked_ref()));
        });
        JsFuture::from(promise)
    }

    async fn open() -> Result<web_sys::IdbDatabase, JsValue> {
        let factory = web_sys::window().ok_or("no window")?.indexed_db()?.ok_or("no IndexedDB")?;
        let req = factory.open_with_u32(DB, 1)?;
        let upgrade = Closure::once_into_js(move |ev: web_sys::Event| {
            if let Some(db) = ev.target().and_then(|t| t.unchecked_into::<web_sys::IdbOpenDbRequest>().result().ok()) {
                let _ = db.unchecked_into::<web_sys::IdbDatabase>().create_object_store(STORE);
            }
        });
        req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
        Ok(wait(&req).await?.unchecked_into())
    }

    fn models(
        db: &web_sys::IdbDatabase,
        mode: web_sys::IdbTransactionMode,
    ) -> Result<web_sys::IdbObjectStore, JsValue> {
        db.transaction_with_str_and_mode(STORE, mode)?.object_store(STORE)
    }

    /// The keys of the runs kept, the most recent first.
    fn index() -> Vec<String> {
        super::super::local_storage()
            .and_then(|s| s.get_item(INDEX_KEY).ok().flatten())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn set_index(keys: &[String]) {
        if let Some(s) = super::super::local_storage() {
            let _ = s.set_item(INDEX_KEY, &serde_json::to_string(keys).unwrap_or_default());
        }
    }

    /// What a record holds: a checkpoint with the run's history, or (records
    /// kept by earlier versions) only weights.
    pub enum Kept {
        Checkpoint(Vec<u8>, History),
        Weights(Vec<u8>),
    }

    /// Keeps a run of `spec` (replacing the one kept for its model); the
    /// least recent beyond `MAX_KEPT_RUNS` go.
    pub async fn save(spec: &ModelSpec, checkpoint: &[u8], steps: usize, history: &History) -> Result<(), JsValue> {
        let db = open().await?;
        let key = run_key(spec);
        let record = js_sys::Object::new();
        js_sys::Reflect::set(&record, &"spec".into(), &spec.to_json_pretty().into())?;
        js_sys::Reflect::set(&record, &"checkpoint".into(), &js_sys::Uint8Array::from(checkpoint))?;
        js_sys::Reflect::set(&record, &"history".into(), &serde_json::to_string(history).unwrap_or_default().into())?;
        js_sys::Reflect::set(&record, &"steps".into(), &(steps as f64).into())?;
        let store = models(&db, web_sys::IdbTransactionMode::Readwrite)?;
        wait(&store.put_with_key(&record, &key.as_str().into())?).await?;
        let mut keys: Vec<String> = index().into_iter().filter(|k| *k != key).collect();
        keys.insert(0, key);
        for old in keys.split_off(keys.len().min(MAX_KEPT_RUNS)) {
            let _ = store.delete(&old.as_str().into());
        }
        set_index(&keys);
        Ok(())
    }

    /// The run kept for `spec`'s model, and its steps, if any.
    pub async fn load(spec: &ModelSpec) -> Result<Option<(Kept, usize)>, JsValue> {
        let db = open().await?;
        let store = models(&db, web_sys::IdbTransactionMode::Readonly)?;
        let mut v = wait(&store.get(&run_key(spec).as_str().into())?).await?;
        if v.is_undefined() || v.is_null() {
            v = wait(&store.get(&LEGACY_KEY.into())?).await?;
        }
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        let field = |name: &str| js_sys::Reflect::get(&v, &name.into()).unwrap_or(JsValue::UNDEFINED);
        // The record's own spec decides (a legacy record, or a key's collision).
        let stored = field("spec").as_string().and_then(|t| ModelSpec::from_json(&t).ok());
        if stored.is_none_or(|s| normalized(&s) != normalized(spec)) {
            return Ok(None);
        }
        let steps = field("steps").as_f64().unwrap_or(0.0) as usize;
        let bytes = |value: JsValue| js_sys::Uint8Array::new(&value).to_vec();
        let kept = if field("checkpoint").is_object() {
            let history = field("history").as_string().and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default();
            Kept::Checkpoint(bytes(field("checkpoint")), history)
        } else if field("weights").is_object() {
            Kept::Weights(bytes(field("weights")))
        } else {
            return Ok(None);
        };
        Ok(Some((kept, steps)))
    }

    /// Forgets the run kept for `spec`'s model (Reset starts it over).
    pub async fn clear(spec: &ModelSpec) -> Result<(), JsValue> {
        let db = open().await?;
        let key = run_key(spec);
        let store = models(&db, web_sys::IdbTransactionMode::Readwrite)?;
        wait(&store.delete(&key.as_str().into())?).await?;
        // The record of an earlier version goes only if it is this model's.
        let legacy = wait(&store.get(&LEGACY_KEY.into())?).await?;
        let legacy_spec = js_sys::Reflect::get(&legacy, &"spec".into()).ok().and_then(|v| v.as_string());
        if legacy_spec.and_then(|t| ModelSpec::from_json(&t).ok()).is_some_and(|s| normalized(&s) == normalized(spec)) {
            let _ = store.delete(&LEGACY_KEY.into());
        }
        set_index(&index().into_iter().filter(|k| *k != key).collect::<Vec<_>>());
        Ok(())
    }
}

/// The model on the page became `spec` (at start, by Undo, a preset, a
/// file): if this browser kept a run of it, the worker goes on with it (the
/// learning rate and the epochs may differ: they change during a run). At
/// start the notice says so; otherwise the status does (`Resumed`).
pub fn resume_kept(editor: Editor, view: super::TrainView, spec: ModelSpec, notice: Option<RwSignal<Option<Notice>>>) {
    let run = client::shown_run();
    wasm_bindgen_futures::spawn_local(async move {
        let Ok(Some((kept, steps))) = store::load(&spec).await else { return };
        // The page may have moved on meanwhile: another model, another run,
        // or this one already training (Train pressed before the store answered).
        let same = editor.spec.with_untracked(|s| store::normalized(s) == store::normalized(&spec));
        let untouched =
            client::shown_run() == run && !view.running.get_untracked() && view.losses.with_untracked(|l| l.is_empty());
        if !same || !untouched || steps == 0 {
            return;
        }
        let cmd = match kept {
            store::Kept::Checkpoint(bytes, history) => Command::Resume { checkpoint: B64.encode(&bytes), history },
            store::Kept::Weights(bytes) => Command::LoadWeights { safetensors: B64.encode(&bytes) },
        };
        client::send_new_run(&cmd, false);
        if let Some(notice) = notice.filter(|n| n.with_untracked(|n| n.is_none())) {
            notice.set(Some(Notice {
                text: format!(
                    "Restored the model trained in this browser ({}).",
                    crate::error::count_of(steps, "step")
                ),
                problem: false,
            }));
        }
    });
}
