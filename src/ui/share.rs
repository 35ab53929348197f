//! Sharing and teaching: the page's view state (folded panels, log scale, the
//! chosen example, a lesson, presenter mode), the Share dialog that puts the whole
//! experiment into a link, opening such links, and the lesson banner.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::Editor;
use crate::io::share::{self, Control, Experiment, Lesson, Panel, ViewState};

const PRESENTER_KEY: &str = "layerlab.presenter";

/// The page's state beyond the model: what a share link restores (panels, log
/// scale, example, lesson) and the presenter toggle (this browser's own).
#[derive(Clone, Copy)]
pub struct PageState {
    pub closed: RwSignal<Vec<Panel>>,
    pub log_scale: RwSignal<bool>,
    /// The test example the attention, hidden-state and filter views show.
    pub example: RwSignal<usize>,
    pub lesson: RwSignal<Option<Lesson>>,
    pub presenter: RwSignal<bool>,
}

impl PageState {
    pub fn new() -> Self {
        let presenter =
            super::local_storage().and_then(|s| s.get_item(PRESENTER_KEY).ok().flatten()).is_some_and(|v| v == "1");
        PageState {
            closed: RwSignal::new(vec![]),
            log_scale: RwSignal::new(false),
            example: RwSignal::new(0),
            lesson: RwSignal::new(None),
            presenter: RwSignal::new(presenter),
        }
    }

    pub fn is_open(&self, p: Panel) -> bool {
        self.closed.with(|c| !c.contains(&p))
    }

    pub fn toggle(&self, p: Panel) {
        self.closed.update(|c| {
            if let Some(i) = c.iter().position(|x| *x == p) {
                c.remove(i);
            } else {
                c.push(p)
            }
        });
    }

    fn hides(&self, c: Control) -> bool {
        self.lesson.with(|l| l.as_ref().is_some_and(|l| l.hides(c)))
    }

    /// A lesson fixes the model: no palette, presets or edits of the stack.
    pub fn model_locked(&self) -> bool {
        self.hides(Control::Palette)
    }

    /// A lesson fixes the compute backend.
    pub fn backend_locked(&self) -> bool {
        self.hides(Control::Backend)
    }

    /// A lesson fixes the data set and training settings.
    pub fn settings_locked(&self) -> bool {
        self.hides(Control::Hyperparameters)
    }

    pub fn view_state(&self) -> ViewState {
        ViewState {
            closed: self.closed.get_untracked(),
            log_scale: self.log_scale.get_untracked(),
            example: self.example.get_untracked(),
        }
    }

    fn apply(&self, e: &Experiment) {
        self.closed.set(e.view.closed.clone());
        self.log_scale.set(e.view.log_scale);
        self.example.set(e.view.example);
        self.lesson.set(e.lesson.clone());
    }

    pub fn set_presenter(&self, on: bool) {
        self.presenter.set(on);
        if let Some(s) = super::local_storage() {
            let _ = s.set_item(PRESENTER_KEY, if on { "1" } else { "0" });
        }
    }
}

impl Default for PageState {
    fn default() -> Self {
        Self::new()
    }
}

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

/// The page's address without its fragment.
fn page_address() -> String {
    let href = location().and_then(|l| l.href().ok()).unwrap_or_default();
    href.split('#').next().unwrap_or_default().to_string()
}

/// Drops the fragment from the address bar without reloading or a history entry.
fn clear_fragment() {
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&page_address()));
    }
}

/// A message on top of the page: news, or a problem.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub problem: bool,
}

impl Notice {
    pub fn problem(text: impl Into<String>) -> Self {
        Notice { text: text.into(), problem: true }
    }
}

/// Opens the share link in the page's address, if there is one: the model
/// becomes the link's (one undoable step, so the visitor's own model is one Undo
/// away), and panels and lesson follow it. Returns the notice to show.
pub fn open_link_in_address(editor: Editor, page: PageState) -> Option<Notice> {
    let hash = location().and_then(|l| l.hash().ok()).unwrap_or_default();
    if !share::is_link(&hash) {
        return None;
    }
    match share::decode(&hash) {
        Ok(r) => {
            let e = r.experiment;
            let replaced = editor.spec.with_untracked(|s| *s != e.spec);
            editor.edit(|s| *s = e.spec.clone());
            // Undo stays inside a lesson (its fixed settings included).
            editor.hold_history(e.lesson.is_some());
            page.apply(&e);
            // A lesson keeps its link (a reload shows the lesson again); otherwise
            // the experiment now lives in this browser like any other work.
            if e.lesson.is_none() {
                clear_fragment();
            }
            let mut text = String::new();
            if e.lesson.is_none() {
                text.push_str("Opened a shared experiment.");
                if replaced {
                    text.push_str(" Undo brings back the model you had.");
                }
            }
            for w in &r.warnings {
                text.push_str(&format!(" Note: {w}."));
            }
            (!text.is_empty()).then(|| Notice { text: text.trim().to_string(), problem: !r.warnings.is_empty() })
        }
        Err(e) => Some(Notice::problem(format!("This share link could not be opened: {e}. Your own model is kept."))),
    }
}

/// Copies text to the clipboard (best effort; the link stays selectable).
fn copy(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

/// The Share button and its dialog: a link to the experiment, and a lesson link
/// with a title, an instruction and hidden controls.
#[component]
pub fn ShareButton() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let page = expect_context::<PageState>();
    let open = RwSignal::new(false);
    let title = RwSignal::new(String::new());
    let instruction = RwSignal::new(String::new());
    let hide_palette = RwSignal::new(true);
    let hide_settings = RwSignal::new(false);
    let hide_backend = RwSignal::new(false);
    let open_file = RwSignal::new(String::new());
    let copied = RwSignal::new(None::<&'static str>);
    let experiment = move |lesson: Option<Lesson>| Experiment {
        v: share::VERSION,
        spec: editor.spec.get(),
        view: page.view_state(),
        lesson,
    };
    let share_link = move || {
        // Track the view state too, so the link follows folds and the example.
        page.closed.track();
        page.log_scale.track();
        page.example.track();
        format!("{}{}", page_address(), experiment(page.lesson.get()).fragment())
    };
    let lesson_link = move || {
        page.closed.track();
        page.log_scale.track();
        page.example.track();
        let mut hide = vec![];
        if hide_palette.get() {
            hide.push(Control::Palette);
        }
        if hide_settings.get() {
            hide.push(Control::Hyperparameters);
        }
        if hide_backend.get() {
            hide.push(Control::Backend);
        }
        let open = open_file.get().trim().to_string();
        let open = if share::is_file_link(&open) { open } else { String::new() };
        let lesson = Lesson {
            title: title.get().trim().to_string(),
            instruction: instruction.get().trim().to_string(),
            hide,
            open,
        };
        format!("{}{}", page_address(), experiment(Some(lesson)).fragment())
    };
    let select_all = |ev: leptos::ev::FocusEvent| {
        if let Some(i) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
            i.select();
        }
    };
    view! {
        <button class="share" data-testid="share-button" on:click=move |_| { copied.set(None); open.update(|o| *o = !*o) }>"Share"</button>
        <Show when=move || open.get()>
            <div class="share-dialog panel" data-testid="share-dialog" role="dialog" aria-label="Share this experiment">
                <div class="chart-head">
                    <h2>"Share this experiment"</h2>
                    <button data-testid="share-close" on:click=move |_| open.set(false)>"Close"</button>
                </div>
                <p class="hint">"The link holds the model, the data set and its settings, the training settings with the seed, and which panels are open. Whoever opens it gets the same experiment; pressing Train reproduces the same loss curve. Nothing is uploaded: it is all in the link."</p>
                <div class="link-row">
                    <input type="text" readonly data-testid="share-link" prop:value=share_link on:focus=select_all/>
                    <button data-testid="share-copy" on:click=move |_| { copy(&share_link()); copied.set(Some("link")) }>"Copy"</button>
                </div>
                <h3>"Lesson link"</h3>
                <p class="hint">"For a class: the same experiment with a title and an instruction on top, and chosen controls hidden."</p>
                <label class="field">"Title"
                    <input type="text" data-testid="lesson-title" maxlength="120" prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))/>
                </label>
                <label class="field">"Instruction"
                    <textarea data-testid="lesson-instruction" rows="3" maxlength="600" prop:value=move || instruction.get() on:input=move |ev| instruction.set(event_target_value(&ev))></textarea>
                </label>
                <label class="toggle"><input type="checkbox" data-testid="lesson-hide-palette" prop:checked=move || hide_palette.get() on:change=move |ev| hide_palette.set(event_target_checked(&ev))/>" Fix the model (hide the palette and layer editing)"</label>
                <label class="toggle"><input type="checkbox" data-testid="lesson-hide-settings" prop:checked=move || hide_settings.get() on:change=move |ev| hide_settings.set(event_target_checked(&ev))/>" Fix the data set and training settings"</label>
                <label class="toggle"><input type="checkbox" data-testid="lesson-hide-backend" prop:checked=move || hide_backend.get() on:change=move |ev| hide_backend.set(event_target_checked(&ev))/>" Hide the backend selector (each computer uses its own GPU or CPU)"</label>
                <label class="field">"Trained weights for the class to open (optional)"
                    <input type="text" data-testid="lesson-open" placeholder="https://your-site/seed-cnn.zip" prop:value=move || open_file.get() on:input=move |ev| open_file.set(event_target_value(&ev))/>
                    <span class="hint">"A link to this model's Download (.zip) or weights (.safetensors) on your class website; the site must allow the page to fetch it (CORS)."</span>
                    {move || {
                        let o = open_file.get();
                        (!o.trim().is_empty() && !share::is_file_link(o.trim())).then(|| view! {
                            <span class="field-error" data-testid="lesson-open-error">"Not a web link layerlab opens: use https://…, http://… or a path on this site."</span>
                        })
                    }}
                </label>
                <div class="link-row">
                    <input type="text" readonly data-testid="lesson-link" prop:value=lesson_link on:focus=select_all/>
                    <button data-testid="lesson-copy" on:click=move |_| { copy(&lesson_link()); copied.set(Some("lesson link")) }>"Copy"</button>
                </div>
                {move || copied.get().map(|what| view! { <p class="hint" role="status">{format!("The {what} is on the clipboard.")}</p> })}
            </div>
        </Show>
    }
}

/// The lesson's title and instruction on top of the page, with a way out.
#[component]
pub fn LessonBanner() -> impl IntoView {
    let page = expect_context::<PageState>();
    let editor = expect_context::<Editor>();
    view! {
        {move || page.lesson.get().map(|l| view! {
            <div class="lesson" data-testid="lesson-banner">
                <div>
                    <h2 data-testid="lesson-title-shown">{if l.title.is_empty() { "Lesson".to_string() } else { l.title.clone() }}</h2>
                    {(!l.instruction.is_empty()).then(|| view! { <p data-testid="lesson-instruction-shown">{l.instruction.clone()}</p> })}
                </div>
                <button data-testid="lesson-leave" title="Show every control and edit freely (the lesson link still works)"
                    on:click=move |_| { page.lesson.set(None); editor.hold_history(false); clear_fragment(); }>"Edit freely"</button>
            </div>
        })}
    }
}

/// The fold button in a panel's header.
#[component]
pub fn Fold(panel: Panel) -> impl IntoView {
    let page = expect_context::<PageState>();
    let name = serde_json::to_value(panel).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    view! {
        <button class="fold" data-testid=format!("fold-{name}") aria-expanded=move || page.is_open(panel).to_string()
            title=move || if page.is_open(panel) { "Fold this panel away" } else { "Show this panel" }
            on:click=move |_| page.toggle(panel)>{move || if page.is_open(panel) { "▾" } else { "▸" }}</button>
    }
}
