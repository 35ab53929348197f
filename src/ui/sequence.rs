//! Views into sequence models, live during training: attention maps per layer and
//! head (on the digit's patch grid for a ViT, with token labels for sequence
//! tasks) and the hidden states of recurrent layers over time.

use leptos::prelude::*;

use super::share::{Fold, PageState};
use super::views::{refresh_live, ExamplePicker, GreyImage, RgbaImage};
use super::{client, TrainView};
use crate::io::share::Panel;
use crate::nn::layers::Role;
use crate::worker::protocol::{AttentionMap, Command, HiddenState};

/// What an `AttentionMaps` event brought.
#[derive(Clone, Debug, PartialEq)]
pub struct Attention {
    pub maps: Vec<AttentionMap>,
    pub tokens: Vec<usize>,
    pub targets: Vec<usize>,
    pub image: Vec<u8>,
    pub label: usize,
    pub grid: Vec<usize>,
}

/// What a `HiddenStates` event brought.
#[derive(Clone, Debug, PartialEq)]
pub struct Hidden {
    pub layers: Vec<HiddenState>,
    pub tokens: Vec<usize>,
    pub image: Vec<u8>,
    pub label: usize,
}

/// Row `q` of head `h` of a map, or (for `None`) the mean over all rows: how much
/// attention each position receives.
fn attention_row(m: &AttentionMap, h: usize, q: Option<usize>) -> Vec<f32> {
    let t = m.steps;
    let head = &m.weights[h * t * t..(h + 1) * t * t];
    match q {
        Some(q) => head[q * t..(q + 1) * t].to_vec(),
        None => (0..t).map(|j| (0..t).map(|i| head[i * t + j]).sum::<f32>() / t as f32).collect(),
    }
}

/// For each row of a layer's map summed over heads, the position it weighs most.
fn peaks(m: &AttentionMap) -> Vec<usize> {
    let t = m.steps;
    (0..t)
        .map(|i| {
            let row: Vec<f32> = (0..t).map(|j| (0..m.heads).map(|h| m.weights[h * t * t + i * t + j]).sum()).collect();
            crate::train::argmax(&row)
        })
        .collect()
}

const SCALE: usize = 4;

/// The digit (28x28) drawn at `SCALE`x with each patch tinted by its weight
/// (relative to the largest), the patch grid, and the looking patch outlined.
fn patch_overlay(image: &[u8], grid: [usize; 2], weights: &[f32], selected: Option<usize>) -> Vec<u8> {
    let side = 28 * SCALE;
    let (ph, pw) = (side / grid[0].max(1), side / grid[1].max(1));
    let max = weights.iter().copied().fold(1e-9f32, f32::max);
    let mut out = vec![0u8; side * side * 4];
    for y in 0..side {
        for x in 0..side {
            let (r, c) = ((y / ph).min(grid[0] - 1), (x / pw).min(grid[1] - 1));
            let patch = r * grid[1] + c;
            let g = image.get((y / SCALE) * 28 + x / SCALE).copied().unwrap_or(0) as f32;
            let a = (weights.get(patch).copied().unwrap_or(0.0) / max).clamp(0.0, 1.0) * 0.8;
            let mut px = [g * (1.0 - a) + 255.0 * a, g * (1.0 - a) + 140.0 * a, g * (1.0 - a)];
            let edge = y % ph == 0 || x % pw == 0;
            let in_selected = selected == Some(patch);
            let selected_edge = in_selected && (y % ph < 2 || x % pw < 2 || y % ph >= ph - 2 || x % pw >= pw - 2);
            if selected_edge {
                px = [80.0, 160.0, 255.0];
            } else if edge {
                px = [90.0, 90.0, 90.0];
            }
            let o = (y * side + x) * 4;
            out[o..o + 3].copy_from_slice(&px.map(|v| v as u8));
            out[o + 3] = 255;
        }
    }
    out
}

/// Attention maps, per layer and head, for a chosen test example: rows are the
/// positions that look, columns the positions they look at.
#[component]
pub fn AttentionView() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let editor = expect_context::<super::Editor>();
    let page = expect_context::<PageState>();
    let index = page.example;
    // The patch whose looking the ViT view shows (None: all patches, averaged).
    let query = RwSignal::new(None::<usize>);
    let has_attention = Memo::new(move |_| editor.spec.with(|s| s.layers.iter().any(|l| l.role() == Role::Attention)));
    let request = move || client::send(&Command::Attention { index: index.get_untracked() });
    refresh_live(has_attention, 25, request);
    let content = move || {
        view_state.attention.get().map(|a| {
            let header = if !a.tokens.is_empty() {
                let fmt = |v: &[usize]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ");
                view! { <p class="tokens" data-testid="attention-tokens">"input: " <code>{fmt(&a.tokens)}</code> " → target: " <code>{fmt(&a.targets)}</code></p> }.into_any()
            } else if a.grid.len() == 2 && !a.image.is_empty() {
                let cols = a.grid[1];
                let q = move || match query.get() {
                    Some(p) => format!("where patch {p} (row {}, column {}) looks; click it again for all patches", p / cols + 1, p % cols + 1),
                    None => "where all patches look, on average; click a patch to see where it looks".to_string(),
                };
                view! { <p class="hint" data-testid="attention-query">{format!("Digit {} on its {}x{} patch grid: ", a.label, a.grid[0], a.grid[1])}{q}</p> }.into_any()
            } else {
                ().into_any()
            };
            let layers = a
                .maps
                .iter()
                .map(|m| {
                    let heads = (0..m.heads).map(|h| head_view(&a, m, h, query)).collect_view();
                    let peaks = peaks(m).iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ");
                    view! {
                        <div class="attn-layer" data-testid="attention-layer" data-layer=m.layer data-peaks=peaks>
                            <h4>{format!("layer {}", m.layer)}</h4>
                            <div class="tiles">{heads}</div>
                        </div>
                    }
                })
                .collect_view();
            view! { {header} {layers} }
        })
    };
    view! {
        <Show when=move || has_attention.get()>
            <section class="panel attention" data-testid="attention-panel" class:folded=move || !page.is_open(Panel::Attention)>
                <div class="chart-head">
                    <h2><Fold panel=Panel::Attention/>"Attention"</h2>
                    <ExamplePicker index label="Test example " testid="attention" request=Callback::new(move |_| request())/>
                </div>
                <div class="fold-body">
                    <p class="hint">"Which positions each position looks at: the stronger the colour, the more attention. For sequences, rows are output positions (with their target) and columns the input tokens; for images, positions are the 4x4 grid of patches, row by row."</p>
                    <div data-testid="attention-maps">{content}</div>
                </div>
            </section>
        </Show>
    }
}

/// One head of one layer: on the patch grid (ViT), as a labelled table (token
/// tasks) or as a plain square.
fn head_view(a: &Attention, m: &AttentionMap, h: usize, query: RwSignal<Option<usize>>) -> impl IntoView {
    let t = m.steps;
    let caption = format!("head {h}");
    if a.grid.len() == 2 && a.image.len() == 784 {
        let (grid, image, m) = ([a.grid[0], a.grid[1]], a.image.clone(), m.clone());
        let pixels = Memo::new(move |_| patch_overlay(&image, grid, &attention_row(&m, h, query.get()), query.get()));
        let pick = move |ev: web_sys::MouseEvent| {
            // Only clicks on the image itself (not its caption) pick a patch.
            let Some(el) =
                ev.target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlCanvasElement>(t).ok())
            else {
                return;
            };
            let (w, hgt) = (el.client_width().max(1) as f64, el.client_height().max(1) as f64);
            let c = ((ev.offset_x() as f64 / w * grid[1] as f64) as usize).min(grid[1] - 1);
            let r = ((ev.offset_y() as f64 / hgt * grid[0] as f64) as usize).min(grid[0] - 1);
            let p = r * grid[1] + c;
            query.update(|q| *q = if *q == Some(p) { None } else { Some(p) });
        };
        let side = 28 * SCALE;
        return view! {
            <figure class="head attn-head" on:click=pick title="click a patch to see where it looks">
                {move || view! { <RgbaImage width=side height=side pixels=pixels.get() class="patches"/> }}
                <figcaption>{caption}</figcaption>
            </figure>
        }
        .into_any();
    }
    let cells = &m.weights[h * t * t..(h + 1) * t * t];
    if !a.tokens.is_empty() && a.tokens.len() == t {
        // Weights in a row sum to 1: colour by the weight itself, so a sharp head
        // looks sharp and an even one faint.
        let header = a.tokens.iter().map(|tok| view! { <th>{*tok}</th> }).collect_view();
        let rows = (0..t)
            .map(|i| {
                let target = a.targets.get(i).map(|v| v.to_string()).unwrap_or_default();
                let tds = (0..t)
                    .map(|j| {
                        let w = cells[i * t + j];
                        view! { <td style=format!("--w: {:.3}", w) title=format!("output {i} looks at input {j} ({}): {:.0} %", a.tokens[j], w * 100.0)></td> }
                    })
                    .collect_view();
                view! { <tr><th>{target}</th>{tds}</tr> }
            })
            .collect_view();
        return view! {
            <figure class="head attn-head">
                <table class="attn-grid"><tr><th class="corner" title="rows: output positions with their target; columns: input tokens">"↓ out / in →"</th>{header}</tr>{rows}</table>
                <figcaption>{caption}</figcaption>
            </figure>
        }
        .into_any();
    }
    let grey: Vec<u8> = cells.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0) as u8).collect();
    view! {
        <figure class="head attn-head">
            <GreyImage width=t height=t pixels=grey class="attn"/>
            <figcaption>{caption}</figcaption>
        </figure>
    }
    .into_any()
}

/// A diverging colour for a state in [-1, 1]: blue, near-white, red.
fn diverging(v: f32) -> [u8; 4] {
    let v = v.clamp(-1.0, 1.0);
    let (end, t) = if v < 0.0 { ([33.0, 102.0, 172.0], -v) } else { ([178.0, 24.0, 43.0], v) };
    let mid = [247.0f32, 247.0, 247.0];
    let c = |k: usize| (mid[k] + (end[k] - mid[k]) * t) as u8;
    [c(0), c(1), c(2), 255]
}

/// Hidden states of every recurrent layer for a chosen test example: one row per
/// time step, one column per unit.
#[component]
pub fn HiddenView() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let editor = expect_context::<super::Editor>();
    let page = expect_context::<PageState>();
    let index = page.example;
    let has_recurrent = Memo::new(move |_| editor.spec.with(|s| s.layers.iter().any(|l| l.role() == Role::Recurrent)));
    let request = move || client::send(&Command::Hidden { index: index.get_untracked() });
    refresh_live(has_recurrent, 25, request);
    let content = move || {
        view_state.hidden.get().map(|hd| {
            hd.layers
                .iter()
                .map(|l| {
                    let rgba: Vec<u8> = l.values.iter().flat_map(|&v| diverging(v)).collect();
                    let row_px = if l.steps <= 12 { 16 } else { 4 };
                    let height = l.steps * row_px;
                    let width = (l.units * 2).clamp(64, 320);
                    // Beside the states, what each step read: a row of the digit or a token.
                    let beside = if hd.image.len() == 784 && l.steps == 28 {
                        view! { <GreyImage width=28 height=28 pixels=hd.image.clone() class="digit-big"/> }.into_any()
                    } else if hd.tokens.len() == l.steps {
                        let toks = hd.tokens.iter().map(|t| view! { <span style=format!("height: {row_px}px; line-height: {row_px}px")>{*t}</span> }).collect_view();
                        view! { <div class="step-tokens" title="the input token at each step">{toks}</div> }.into_any()
                    } else {
                        ().into_any()
                    };
                    view! {
                        <div class="hidden-layer" data-testid="hidden-layer" data-steps=l.steps data-units=l.units>
                            <h4>{format!("layer {} {}: {} units × {} steps", l.layer, l.layer_type, l.units, l.steps)}</h4>
                            <div class="hidden-row">
                                {beside}
                                <RgbaImage width=l.units height=l.steps pixels=rgba class="states" style=format!("width: {width}px; height: {height}px")/>
                            </div>
                        </div>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <Show when=move || has_recurrent.get()>
            <section class="panel hidden-states" data-testid="hidden-panel" class:folded=move || !page.is_open(Panel::Hidden)>
                <div class="chart-head">
                    <h2><Fold panel=Panel::Hidden/>"Hidden state"</h2>
                    <ExamplePicker index label="Test example " testid="hidden" request=Callback::new(move |_| request())/>
                </div>
                <div class="fold-body">
                    <p class="hint">"The memory of each recurrent layer as it reads the example: one row per step (top to bottom), one column per unit; red is +1, blue is −1."</p>
                    <div data-testid="hidden-states">{content}</div>
                </div>
            </section>
        </Show>
    }
}
