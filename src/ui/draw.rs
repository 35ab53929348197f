//! Draw a digit: a canvas for mouse, pen or touch, and the current model's
//! prediction, updated while drawing.

use leptos::html::Canvas;
use leptos::prelude::*;

use super::share::Fold;
use crate::io::share::Panel;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, PointerEvent};

use super::{client, TrainView};
use crate::data::drawing::mnist_from_drawing;
use crate::worker::protocol::Command;

const SIZE: u32 = 224;
/// At most one prediction request per this many milliseconds while drawing.
const PREDICT_EVERY_MS: f64 = 80.0;

fn context(canvas: &web_sys::HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

fn clear(canvas: &web_sys::HtmlCanvasElement) {
    if let Some(ctx) = context(canvas) {
        ctx.set_fill_style_str("#000");
        ctx.fill_rect(0.0, 0.0, SIZE as f64, SIZE as f64);
    }
}

/// The drawing as MNIST pixels, sent to the worker for a prediction.
fn request_prediction(canvas: &web_sys::HtmlCanvasElement) {
    let Some(ctx) = context(canvas) else { return };
    let Ok(data) = ctx.get_image_data(0.0, 0.0, SIZE as f64, SIZE as f64) else { return };
    let rgba = data.data();
    let ink: Vec<f32> = rgba.chunks(4).map(|p| p[0] as f32 / 255.0).collect();
    let pixels = mnist_from_drawing(&ink, SIZE as usize, SIZE as usize);
    if pixels.iter().any(|&v| v > 0.0) {
        client::send(&Command::Predict { pixels });
    }
}

fn canvas_point(canvas: &web_sys::HtmlCanvasElement, ev: &PointerEvent) -> (f64, f64) {
    let scale = SIZE as f64 / (canvas.client_width().max(1) as f64);
    (ev.offset_x() as f64 * scale, ev.offset_y() as f64 * scale)
}

#[component]
pub fn DrawPanel() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let page = expect_context::<super::share::PageState>();
    let canvas_ref = NodeRef::<Canvas>::new();
    let drawing = StoredValue::new(false);
    let last_request = StoredValue::new(0.0f64);
    Effect::new(move |_| {
        if let Some(c) = canvas_ref.get() {
            clear(&c);
        }
    });
    let down = move |ev: PointerEvent| {
        let Some(c) = canvas_ref.get() else { return };
        let _ = c.set_pointer_capture(ev.pointer_id());
        drawing.set_value(true);
        if let Some(ctx) = context(&c) {
            let (x, y) = canvas_point(&c, &ev);
            ctx.set_stroke_style_str("#fff");
            ctx.set_line_width(18.0);
            ctx.set_line_cap("round");
            ctx.set_line_join("round");
            ctx.begin_path();
            ctx.move_to(x, y);
            ctx.line_to(x + 0.1, y + 0.1);
            ctx.stroke();
        }
    };
    let moved = move |ev: PointerEvent| {
        if !drawing.get_value() {
            return;
        }
        let Some(c) = canvas_ref.get() else { return };
        if let Some(ctx) = context(&c) {
            let (x, y) = canvas_point(&c, &ev);
            ctx.line_to(x, y);
            ctx.stroke();
        }
        let now = js_sys::Date::now();
        if now - last_request.get_value() > PREDICT_EVERY_MS {
            last_request.set_value(now);
            request_prediction(&c);
        }
    };
    let up = move |_: PointerEvent| {
        if drawing.get_value() {
            drawing.set_value(false);
            if let Some(c) = canvas_ref.get() {
                request_prediction(&c);
            }
        }
    };
    let prediction = move || {
        view_state.prediction.get().map(|probs| {
            let best = crate::train::argmax(&probs);
            let bars = probs
                .iter()
                .enumerate()
                .map(|(digit, p)| {
                    view! {
                        <div class="bar" class:best=digit == best>
                            <span class="digit">{digit}</span>
                            <span class="fill" style=format!("width: {:.1}%", p * 100.0)></span>
                            <span class="pct">{format!("{:.0} %", p * 100.0)}</span>
                        </div>
                    }
                })
                .collect_view();
            view! {
                <p class="guess">"It looks like a " <strong data-testid="prediction-digit">{best}</strong> {format!(" ({:.0} %)", probs[best] * 100.0)}</p>
                <div class="bars">{bars}</div>
            }
        })
    };
    view! {
        <div class="draw" class:folded=move || !page.is_open(Panel::Draw)>
            <div class="chart-head">
                <h3><Fold panel=Panel::Draw/>"Draw a digit"</h3>
                <button class="fold-body" data-testid="clear-drawing" on:click=move |_| {
                    if let Some(c) = canvas_ref.get() {
                        clear(&c);
                    }
                    view_state.prediction.set(None);
                }>"Clear"</button>
            </div>
            <div class="draw-row fold-body">
                <canvas node_ref=canvas_ref data-testid="draw-canvas" width=SIZE height=SIZE
                    on:pointerdown=down on:pointermove=moved on:pointerup=up on:pointerleave=up></canvas>
                <div class="prediction" data-testid="prediction">
                    {move || prediction().map(|v| v.into_any()).unwrap_or_else(|| view! { <p class="hint">"Draw a digit with the mouse or a finger; the model's guess appears here."</p> }.into_any())}
                </div>
            </div>
        </div>
    }
}
