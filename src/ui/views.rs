//! Views into the model: the confusion matrix with example digits per cell, and
//! the first convolution's filters and feature maps for a chosen test digit.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::Clamped;
use web_sys::{CanvasRenderingContext2d, ImageData};

use super::{client, TrainView};
use crate::worker::Command;

/// What an `Inspection` event brought.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub index: usize,
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
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let Some(ctx) = c.get_context("2d").ok().flatten().and_then(|x| wasm_bindgen::JsCast::dyn_into::<CanvasRenderingContext2d>(x).ok()) else { return };
        let rgba: Vec<u8> = pixels.iter().flat_map(|&p| [p, p, p, 255]).collect();
        if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), width as u32, height as u32) {
            let _ = ctx.put_image_data(&img, 0.0, 0.0);
        }
    });
    view! { <canvas node_ref=canvas class=format!("pixels {class}") width=width height=height></canvas> }
}

/// Scales values to 0-255: min..max, or symmetric around zero for weights.
fn to_grey(values: &[f32], symmetric: bool) -> Vec<u8> {
    let (lo, hi) = if symmetric {
        let m = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        (-m, m)
    } else {
        (values.iter().copied().fold(f32::INFINITY, f32::min).min(0.0), values.iter().copied().fold(0.0f32, f32::max).max(1e-6))
    };
    values.iter().map(|v| (((v - lo) / (hi - lo)) * 255.0).clamp(0.0, 255.0) as u8).collect()
}

#[component]
pub fn ConfusionMatrix() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
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
                                <td data-testid="confusion-cell" class:diag=a == p class:empty=c == 0 style=style title=format!("{c} digits {a} predicted as {p}")
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
        view_state.examples.get().map(|(a, p, images)| {
            let title = if images.is_empty() { format!("No test digit {a} was predicted as {p}.") } else { format!("Test digits {a} predicted as {p}:") };
            view! {
                <p class="hint">{title}</p>
                <div class="examples" data-testid="confusion-examples">
                    {images.into_iter().map(|im| view! { <GreyImage width=28 height=28 pixels=im class="digit-thumb"/> }).collect_view()}
                </div>
            }
        })
    };
    view! {
        <div class="confusion-view">
            <h3>"Confusion matrix"</h3>
            {move || cells().map(|v| v.into_any()).unwrap_or_else(|| view! { <p class="hint">"Appears after the first evaluation (every 100 steps, on pause, and at the end). Click a cell to see its digits."</p> }.into_any())}
            {examples}
        </div>
    }
}

#[component]
pub fn FilterView() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let index = RwSignal::new(0usize);
    let inspect = move || client::send(&Command::Inspect { index: index.get_untracked() });
    let content = move || {
        view_state.inspection.get().map(|ins| {
            let filters = if ins.filter_shape.len() == 4 {
                let [f, c, kh, kw] = [ins.filter_shape[0], ins.filter_shape[1], ins.filter_shape[2], ins.filter_shape[3]];
                // One tile per filter: the mean over input channels.
                let tiles: Vec<Vec<f32>> = (0..f).map(|fi| (0..kh * kw).map(|k| (0..c).map(|ci| ins.filters[(fi * c + ci) * kh * kw + k]).sum::<f32>() / c as f32).collect()).collect();
                let all: Vec<f32> = tiles.concat();
                let grey = to_grey(&all, true);
                view! {
                    <p class="hint">{format!("{f} filters of the first Conv2D ({kh}x{kw}); grey is 0, white positive, black negative")}</p>
                    <div class="tiles" data-testid="filters">
                        {(0..f).map(|fi| view! { <GreyImage width=kw height=kh pixels=grey[fi * kh * kw..(fi + 1) * kh * kw].to_vec() class="filter"/> }).collect_view()}
                    </div>
                }
                .into_any()
            } else {
                view! { <p class="hint">"This model has no Conv2D layer: nothing to show."</p> }.into_any()
            };
            let maps = if ins.map_shape.len() == 3 {
                let [c, h, w] = [ins.map_shape[0], ins.map_shape[1], ins.map_shape[2]];
                view! {
                    <p class="hint">{format!("Its {c} feature maps for test digit {} (a {})", ins.index, ins.label)}</p>
                    <div class="tiles" data-testid="feature-maps">
                        {(0..c).map(|ci| view! { <GreyImage width=w height=h pixels=to_grey(&ins.maps[ci * h * w..(ci + 1) * h * w], false) class="map"/> }).collect_view()}
                    </div>
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
        <section class="panel inspect">
            <div class="chart-head">
                <h2>"Filters and feature maps"</h2>
                <span>
                    <label class="inline">"Test digit "
                        <input type="number" min="0" max="9999" data-testid="inspect-index" prop:value=move || index.get().to_string()
                            on:change=move |ev| { index.set(event_target_value(&ev).trim().parse::<usize>().unwrap_or(0).min(9999)); inspect(); }/>
                    </label>
                    <button data-testid="inspect-button" on:click=move |_| inspect()>"Show"</button>
                </span>
            </div>
            {move || content().map(|v| v.into_any()).unwrap_or_else(|| view! { <p class="hint">"Press Show to see what the first convolution looks for, and what it sees in a test digit."</p> }.into_any())}
        </section>
    }
}

/// Attention maps, per layer and head, for a chosen test example: rows are the
/// positions that look, columns the positions looked at.
#[component]
pub fn AttentionView() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let editor = expect_context::<super::Editor>();
    let index = RwSignal::new(0usize);
    let has_attention = Memo::new(move |_| {
        editor.spec.with(|s| s.layers.iter().any(|l| matches!(l, crate::nn::LayerSpec::MultiHeadAttention { .. } | crate::nn::LayerSpec::TransformerEncoder { .. })))
    });
    let request = move || client::send(&Command::Attention { index: index.get_untracked() });
    // Live: refresh the maps every 25 training steps while the model has attention.
    Effect::new(move |prev: Option<usize>| {
        let steps = view_state.losses.with(|l| l.len());
        let bucket = steps / 25;
        if has_attention.get() && steps > 0 && prev != Some(bucket) {
            request();
        }
        bucket
    });
    let content = move || {
        view_state.attention.get().map(|(maps, tokens, targets)| {
            maps.into_iter()
                .map(|m| {
                    let t = m.steps;
                    let heads = (0..m.heads)
                        .map(|h| {
                            let cells = &m.weights[h * t * t..(h + 1) * t * t];
                            let max = cells.iter().copied().fold(1e-6f32, f32::max);
                            let grey: Vec<u8> = cells.iter().map(|v| (v / max * 255.0) as u8).collect();
                            view! {
                                <figure class="head">
                                    <GreyImage width=t height=t pixels=grey class="attn"/>
                                    <figcaption>{format!("head {h}")}</figcaption>
                                </figure>
                            }
                        })
                        .collect_view();
                    view! { <div class="attn-layer"><h4>{format!("layer {}", m.layer)}</h4><div class="tiles">{heads}</div></div> }
                })
                .collect_view()
                .into_any()
                .pipe_tokens(tokens, targets)
        })
    };
    view! {
        <Show when=move || has_attention.get()>
            <section class="panel attention" data-testid="attention-panel">
                <div class="chart-head">
                    <h2>"Attention"</h2>
                    <span>
                        <label class="inline">"Test example "
                            <input type="number" min="0" data-testid="attention-index" prop:value=move || index.get().to_string()
                                on:change=move |ev| { index.set(event_target_value(&ev).trim().parse::<usize>().unwrap_or(0)); request(); }/>
                        </label>
                        <button data-testid="attention-button" on:click=move |_| request()>"Show"</button>
                    </span>
                </div>
                <p class="hint">"Each square: rows are positions that look, columns the positions they look at; white is the most attention. For images, positions are the 4x4 grid of patches, row by row."</p>
                <div data-testid="attention-maps">{content}</div>
            </section>
        </Show>
    }
}

/// Prepends the example's tokens and targets (sequence tasks) to a view.
trait PipeTokens {
    fn pipe_tokens(self, tokens: Vec<usize>, targets: Vec<usize>) -> AnyView;
}

impl PipeTokens for AnyView {
    fn pipe_tokens(self, tokens: Vec<usize>, targets: Vec<usize>) -> AnyView {
        if tokens.is_empty() {
            return self;
        }
        let fmt = |v: &[usize]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ");
        view! {
            <p class="tokens" data-testid="attention-tokens">"input: " <code>{fmt(&tokens)}</code> " → target: " <code>{fmt(&targets)}</code></p>
            {self}
        }
        .into_any()
    }
}
