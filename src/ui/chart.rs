//! The training panel: settings, the Train / Pause / Step / Reset controls, the
//! status line, and the live loss chart (SVG).

use leptos::prelude::*;

use super::share::{Fold, PageState};
use super::{client, DataState, Editor, TrainView};
use crate::data::DatasetSpec;
use crate::error::format_count;
use crate::io::share::Panel;
use crate::nn::spec::{OptimizerSpec, MAX_BATCH_SIZE, MAX_EPOCHS};
use crate::worker::protocol::{BackendChoice, Command, MAX_WORKERS};

const CHART_W: f32 = 560.0;
const CHART_H: f32 = 240.0;
/// At most this many points are drawn; longer runs are averaged into buckets.
const MAX_POINTS: usize = 600;

/// The loss series reduced to at most `MAX_POINTS` (step, loss) pairs.
fn bucketed(losses: &[f32]) -> Vec<(f32, f32)> {
    let per = losses.len().div_ceil(MAX_POINTS).max(1);
    // Means in f64: an f32 sum of losses near 1e37 overflows.
    losses
        .chunks(per)
        .enumerate()
        .map(|(i, c)| {
            (((i * per) + c.len()) as f32, (c.iter().map(|&l| l as f64).sum::<f64>() / c.len() as f64) as f32)
        })
        .collect()
}

/// Exponential moving average, as TensorBoard's smoothing.
fn smoothed(points: &[(f32, f32)], weight: f32) -> Vec<(f32, f32)> {
    let mut last = None;
    points
        .iter()
        .map(|&(x, y)| {
            let v = match last {
                None => y,
                Some(l) => weight * l + (1.0 - weight) * y,
            };
            last = Some(v);
            (x, v)
        })
        .collect()
}

/// The mean as text, for tests that read the chart ("" when empty).
fn mean_of(v: &[f32]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        ((v.iter().map(|&l| l as f64).sum::<f64>() / v.len() as f64) as f32).to_string()
    }
}

/// The loss chart's vertical range. On a linear scale it runs from 0 to the
/// largest loss that is not an outlier (more than 5 times the 90th
/// percentile), so one early spike (a loss of 29 million at step 3) cannot
/// flatten the rest of the curve; outliers are drawn on the top edge, marked,
/// and counted (`clipped`, up to `max`). On a log scale every loss fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossAxis {
    pub lo: f32,
    pub hi: f32,
    pub clipped: usize,
    pub max: f32,
}

/// The axis for the finite losses in `values` (see `LossAxis`).
pub fn loss_axis(values: &[f32], log: bool) -> LossAxis {
    let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return LossAxis { lo: 0.0, hi: 1.0, clipped: 0, max: 1.0 };
    }
    let max = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min = finite.iter().copied().fold(f32::INFINITY, f32::min);
    if log {
        return LossAxis { lo: min, hi: max, clipped: 0, max };
    }
    let mut sorted = finite.clone();
    sorted.sort_by(f32::total_cmp);
    let limit = 5.0 * sorted[(sorted.len() - 1) * 9 / 10];
    let hi = finite.iter().copied().filter(|&v| v <= limit).fold(f32::NEG_INFINITY, f32::max);
    let hi = if hi.is_finite() { hi } else { max }.max(1e-6);
    let clipped = finite.iter().filter(|&&v| v > hi).count();
    LossAxis { lo: min.min(0.0), hi, clipped, max }
}

/// The chart's y coordinate of `v` on `axis` (clipped to the chart).
fn chart_y(v: f32, axis: &LossAxis, log: bool) -> f32 {
    let tf = |v: f32| if log { v.max(1e-6).log10() } else { v };
    let (lo, hi) = (tf(axis.lo), tf(axis.hi));
    let span = (hi - lo).max(1e-6);
    CHART_H - ((tf(v) - lo) / span).clamp(0.0, 1.0) * CHART_H
}

fn polyline(points: &[(f32, f32)], max_x: f32, axis: &LossAxis, log: bool) -> String {
    points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", x / max_x.max(1.0) * CHART_W, chart_y(y, axis, log)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A loss on the axis: 3 decimals below 10, grouped thousands above 1,000.
fn axis_figure(v: f32) -> String {
    if v.abs() >= 1000.0 {
        crate::error::format_whole(v as f64)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A count typed into a field: a whole number, refused like any count past its
/// maximum where it would not even fit the page's `usize` (32 bits in wasm32).
fn count(field: &str, text: &str, max: usize) -> Result<usize, String> {
    let v: u128 = text.parse().map_err(|_| format!("training: {field} {text:?} is not a whole number"))?;
    usize::try_from(v).map_err(|_| {
        format!(
            "training: {field} must be between 1 and {}, got {}",
            crate::error::format_count(max as u64),
            crate::error::format_count(v)
        )
    })
}

/// The step-axis labels: start, middle and end (none before a step).
fn step_ticks(steps: usize) -> Vec<String> {
    match steps {
        0 => vec![],
        n => [0, n / 2, n].into_iter().map(|s| format!("step {}", crate::error::format_count(s as u64))).collect(),
    }
}

/// A time to go, roughly, as people say it: `40 s`, `3 min`, `1 h 5 min`.
pub fn time_left(seconds: f32) -> String {
    let s = seconds.max(1.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// What a training setting does, in one line (its tooltip).
fn setting_help(label: &str) -> &'static str {
    match label {
        "Optimizer" => "How the gradient moves the weights: Adam adapts each weight's step; SGD takes plain steps, with momentum.",
        "Learning rate" => "How far each step moves the weights. Too high and the loss jumps or diverges; too low and it crawls. Adam: 0.001 is usual.",
        "Batch size" => "Examples per step; the gradient is their average. 64 is usual.",
        "Epochs" => "Passes over the whole training set.",
        "Seed" => "Starts the random weights, the data order and dropout: the same seed gives the same run.",
        _ => "",
    }
}

/// The message under a field (`field`, its label) whose text was refused;
/// training waits for it (`FieldErrors`). When `value` (what the field
/// shows) changes from outside the field (a preset, Undo, a file), the text
/// refused before is gone, and its message too.
#[component]
fn FieldError(
    error: RwSignal<Option<String>>,
    testid: &'static str,
    field: &'static str,
    value: Memo<String>,
) -> impl IntoView {
    Effect::new(move |_| {
        value.track();
        error.set(None);
    });
    expect_context::<super::FieldErrors>().follow(format!("the {field} field"), error);
    view! {
        <Show when=move || error.get().is_some()>
            <span class="field-error" role="alert" data-testid=format!("{testid}-error")>{move || error.get()}</span>
        </Show>
    }
}

#[component]
pub fn LossChart() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let log_scale = expect_context::<PageState>().log_scale;
    let series = Memo::new(move |_| view_state.losses.with(|l| bucketed(l)));
    // One computation per update, shared by both lines, the point count and the axis.
    let lines = Memo::new(move |_| {
        let raw = series.get();
        let n = view_state.losses.with(|l| l.len()) as f32;
        let log = log_scale.get();
        // The test losses share the axis, so that the gap between the two shows.
        let tests: Vec<(f32, f32)> = view_state.test_losses.with(|t| t.iter().map(|&(s, l)| (s as f32, l)).collect());
        let values: Vec<f32> = raw.iter().chain(&tests).map(|p| p.1).collect();
        let axis = loss_axis(&values, log);
        // Marks on the top edge where a loss is above the axis.
        let marks: Vec<f32> =
            raw.iter().filter(|p| p.1 > axis.hi && !log).map(|p| p.0 / n.max(1.0) * CHART_W).collect();
        let test_dots: String = tests
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("M{:.1} {:.1}h0.01", x / n.max(1.0) * CHART_W, chart_y(y, &axis, log)))
            .collect();
        (
            polyline(&raw, n, &axis, log),
            polyline(&smoothed(&raw, 0.9), n, &axis, log),
            raw.len(),
            axis,
            marks,
            test_dots,
        )
    });
    // Tick labels: the axis's top, middle and bottom; steps at the start, middle and end.
    let loss_ticks = move || {
        let (_, _, n, axis, ..) = lines.get();
        if n == 0 {
            return vec![];
        }
        let mid =
            if log_scale.get() { (axis.lo.max(1e-6) * axis.hi.max(1e-6)).sqrt() } else { (axis.lo + axis.hi) / 2.0 };
        [axis.hi, mid, axis.lo].into_iter().map(axis_figure).collect::<Vec<_>>()
    };
    let step_ticks = move || step_ticks(view_state.losses.with(|l| l.len()));
    view! {
        <div class="chart">
            <div class="chart-head">
                <h3>"Loss"</h3>
                <label class="toggle"><input type="checkbox" data-testid="log-scale" prop:checked=move || log_scale.get() on:change=move |ev| log_scale.set(event_target_checked(&ev))/>" log scale"</label>
            </div>
            <div class="plot">
            <div class="ticks-y" data-testid="loss-ticks">{move || loss_ticks().into_iter().map(|t| view! { <span>{t}</span> }).collect_view()}</div>
            <svg data-testid="loss-chart" data-points=move || lines.get().2.to_string()
                data-test-points=move || view_state.test_losses.with(|t| t.len()).to_string()
                data-first-loss=move || view_state.losses.with(|l| mean_of(&l[..l.len().min(10)]))
                data-last-loss=move || view_state.losses.with(|l| mean_of(&l[l.len().saturating_sub(10)..])) viewBox=format!("0 0 {CHART_W} {CHART_H}") preserveAspectRatio="none" role="img" aria-label="training loss per step">
                <path class="grid" d=format!("M0 {h} H{CHART_W} M0 {m} H{CHART_W}", h = CHART_H / 4.0, m = CHART_H * 3.0 / 4.0) />
                <line class="grid" x1="0" x2=CHART_W y1=CHART_H / 2.0 y2=CHART_H / 2.0 />
                <polyline class="raw" points=move || lines.get().0 />
                <polyline class="smooth" points=move || lines.get().1 />
                <path class="test-dots" d=move || lines.get().5 />
                {move || lines.get().4.into_iter().map(|x| view! { <circle class="clipped" cx=format!("{x:.1}") cy="3" r="3"/> }).collect::<Vec<_>>()}
            </svg>
            <div class="ticks-x">{move || step_ticks().into_iter().map(|t| view! { <span>{t}</span> }).collect_view()}</div>
            </div>
            <div class="legend"><span class="key smooth-key"></span>"training loss (smoothed)"<span class="key test-key"></span>"test loss, at each evaluation"</div>
            <div class="axis" data-testid="loss-axis" data-clipped=move || lines.get().3.clipped.to_string()>{move || {
                let (_, _, n, axis, ..) = lines.get();
                if n == 0 {
                    return "no steps yet".to_string();
                }
                let steps = view_state.losses.with(|l| l.len());
                let mut text = format!("steps 0–{steps} · loss {}–{}", axis_figure(axis.lo), axis_figure(axis.hi));
                if axis.clipped > 0 {
                    let s = if axis.clipped == 1 { "" } else { "s" };
                    text += &format!(" · {} point{s} above the axis (up to {}), marked at the top", crate::error::format_count(axis.clipped as u64), axis_figure(axis.max));
                }
                text
            }}</div>
        </div>
    }
}

/// Test accuracy at each evaluation, 0-100 %.
#[component]
pub fn AccuracyChart() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let page = expect_context::<PageState>();
    const H: f32 = 90.0;
    let xy = Memo::new(move |_| {
        let evals = view_state.evals.get();
        let max_step = view_state.losses.with(|l| l.len()).max(evals.last().map_or(1, |e| e.0)).max(1) as f32;
        evals.iter().map(|&(step, acc)| (step as f32 / max_step * CHART_W, H - acc * H)).collect::<Vec<_>>()
    });
    let points = move || xy.with(|p| p.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" "));
    let max_step =
        move || view_state.losses.with(|l| l.len()).max(view_state.evals.with(|e| e.last().map_or(0, |e| e.0)));
    // A dot per evaluation, so that the first one shows before there is a line.
    let dots = move || xy.with(|p| p.iter().map(|(x, y)| format!("M{x:.1} {y:.1}h0.01")).collect::<String>());
    view! {
        <div class="chart" class:folded=move || !page.is_open(Panel::Accuracy)>
            <h3><Fold panel=Panel::Accuracy/>"Test accuracy"</h3>
            <div class="plot fold-body">
            <div class="ticks-y" data-testid="accuracy-ticks"><span>"100 %"</span><span>"50 %"</span><span>"0 %"</span></div>
            <svg class="accuracy" data-testid="accuracy-chart" data-points=move || view_state.evals.with(|e| e.len()).to_string() viewBox=format!("0 0 {CHART_W} {H}") preserveAspectRatio="none" role="img" aria-label="test accuracy per evaluation">
                <line class="grid" x1="0" x2=CHART_W y1=H / 2.0 y2=H / 2.0 />
                <polyline class="smooth" points=points />
                <path class="dots" d=dots />
            </svg>
            <div class="ticks-x">{move || step_ticks(max_step()).into_iter().map(|t| view! { <span>{t}</span> }).collect_view()}</div>
            </div>
        </div>
    }
}

/// The training speed: samples/s while training; while paused (or once the
/// run is complete) the last rate, said to be the last; a dash before any.
fn speed_text(samples_per_s: f32, running: bool, complete: bool) -> String {
    let rate = format_count(samples_per_s.round() as u64);
    match (samples_per_s > 0.0, running, complete) {
        (false, ..) => "–".to_string(),
        (true, true, _) => format!("{rate} samples/s"),
        (true, false, true) => format!("done (last {rate} samples/s)"),
        (true, false, false) => format!("paused (last {rate} samples/s)"),
    }
}

/// What the test accuracy was measured on: "on 1,000 test digits" while
/// training (a quick look every 100 steps and on pause), "on all 10,000 test
/// digits" at the end; sequences for a sequence task (per position).
pub(super) fn evaluated_on(samples: usize, data: &DataState, tokens: bool) -> String {
    if samples == 0 {
        return String::new();
    }
    let all = matches!(data, DataState::Ready { test, .. } if *test == samples) && !tokens;
    let what = if tokens { "test sequences, per position" } else { "test digits" };
    format!("on {}{} {what}", if all { "all " } else { "" }, format_count(samples as u64))
}

/// The data set and training settings in one line, for a lesson that fixes them.
fn settings_summary(s: &crate::nn::ModelSpec) -> String {
    let data = match &s.input {
        DatasetSpec::Mnist { .. } => "MNIST".to_string(),
        other => format!("{} task (length {}, vocabulary {})", other.name(), other.shape()[0], other.classes()),
    };
    let opt = match s.training.optimizer {
        OptimizerSpec::Adam { .. } => "Adam",
        OptimizerSpec::SGD { .. } => "SGD with momentum",
    };
    let t = &s.training;
    format!(
        "{data} · {opt}, learning rate {} · batch {} · {} epoch{} · seed {}",
        crate::error::format_lr(t.optimizer.lr()),
        t.batch_size,
        t.epochs,
        if t.epochs == 1 { "" } else { "s" },
        t.seed
    )
}

#[component]
pub fn TrainingPanel() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let view_state = expect_context::<TrainView>();
    let notice = expect_context::<RwSignal<Option<super::share::Notice>>>();
    let page = expect_context::<PageState>();
    let invalid = Memo::new(move |_| editor.spec.with(|s| s.infer().err().map(|e| e.to_string())));
    let data_ready = move || matches!(view_state.data.get(), DataState::Ready { .. });
    let fields = expect_context::<super::FieldErrors>();
    let cannot_train = move || invalid.get().is_some() || !data_ready() || fields.first().is_some();
    let complete = move || view_state.complete.get().is_some();
    // A complete run trains on by one more epoch, unless a lesson fixes the settings.
    let can_train_more = move || !page.settings_locked() && editor.spec.with(|s| s.training.epochs) < MAX_EPOCHS;
    let status = move || {
        if let Some(e) = invalid.get() {
            return format!("Fix the model to train: {e}");
        }
        if let Some((field, e)) = fields.first() {
            return format!("Fix {field} to train: {e}");
        }
        match view_state.data.get() {
            DataState::Loading { loaded, total } => return format!("Loading MNIST… ({loaded}/{total} files)"),
            DataState::Failed(e) => return format!("The MNIST files could not be loaded: {e}"),
            DataState::Ready { .. } => {}
        }
        if let Some(m) = view_state.problem.get().or_else(|| view_state.message.get()) {
            return m;
        }
        let steps = view_state.losses.with(|l| l.len());
        if let (Some(done), false) = (view_state.complete.get(), view_state.running.get()) {
            let epochs = editor.spec.with(|s| s.training.epochs);
            let next =
                if page.settings_locked() || epochs >= MAX_EPOCHS { "" } else { " Train goes on for one more epoch." };
            return format!(
                "Training complete: {} in {}.{next}",
                crate::error::count_of(done, "step"),
                crate::error::count_of(epochs, "epoch")
            );
        }
        if view_state.running.get() {
            let (total, epochs) = (view_state.total_steps.get(), editor.spec.with(|s| s.training.epochs));
            let batch = editor.spec.with(|s| s.training.batch_size) as f32;
            let per_s = view_state.samples_per_s.get() / batch.max(1.0);
            let left = if total > steps && per_s > 0.0 {
                format!(" · about {} left", time_left((total - steps) as f32 / per_s))
            } else {
                String::new()
            };
            match total {
                0 => format!("Training · epoch {} of {epochs}", view_state.epoch.get() + 1),
                _ => format!(
                    "Training · step {} of {} · epoch {} of {epochs}{left}",
                    crate::error::format_count(steps as u64),
                    crate::error::format_count(total as u64),
                    view_state.epoch.get() + 1,
                ),
            }
        } else if steps > 0 {
            format!("Paused after {}", crate::error::count_of(steps, "step"))
        } else {
            "Ready to train".to_string()
        }
    };
    let training = move || editor.spec.with(|s| s.training.clone());
    // A training setting: the same checks as a spec from a file or a link
    // (`TrainingSpec::validate`), with the message under the field.
    let number_field =
        move |label: &'static str,
              testid: &'static str,
              get: fn(&crate::nn::spec::TrainingSpec) -> String,
              set: fn(&mut crate::nn::spec::TrainingSpec, &str) -> Result<(), String>| {
            let error = RwSignal::new(None::<String>);
            let value = Memo::new(move |_| get(&training()));
            view! {
                <label class="field" class:invalid=move || error.get().is_some() title=setting_help(label)>
                    {label}
                    <input type="text" inputmode="decimal" data-testid=testid prop:value=move || get(&training())
                        on:change=move |ev| {
                            let text = event_target_value(&ev);
                            let mut t = training();
                            let checked = set(&mut t, text.trim()).and_then(|()| t.validate().map_err(|e| e.message));
                            match checked {
                                Ok(()) => {
                                    error.set(None);
                                    editor.edit(|s| s.training = t);
                                }
                                Err(m) => error.set(Some(m)),
                            }
                        }/>
                    <FieldError error testid field=label value/>
                </label>
            }
        };
    // seq_len or vocab of a sequence task, checked as the spec checks it.
    let task_field = move |label: &'static str, testid: &'static str, vocab: bool| {
        let error = RwSignal::new(None::<String>);
        let get = move || {
            editor
                .spec
                .with(|s| if vocab { s.input.classes() } else { s.input.shape().first().copied().unwrap_or(0) })
                .to_string()
        };
        let value = Memo::new(move |_| get());
        view! {
            <label class="field" class:invalid=move || error.get().is_some()>
                {label}
                <input type="text" inputmode="numeric" data-testid=testid prop:value=get
                    on:change=move |ev| {
                        let text = event_target_value(&ev);
                        let Ok(v) = text.trim().parse::<usize>() else {
                            error.set(Some(format!("{label}: {:?} is not a whole number", text.trim())));
                            return;
                        };
                        let mut input = editor.spec.with_untracked(|s| s.input.clone());
                        match &mut input {
                            DatasetSpec::Reverse { seq_len, vocab: voc } | DatasetSpec::Sort { seq_len, vocab: voc } | DatasetSpec::Copy { seq_len, vocab: voc } => {
                                if vocab { *voc = v } else { *seq_len = v }
                            }
                            DatasetSpec::Mnist { .. } => {}
                        }
                        match input.validate() {
                            Ok(_) => {
                                error.set(None);
                                editor.edit(|s| s.input = input);
                            }
                            Err(e) => error.set(Some(e.message)),
                        }
                    }/>
                <FieldError error testid field=label value/>
            </label>
        }
    };
    view! {
        <aside class="train panel">
            <h2>"Training"</h2>
            <Show when=move || page.settings_locked()>
                <p class="settings-summary" data-testid="settings-summary">{move || settings_summary(&editor.spec.get())}</p>
            </Show>
            <div class="settings" class:hidden=move || page.settings_locked()>
                <label class="field">
                    "Dataset"
                    <select data-testid="dataset-select" on:change=move |ev| {
                        let (seq_len, vocab) = editor.spec.with_untracked(|s| if s.input.is_tokens() { (s.input.shape()[0], s.input.classes()) } else { (8, 10) });
                        let input = match event_target_value(&ev).as_str() {
                            "reverse" => DatasetSpec::Reverse { seq_len, vocab },
                            "sort" => DatasetSpec::Sort { seq_len, vocab },
                            "copy" => DatasetSpec::Copy { seq_len, vocab },
                            _ => DatasetSpec::Mnist { shape: vec![1, 28, 28] },
                        };
                        editor.edit(|s| s.input = input);
                    }>
                        {[("mnist", "MNIST (60,000 digits)"), ("reverse", "Reverse a sequence"), ("sort", "Sort a sequence"), ("copy", "Copy a sequence")].into_iter().map(|(v, label)| view! {
                            <option value=v selected=move || editor.spec.with(|s| s.input.name() == v)>{label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <Show when=move || editor.spec.with(|s| s.input.is_tokens())>
                    {task_field("Sequence length", "seq-len-input", false)}
                    {task_field("Vocabulary", "vocab-input", true)}
                </Show>
                <label class="field" title=setting_help("Optimizer")>
                    "Optimizer"
                    <select data-testid="optimizer-select" on:change=move |ev| {
                        let lr = editor.spec.with_untracked(|s| s.training.optimizer.lr());
                        let opt = if event_target_value(&ev) == "SGD" { OptimizerSpec::SGD { lr, momentum: 0.9 } } else { OptimizerSpec::Adam { lr, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 } };
                        editor.edit(|s| s.training.optimizer = opt);
                    }>
                        <option value="Adam" selected=move || matches!(training().optimizer, OptimizerSpec::Adam { .. })>"Adam"</option>
                        <option value="SGD" selected=move || matches!(training().optimizer, OptimizerSpec::SGD { .. })>"SGD (momentum 0.9)"</option>
                    </select>
                </label>
                {number_field("Learning rate", "lr-input", |t| t.optimizer.lr().to_string(), |t, v| v.parse::<f32>().map(|x| t.optimizer.set_lr(x)).map_err(|_| format!("training: the learning rate {v:?} is not a number")))}
                {number_field("Batch size", "batch-input", |t| t.batch_size.to_string(), |t, v| count("batch_size", v, MAX_BATCH_SIZE).map(|x| t.batch_size = x))}
                {number_field("Epochs", "epochs-input", |t| t.epochs.to_string(), |t, v| count("epochs", v, MAX_EPOCHS).map(|x| t.epochs = x))}
                {number_field("Seed", "seed-input", |t| t.seed.to_string(), |t, v| v.parse::<u64>().map(|x| t.seed = x).map_err(|_| format!("training: the seed {v:?} is not a whole number from 0 to {}", u64::MAX)))}
            </div>
            <BackendSelector/>
            <div class="controls">
                <button class="primary" data-testid="train-button" disabled=move || cannot_train() || view_state.running.get() || (complete() && !can_train_more())
                    title=move || invalid.get().or_else(|| fields.first().map(|(f, e)| format!("{f}: {e}"))).unwrap_or_default()
                    on:click=move |_| {
                        view_state.moved_on(notice);
                        if complete() {
                            // One more epoch for the run, then on with it.
                            let epochs = editor.spec.with_untracked(|s| s.training.epochs) + 1;
                            client::send(&Command::SetEpochs { epochs });
                            editor.edit(|s| s.training.epochs = epochs);
                            view_state.complete.set(None);
                        }
                        client::send(&Command::Train)
                    }>{move || if complete() && can_train_more() { "Train 1 more epoch" } else { "Train" }}</button>
                <button data-testid="pause-button" disabled=move || !view_state.running.get() on:click=move |_| client::send(&Command::Pause)>"Pause"</button>
                <button data-testid="step-button" disabled=move || cannot_train() || view_state.running.get() || complete() on:click=move |_| { view_state.moved_on(notice); client::send(&Command::Step) }>"Step"</button>
                <button data-testid="reset-button" disabled=move || invalid.get().is_some() on:click=move |_| {
                    view_state.moved_on(notice);
                    view_state.clear();
                    // Starting over: the trained weights kept in this browser go too.
                    let spec = editor.spec.get_untracked();
                    wasm_bindgen_futures::spawn_local(async move { let _ = super::files::store::clear(&spec).await; });
                    client::send_new_run(&Command::SetSpec { spec: editor.spec.get_untracked() }, false);
                }>"Reset"</button>
            </div>
            <p class="status" data-testid="status" role="status">{status}</p>
            <div class="metrics">
                <div><span class="label">"Test accuracy"</span><span class="value" data-testid="accuracy-value">{move || view_state.evals.with(|e| e.last().map(|(_, a)| format!("{:.2} %", a * 100.0)).unwrap_or_else(|| "–".into()))}</span>
                    <span class="note" data-testid="accuracy-samples">{move || evaluated_on(view_state.eval_samples.get(), &view_state.data.get(), editor.spec.with(|s| s.input.is_tokens()))}</span></div>
                <Show when=move || view_state.sequence_accuracy.get().is_some()>
                    <div><span class="label">"Sequences right"</span><span class="value" data-testid="sequence-accuracy-value">{move || view_state.sequence_accuracy.get().map(|a| format!("{:.1} %", a * 100.0)).unwrap_or_default()}</span></div>
                </Show>
                <div><span class="label">"Last loss"</span><span class="value" data-testid="loss-value">{move || view_state.losses.with(|l| l.last().map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into()))}</span></div>
                <div><span class="label">"Speed"</span><span class="value" data-testid="speed-value">{move || speed_text(view_state.samples_per_s.get(), view_state.running.get(), view_state.complete.get().is_some())}</span></div>
                <div><span class="label">"Time"</span><span class="value">{move || format!("{:.1} s", view_state.elapsed_s.get())}</span></div>
            </div>
            <LossChart/>
            <AccuracyChart/>
            <Show when=move || editor.spec.with(|s| !s.input.is_tokens())>
                <super::draw::DrawPanel/>
            </Show>
            <super::views::ConfusionMatrix/>
        </aside>
    }
}

/// The backend the page asked for, remembered in this browser.
const BACKEND_KEY: &str = "layerlab.backend";

fn stored_backend() -> BackendChoice {
    let stored = super::local_storage().and_then(|s| s.get_item(BACKEND_KEY).ok().flatten());
    match stored.as_deref() {
        Some("webgpu") => BackendChoice::Webgpu,
        Some("cpu") => BackendChoice::Cpu,
        _ => BackendChoice::Auto,
    }
}

/// The value of `name` in the page's query (`?gpu=lose:3`): the tests'
/// simulations (`SetBackend`'s and `SetWorkers`' `simulate`).
fn query_value(name: &str) -> Option<String> {
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    let key = format!("{name}=");
    search.trim_start_matches('?').split('&').find_map(|kv| kv.strip_prefix(key.as_str())).map(str::to_string)
}

/// For tests: `?gpu=unavailable` acts as if there were no adapter, `?gpu=lose:N`
/// loses the GPU device after N steps.
fn simulated_gpu() -> Option<String> {
    query_value("gpu")
}

/// Tells the worker where to train.
pub fn send_backend(choice: BackendChoice) {
    client::send(&Command::SetBackend { backend: choice, simulate: simulated_gpu() });
}

/// Training workers remembered in this browser (`SetWorkers`).
const WORKERS_KEY: &str = "layerlab.workers";

/// The device's cores as the browser reports them, at most `MAX_WORKERS`.
fn cores() -> usize {
    let n = web_sys::window().map_or(1.0, |w| w.navigator().hardware_concurrency());
    (n as usize).clamp(1, MAX_WORKERS)
}

/// The workers asked for: remembered, or every core.
fn stored_workers() -> usize {
    super::local_storage()
        .and_then(|s| s.get_item(WORKERS_KEY).ok().flatten())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(cores(), |n| n.clamp(1, cores()))
}

/// Tells the worker how many workers train on the CPU. For tests,
/// `?workers=unavailable` acts as a browser whose workers cannot start workers.
fn send_workers(workers: usize) {
    client::send(&Command::SetWorkers { workers, simulate: query_value("workers") });
}

/// How many Web Workers share a CPU step (1 to the device's cores), and how
/// many take part now.
#[component]
fn WorkersSelector() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let choice = RwSignal::new(stored_workers());
    send_workers(choice.get_untracked());
    let status = move || match (view_state.workers.get(), view_state.worker_speeds.get()) {
        (None, _) => String::new(),
        (Some((_, running, Some(note))), _) => format!("{running} training · {note}"),
        (Some((wanted, running, None)), _) if running < wanted => {
            format!("{running} of {wanted} ready, the others starting")
        }
        (Some((1, _, None)), _) if cores() == 1 => "1 (the browser reports one core)".to_string(),
        (Some((1, _, None)), _) => "1: every step in one worker".to_string(),
        (Some((_, running, None)), Some((workers, one, split, using))) if workers == running => {
            let using = if using > 1 { format!("{workers} share each batch") } else { "each step in one".to_string() };
            let (one, split) = (format_count(one.round() as u64), format_count(split.round() as u64));
            format!("{workers} workers {split} samples/s, 1: {one}: {using}")
        }
        (Some((_, running, None)), _) => {
            format!("{running} ready; the first steps measure whether sharing each batch is faster")
        }
    };
    let limited = move || cores() == 1;
    view! {
        <label class="field" title="On the CPU, each batch can be split across this many Web Workers (one per core at most): their gradients are summed, so the run is the same as in one worker, to float rounding (with Dropout, each part draws its own masks: as valid, not the same). The first steps of a run measure whether that is faster for the model (a small one trains faster in one).">
            "Workers (CPU)"
            <select data-testid="workers-select" disabled=limited on:change=move |ev| {
                let n = event_target_value(&ev).parse::<usize>().unwrap_or(1).clamp(1, cores());
                choice.set(n);
                if let Some(s) = super::local_storage() {
                    let _ = s.set_item(WORKERS_KEY, &n.to_string());
                }
                send_workers(n);
            }>
                {(1..=cores()).map(|n| view! {
                    <option value=n.to_string() selected=move || choice.get() == n>{n.to_string()}</option>
                }).collect_view()}
            </select>
        </label>
        <span class="backend-active" data-testid="workers-active"
            data-running=move || view_state.workers.get().map_or(0, |w| w.1)>{status}</span>
    }
}

/// Auto / WebGPU / CPU, with the adapter in use and why training is not where
/// the selector says (no adapter, or the GPU failed and training moved to the CPU).
#[component]
pub fn BackendSelector() -> impl IntoView {
    let view_state = expect_context::<TrainView>();
    let page = expect_context::<PageState>();
    let choice = RwSignal::new(stored_backend());
    send_backend(choice.get_untracked());
    let active = move || {
        let (active, adapter) = view_state.backend.get();
        match (active.as_str(), view_state.backend_speeds.get()) {
            ("webgpu", Some(speeds)) => format!("{} · {adapter}", speeds.describe("WebGPU")),
            (_, Some(speeds)) => speeds.describe("WebGPU"),
            ("webgpu", None) => format!("WebGPU · {adapter}"),
            _ if !adapter.is_empty() => {
                format!("CPU · Auto measures WebGPU ({adapter}) against it when training starts")
            }
            _ if view_state.backend_unavailable.with(Option::is_some) => {
                "CPU · WebGPU is not available in this browser".to_string()
            }
            _ => match view_state.cpu_kernels.get() {
                kernels if kernels.is_empty() => "CPU".to_string(),
                kernels => format!("CPU · {kernels}"),
            },
        }
    };
    view! {
        <div class="backend" class:hidden=move || page.backend_locked()>
            <label class="field">
                "Backend"
                <select data-testid="backend-select" on:change=move |ev| {
                    let c = match event_target_value(&ev).as_str() {
                        "webgpu" => BackendChoice::Webgpu,
                        "cpu" => BackendChoice::Cpu,
                        _ => BackendChoice::Auto,
                    };
                    choice.set(c);
                    if let Some(s) = super::local_storage() {
                        let _ = s.set_item(BACKEND_KEY, match c { BackendChoice::Webgpu => "webgpu", BackendChoice::Cpu => "cpu", BackendChoice::Auto => "auto" });
                    }
                    send_backend(c);
                }>
                    {[(BackendChoice::Auto, "auto", "Auto (the faster, measured)"), (BackendChoice::Webgpu, "webgpu", "WebGPU"), (BackendChoice::Cpu, "cpu", "CPU")].into_iter().map(|(c, v, label)| view! {
                        <option value=v selected=move || choice.get() == c>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            <span class="backend-active" data-testid="backend-active" data-active=move || view_state.backend.get().0 data-cpu=move || view_state.cpu_kernels.get()>{active}</span>
            {move || view_state.backend_unavailable.get().map(|why| view! {
                <details class="backend-why" data-testid="backend-why"><summary>"Why?"</summary>{why}</details>
            })}
            <WorkersSelector/>
        </div>
        {move || view_state.backend_notice.get().map(|n| view! { <p class="backend-notice" data-testid="backend-notice" role="alert">{n}</p> })}
    }
}
