//! Views into the model: the confusion matrix with example digits per cell, and
//! a convolution's filters and feature maps for a chosen test digit.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::Clamped;
use web_sys::{CanvasRenderingContext2d, ImageData};

use super::share::{Fold, PageState};
use super::{client, TrainView};
use crate::io::share::Panel;
use crate::worker::protocol::Command;

/// What an `Inspection` event brought.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub index: usize,
    /// The convolution's index in the stack.
    pub layer: usize,
    pub label: usize,
    pub image: Vec<u8>,
    pub filter_shape: Vec<usize>,
    pub filters: Vec<f32>,
    pub map_shape: Vec<usize>,
    pub maps: Vec<f32>,
}

/// A `width` x `height` grey image (values 0-255) drawn pixel-exact on a canvas;
/// CSS scales it up.
#[component]
pub fn GreyImage(width: usize, height: usize, pixels: Vec<u8>, #[prop(optional)] class: &'static str) -> impl IntoView {
    let rgba: Vec<u8> = pixels.iter().flat_map(|&p| [p, p, p, 255]).collect();
    view! { <RgbaImage width height pixels=rgba class/> }
}

/// A `width` x `height` RGBA image drawn pixel-exact on a canvas; CSS (the class
/// or `style`) scales it up.
#[component]
pub fn RgbaImage(
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    #[prop(optional)] class: &'static str,
    #[prop(optional, into)] style: String,
) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let Some(ctx) = c
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|x| wasm_bindgen::JsCast::dyn_into::<CanvasRenderingContext2d>(x).ok())
        else {
            return;
        };
        if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&pixels), width as u32, height as u32) {
            let _ = ctx.put_image_data(&img, 0.0, 0.0);
        }
    });
    view! { <canvas node_ref=canvas class=format!("pixels {class}") style=style width=width height=height></canvas> }
}

/// `n` grey tiles of `h` x `w` (concatenated) laid out `cols` to a row, each pixel
/// a `scale` x `scale` block, 4 transparent pixels apart: (width, height, RGBA).
fn atlas(grey: &[u8], n: usize, h: usize, w: usize, scale: usize, cols: usize) -> (usize, usize, Vec<u8>) {
    const GAP: usize = 4;
    let cols = cols.min(n).max(1);
    let rows = n.div_ceil(cols);
    let (tw, th) = (w * scale, h * scale);
    let (aw, ah) = (cols * (tw + GAP) - GAP, rows * (th + GAP) - GAP);
    let mut out = vec![0u8; aw * ah * 4];
    for t in 0..n {
        let (x0, y0) = ((t % cols) * (tw + GAP), (t / cols) * (th + GAP));
        for y in 0..th {
            for x in 0..tw {
                let g = grey[t * h * w + (y / scale) * w + x / scale];
                let o = ((y0 + y) * aw + x0 + x) * 4;
                out[o..o + 4].copy_from_slice(&[g, g, g, 255]);
            }
        }
    }
    (aw, ah, out)
}

/// Scales values to 0-255: min..max, or symmetric around zero for weights.
fn to_grey(values: &[f32], symmetric: bool) -> Vec<u8> {
    let (lo, hi) = if symmetric {
        let m = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        (-m, m)
    } else {
        (
            values.iter().copied().fold(f32::INFINITY, f32::min).min(0.0),
            values.iter().copied().fold(0.0f32, f32::max).max(1e-6),
        )
    };
    values.iter().map(|v| (((v - lo) / (hi - lo)) * 255.0).clamp(0.0, 255.0) as u8).collect()
}

#[component]
pub fn ConfusionMatrix() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let page = expect_context::<PageState>();
    // The task's words: digits, or target tokens at positions of sequences.
    let tokens = {
        let editor = expect_context::<super::Editor>();
        move || editor.spec.with(|s| s.input.is_tokens())
    };
    let cell_title = move |c: u32, a: usize, p: usize| match tokens() {
        false => format!("{} {a} predicted as {p}", crate::error::count_of(c as usize, "digit")),
        true => {
            format!("{} whose target token {a} was predicted as {p}", crate::error::count_of(c as usize, "position"))
        }
    };
    let cells = move || {
        view_state.confusion.get().map(|m| {
            let max_off = m.iter().enumerate().flat_map(|(a, row)| row.iter().enumerate().filter(move |(p, _)| *p != a).map(|(_, &c)| c)).max().unwrap_or(0).max(1);
            let max_diag = (0..m.len()).map(|i| m[i][i]).max().unwrap_or(0).max(1);
            let header = (0..m.len()).map(|p| view! { <th>{p}</th> }).collect_view();
            let rows = m
                .iter()
                .enumerate()
                .map(|(a, row)| {
                    let tds = row
                        .iter()
                        .enumerate()
                        .map(|(p, &c)| {
                            let strength = if a == p { c as f32 / max_diag as f32 } else { c as f32 / max_off as f32 };
                            let style = if a == p { format!("--w: {:.2}", strength) } else { format!("--e: {:.2}", strength) };
                            view! {
                                <td data-testid="confusion-cell" class:diag=a == p class:empty=c == 0 style=style title=cell_title(c, a, p)
                                    on:click=move |_| client::send(&Command::Examples { actual: a, predicted: p })>{c}</td>
                            }
                        })
                        .collect_view();
                    view! { <tr><th>{a}</th>{tds}</tr> }
                })
                .collect_view();
            view! {
                <table class="confusion" data-testid="confusion-matrix">
                    <tr><th class="corner">"true ↓ / predicted →"</th>{header}</tr>
                    {rows}
                </table>
            }
        })
    };
    let examples = move || {
        view_state.examples.get().map(|(a, p, images, sequences)| {
            let title = match (tokens(), images.is_empty() && sequences.is_empty()) {
                (false, true) => format!("No test digit {a} was predicted as {p}."),
                (false, false) => format!("Test digits {a} predicted as {p}:"),
                (true, true) => format!("No position whose target token is {a} was predicted as {p}."),
                (true, false) => format!("Test sequences where target token {a} was predicted as {p} (that position marked):"),
            };
            view! {
                <p class="hint" data-testid="confusion-examples-title">{title}</p>
                <div class="examples" data-testid="confusion-examples">
                    {images.into_iter().map(|im| view! { <GreyImage width=28 height=28 pixels=im class="digit-thumb"/> }).collect_view()}
                </div>
                <Show when={let any = !sequences.is_empty(); move || any}>
                    <table class="example-sequences" data-testid="confusion-sequences">
                        <tr><th>"input"</th><th>"target"</th><th>"predicted"</th></tr>
                        {sequences.iter().map(|s| {
                            let cells = |values: &[usize], mark: bool| values.iter().enumerate().map(|(t, v)| {
                                let wrong = mark && s.predicted.get(t) != s.targets.get(t);
                                view! { <span class="tok" class:picked=t == s.position class:wrong=wrong>{*v}</span> }
                            }).collect_view();
                            view! {
                                <tr data-testid="confusion-sequence">
                                    <td>{cells(&s.tokens, false)}</td>
                                    <td>{cells(&s.targets, false)}</td>
                                    <td>{cells(&s.predicted, true)}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </table>
                </Show>
            }
        })
    };
    view! {
        <div class="confusion-view" class:folded=move || !page.is_open(Panel::Confusion)>
            <h3><Fold panel=Panel::Confusion/>"Confusion matrix"</h3>
            <div class="fold-body">
                {move || cells().map(|v| v.into_any()).unwrap_or_else(|| view! { <p class="hint">{move || format!("Appears after the first evaluation (every 100 steps, on pause, and at the end). Click a cell to see its {}.", if tokens() { "sequences" } else { "digits" })}</p> }.into_any())}
                {move || view_state.confusion.with(Option::is_some).then(|| {
                    let tokens = expect_context::<super::Editor>().spec.with(|s| s.input.is_tokens());
                    let on = super::chart::evaluated_on(view_state.eval_samples.get(), &view_state.data.get(), tokens);
                    view! { <p class="hint" data-testid="confusion-samples">{format!("The last evaluation, {on}.")}</p> }
                })}
                {examples}
            </div>
        </div>
    }
}

/// Asks the worker again every `every` training steps while `active`, so a view
/// follows training live.
pub(super) fn refresh_live(active: Memo<bool>, every: usize, request: impl Fn() + 'static) {
    let view_state = expect_context::<TrainView>();
    Effect::new(move |prev: Option<usize>| {
        let steps = view_state.losses.with(|l| l.len());
        // The first step shows the view at once; then every `every` steps.
        let bucket = if steps == 0 { usize::MAX } else { steps.div_ceil(every) };
        if active.get() && steps > 0 && prev != Some(bucket) {
            request();
        }
        bucket
    });
}

/// The "Test example [n] Show" control of a panel.
#[component]
pub(super) fn ExamplePicker(
    index: RwSignal<usize>,
    label: &'static str,
    testid: &'static str,
    request: Callback<()>,
) -> impl IntoView {
    view! {
        <span>
            <label class="inline">{label}
                <input type="number" min="0" data-testid=format!("{testid}-index") prop:value=move || index.get().to_string()
                    on:change=move |ev| { index.set(event_target_value(&ev).trim().parse::<usize>().unwrap_or(0)); request.run(()); }/>
            </label>
            <button data-testid=format!("{testid}-button") on:click=move |_| request.run(())>"Show"</button>
        </span>
    }
}

/// A convolution's filters and its feature maps (the first's, or another
/// chosen) for a chosen test digit, live during training.
#[component]
pub fn FilterView() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let editor = expect_context::<super::Editor>();
    let page = expect_context::<PageState>();
    let index = page.example;
    let has_conv = Memo::new(move |_| {
        editor.spec.with(|s| s.layers.iter().any(|l| l.role() == crate::nn::layers::Role::Convolution))
    });
    // The Conv2D layers of the stack, and the one shown (`None`: the first).
    let convs = Memo::new(move |_| {
        editor.spec.with(|s| {
            s.layers
                .iter()
                .enumerate()
                .filter(|(_, l)| l.role() == crate::nn::layers::Role::Convolution)
                .map(|(i, l)| (i, l.param_text("filters")))
                .collect::<Vec<_>>()
        })
    });
    let chosen = RwSignal::new(None::<usize>);
    // A stack changed under the choice: back to the first convolution.
    Effect::new(move |_| {
        if chosen.get_untracked().is_some_and(|c| convs.with(|cs| !cs.iter().any(|x| x.0 == c))) {
            chosen.set(None);
        }
    });
    let inspect =
        move || client::send(&Command::Inspect { index: index.get_untracked(), layer: chosen.get_untracked() });
    refresh_live(has_conv, 25, inspect);
    let content = move || {
        view_state.inspection.get().map(|ins| {
            // Each set of tiles is one canvas (an atlas), so a live refresh redraws two
            // canvases instead of re-creating one per filter and map.
            let filters = if ins.filter_shape.len() == 4 {
                let [f, c, kh, kw] = [ins.filter_shape[0], ins.filter_shape[1], ins.filter_shape[2], ins.filter_shape[3]];
                // One tile per filter: the mean over input channels.
                let tiles: Vec<f32> = (0..f).flat_map(|fi| (0..kh * kw).map(move |k| (fi, k))).map(|(fi, k)| (0..c).map(|ci| ins.filters[(fi * c + ci) * kh * kw + k]).sum::<f32>() / c as f32).collect();
                let (aw, ah, rgba) = atlas(&to_grey(&tiles, true), f, kh, kw, 12, 16);
                view! {
                    <p class="hint">{format!("{f} filters of layer {} Conv2D ({kh}x{kw}, averaged over its {c} input channels); grey is 0, white positive, black negative", ins.layer)}</p>
                    <div class="tiles" data-testid="filters" data-tiles=f><RgbaImage width=aw height=ah pixels=rgba class="atlas"/></div>
                }
                .into_any()
            } else {
                view! { <p class="hint">"This model has no Conv2D layer: nothing to show."</p> }.into_any()
            };
            let maps = if ins.map_shape.len() == 3 {
                let [c, h, w] = [ins.map_shape[0], ins.map_shape[1], ins.map_shape[2]];
                let grey: Vec<u8> = (0..c).flat_map(|ci| to_grey(&ins.maps[ci * h * w..(ci + 1) * h * w], false)).collect();
                let scale = (56 / h.max(w)).max(1);
                let (aw, ah, rgba) = atlas(&grey, c, h, w, scale, (560 / (w * scale + 4)).max(1));
                view! {
                    <p class="hint">{format!("Its {c} feature maps for test digit {} (a {})", ins.index, ins.label)}</p>
                    <div class="tiles" data-testid="feature-maps" data-tiles=c><RgbaImage width=aw height=ah pixels=rgba class="atlas"/></div>
                }
                .into_any()
            } else {
                ().into_any()
            };
            view! {
                <div class="inspect-digit"><GreyImage width=28 height=28 pixels=ins.image.clone() class="digit-big"/></div>
                {filters}
                {maps}
            }
        })
    };
    view! {
        <Show when=move || has_conv.get()>
            <section class="panel inspect" class:folded=move || !page.is_open(Panel::Filters)>
                <div class="chart-head">
                    <h2><Fold panel=Panel::Filters/>"Filters and feature maps"</h2>
                    <span>
                        <Show when=move || convs.with(|c| c.len() > 1)>
                            <label class="inline">"Layer "
                                <select data-testid="inspect-layer" on:change=move |ev| {
                                    chosen.set(event_target_value(&ev).parse().ok());
                                    inspect();
                                }>
                                    {move || convs.get().into_iter().map(|(i, filters)| view! {
                                        <option value=i.to_string() selected=move || chosen.get().or_else(|| convs.with(|c| c.first().map(|c| c.0))) == Some(i)>{format!("{i} Conv2D ({filters} filters)")}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                        </Show>
                        <ExamplePicker index label="Test digit " testid="inspect" request=Callback::new(move |_| inspect())/>
                    </span>
                </div>
                <div class="fold-body">
                    {move || content().map(|v| v.into_any()).unwrap_or_else(|| view! { <p class="hint">"Press Show to see what a convolution looks for, and what it sees in a test digit; the view follows training."</p> }.into_any())}
                </div>
            </section>
        </Show>
    }
}
