//! The model builder: the layer palette, the stack of layer cards with their
//! shapes and parameters, and the errors with their fix buttons.

use leptos::prelude::*;
use web_sys::DragEvent;

use super::Editor;
use crate::error::format_count;
use crate::nn::spec::{LayerSpec, LAYER_GROUPS};

const NEW_PREFIX: &str = "new:";
const MOVE_PREFIX: &str = "move:";

fn drag_payload(ev: &DragEvent) -> Option<String> {
    ev.data_transfer().and_then(|dt| dt.get_data("text/plain").ok())
}

fn set_drag_payload(ev: &DragEvent, text: &str) {
    if let Some(dt) = ev.data_transfer() {
        let _ = dt.set_data("text/plain", text);
    }
}

/// Inserts a dropped palette item, or moves a dragged card, to `index`.
fn drop_at(editor: Editor, index: usize, payload: &str) {
    if let Some(ty) = payload.strip_prefix(NEW_PREFIX) {
        if let Some(layer) = LayerSpec::default_for(ty) {
            editor.edit(|s| s.layers.insert(index.min(s.layers.len()), layer));
        }
    } else if let Some(from) = payload.strip_prefix(MOVE_PREFIX).and_then(|f| f.parse::<usize>().ok()) {
        editor.edit(|s| {
            if from < s.layers.len() {
                let layer = s.layers.remove(from);
                let to = if index > from { index - 1 } else { index };
                s.layers.insert(to.min(s.layers.len()), layer);
            }
        });
    }
}

#[component]
pub fn Palette() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let view_state = expect_context::<super::TrainView>();
    let notice = expect_context::<RwSignal<Option<super::share::Notice>>>();
    // The preset the model on the page is (its training settings aside), or none.
    let shown = Memo::new(move |_| editor.spec.with(crate::Preset::of));
    let presets = crate::PRESETS
        .iter()
        .map(|p| view! { <option value=p.id title=p.description prop:selected=move || shown.get().is_some_and(|s| s.id == p.id)>{p.title}</option> })
        .collect_view();
    view! {
        <aside class="palette panel">
            <h2>"Model"</h2>
            <label class="field">
                "Preset"
                <select data-testid="preset-select" on:change=move |ev| {
                    if let Some(p) = crate::preset(&event_target_value(&ev)) {
                        view_state.moved_on(notice);
                        editor.edit(|s| *s = p);
                    }
                }>
                    <option value="" disabled prop:selected=move || shown.get().is_none()>"Your own model"</option>
                    {presets}
                </select>
            </label>
            <p class="hint" data-testid="preset-description">{move || match shown.get() {
                Some(p) => p.description.to_string(),
                None => "Not a preset: built or changed here, or opened from a file. Choose a preset to start from one.".to_string(),
            }}</p>
            <div class="undo-row">
                <button data-testid="new-empty" title="Start from no layers, on the same data; Undo brings the model back"
                    on:click=move |_| {
                        view_state.moved_on(notice);
                        editor.edit(|s| {
                            s.layers.clear();
                            s.name.clear();
                        });
                    }>"New empty model"</button>
                <button data-testid="undo-button" title="Undo (Ctrl+Z)" disabled=move || !editor.can_undo() on:click=move |_| editor.undo()>"Undo"</button>
                <button data-testid="redo-button" title="Redo (Ctrl+Shift+Z)" disabled=move || !editor.can_redo() on:click=move |_| editor.redo()>"Redo"</button>
            </div>
            <h2>"Layers"</h2>
            <p class="hint">"Drag a layer into the stack, or click to add it at the end."</p>
            <div class="palette-groups">
            {LAYER_GROUPS.iter().map(|(group, types)| view! {
                <div>
                <h3>{*group}</h3>
                <div class="palette-group">
                    {types.iter().map(|ty| {
                        let ty: &'static str = ty;
                        view! {
                            <button class="palette-item" draggable="true" data-testid=format!("palette-item-{ty}") title=LayerSpec::description(ty)
                                on:dragstart=move |ev: DragEvent| set_drag_payload(&ev, &format!("{NEW_PREFIX}{ty}"))
                                on:click=move |_| {
                                    if let Some(layer) = LayerSpec::default_for(ty) {
                                        editor.edit(|s| s.layers.push(layer));
                                    }
                                }>{ty}</button>
                        }
                    }).collect_view()}
                </div>
                </div>
            }).collect_view()}
            </div>
        </aside>
    }
}

#[component]
pub fn Stack() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let info = Memo::new(move |_| editor.spec.with(|s| s.infer()));
    let shapes = Memo::new(move |_| {
        editor.spec.with(|s| s.partial_infos().into_iter().map(|l| (l.output_shape, l.param_count)).collect::<Vec<_>>())
    });
    let totals = move || match info.get() {
        Ok(i) => {
            let bytes = i.total_params * 4 * 4; // weights, gradients, two Adam moments
            format!("{} parameters · about {:.1} MB to train", format_count(i.total_params as u64), bytes as f64 / 1e6)
        }
        Err(_) => "the model has an error".to_string(),
    };
    let page = expect_context::<super::share::PageState>();
    let drop_end = move |ev: DragEvent| {
        ev.prevent_default();
        if page.model_locked() {
            return;
        }
        if let Some(p) = drag_payload(&ev) {
            let n = editor.spec.with_untracked(|s| s.layers.len());
            drop_at(editor, n, &p);
        }
    };
    view! {
        <section class="stack panel">
            <h2>"Network"</h2>
            <div class="totals" data-testid="model-totals">{totals}</div>
            <div class="card input-card" data-testid="input-card">{move || editor.spec.with(|s| if s.input.is_tokens() { format!("Input: {} task, token ids {:?}", s.input.name(), s.input.shape()) } else { format!("Input: MNIST digit {:?}", s.input.shape()) })}</div>
            <For each=move || editor.spec.with(|s| s.layers.iter().cloned().enumerate().collect::<Vec<_>>())
                key=|(i, l)| format!("{i}:{}", serde_json::to_string(l).unwrap_or_default())
                children=move |(index, layer)| view! { <LayerCard index layer info shapes/> }/>
            <Show when=move || !page.model_locked()>
                <div class="drop-end" on:dragover=|ev: DragEvent| ev.prevent_default() on:drop=drop_end>
                    "Drop a layer here"
                </div>
            </Show>
            {move || match info.get() {
                Err(e) if e.layer.is_none() => view! { <SpecErrorView error=e/> }.into_any(),
                _ => ().into_any(),
            }}
        </section>
    }
}

/// The engine's message for a spec error, with a button for its fix if it has one.
#[component]
fn SpecErrorView(error: crate::SpecError) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let fix = error.fix.clone();
    view! {
        <div class="error" data-testid="layer-error">{error.to_string()}
            {fix.map(|f| view! { <button data-testid="fix-button" on:click=move |_| editor.edit(|s| f.apply(&mut s.layers))>"Fix it"</button> })}
        </div>
    }
}

type InferResult = Result<crate::nn::ModelInfo, crate::SpecError>;

#[component]
fn LayerCard(
    index: usize,
    layer: LayerSpec,
    info: Memo<InferResult>,
    shapes: Memo<Vec<(Vec<usize>, usize)>>,
) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let page = expect_context::<super::share::PageState>();
    let locked = move || page.model_locked();
    let ty = layer.type_name();
    let card_error = RwSignal::new(None::<String>);
    // While a parameter is being typed: the layer as it would be, for a live shape.
    let preview = RwSignal::new(None::<LayerSpec>);
    let error = move || match info.get() {
        Err(e) if e.layer == Some(index) => Some(e),
        _ => None,
    };
    // A refused value keeps Train waiting, naming this card (`FieldErrors`).
    expect_context::<super::FieldErrors>().follow(format!("layer {index} {ty}"), card_error);
    let params = LayerSpec::param_names(ty).iter().map(|name| {
        let name: &'static str = name;
        let text = layer.param_text(name);
        let l = layer.clone();
        let commit = {
            let l = l.clone();
            move |value: String| match l.with_param(name, &value) {
                Ok(new) => {
                    card_error.set(None);
                    editor.edit(|s| if index < s.layers.len() { s.layers[index] = new });
                }
                Err(msg) => card_error.set(Some(msg)),
            }
        };
        // A few words: a list (its default first, where it may be unset).
        if let Some(choices) = layer.param_choices(name) {
            let optional = layer.with_param(name, "").is_ok();
            return view! {
                <label class="param" title=LayerSpec::param_help(name)>
                    <span>{name}</span>
                    <select data-testid=format!("param-{name}") disabled=locked title=move || locked().then_some("Fixed by this lesson") on:change=move |ev| commit(event_target_value(&ev))>
                        {optional.then(|| view! { <option value="" selected=text.is_empty()>"default"</option> })}
                        {choices.iter().map(|c| view! { <option value=*c selected=text == *c>{*c}</option> }).collect_view()}
                    </select>
                </label>
            }
            .into_any();
        }
        view! {
            <label class="param" title=LayerSpec::param_help(name)>
                <span>{name}</span>
                <input type="text" data-testid=format!("param-{name}") value=text placeholder="default" readonly=locked
                    title=move || locked().then_some("Fixed by this lesson")
                    on:input=move |ev| match l.with_param(name, &event_target_value(&ev)) {
                        Ok(new) => {
                            card_error.set(None);
                            preview.set(Some(new));
                        }
                        Err(msg) => {
                            card_error.set(Some(msg));
                            preview.set(None);
                        }
                    }
                    on:change=move |ev| commit(event_target_value(&ev))/>
            </label>
        }
        .into_any()
    }).collect_view();
    let shape_text = move || {
        let shown = match preview.get() {
            // Typing: infer the stack as it would be with the new value.
            Some(p) => editor.spec.with(|s| {
                let mut s = s.clone();
                if index < s.layers.len() {
                    s.layers[index] = p;
                }
                s.partial_infos().get(index).map(|l| (l.output_shape.clone(), l.param_count))
            }),
            None => shapes.get().get(index).cloned(),
        };
        match shown {
            Some((shape, count)) => format!("→ {shape:?} · {} params", format_count(count as u64)),
            None => "→ ?".to_string(),
        }
    };
    view! {
        <div class="card layer-card" class:has-error=move || error().is_some() data-testid="layer-card" data-layer-type=ty draggable=move || (!locked()).to_string()
            on:dragstart=move |ev: DragEvent| set_drag_payload(&ev, &format!("{MOVE_PREFIX}{index}"))
            on:dragover=|ev: DragEvent| ev.prevent_default()
            on:drop=move |ev: DragEvent| {
                ev.prevent_default();
                ev.stop_propagation();
                if locked() {
                    return;
                }
                if let Some(p) = drag_payload(&ev) {
                    drop_at(editor, index, &p);
                }
            }>
            <div class="card-head">
                <span class="index">{index}</span>
                <strong>{ty}</strong>
                <span class="shape" data-testid="layer-shape">{shape_text}</span>
                <span class="card-actions" class:hidden=locked>
                    <button title="Move up" aria-label="Move up" disabled=index == 0 on:click=move |_| editor.edit(|s| if index > 0 && index < s.layers.len() { s.layers.swap(index - 1, index) })>"↑"</button>
                    <button title="Move down" aria-label="Move down" on:click=move |_| editor.edit(|s| if index + 1 < s.layers.len() { s.layers.swap(index, index + 1) })>"↓"</button>
                    <button title="Remove" aria-label="Remove" data-testid="remove-layer" on:click=move |_| editor.edit(|s| if index < s.layers.len() { s.layers.remove(index); })>"✕"</button>
                </span>
            </div>
            <div class="params">{params}</div>
            {move || card_error.get().map(|m| view! { <div class="error" data-testid="param-error">{m}</div> })}
            {move || error().map(|e| view! { <SpecErrorView error=e/> })}
        </div>
    }
}
