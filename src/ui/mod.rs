//! The page (Leptos, client-side): the model builder, the training panel and the
//! live views. A thin layer: it edits a `ModelSpec` and talks to the training
//! worker in `worker` messages; the engine does everything else.

mod builder;
mod chart;
mod client;
mod draw;
mod files;
mod sequence;
mod share;
mod views;

use leptos::prelude::*;

use crate::nn::ModelSpec;
use crate::worker::protocol::Event;

const STORAGE_KEY: &str = "layerlab.spec.v1";

/// The model being edited, with undo and redo stacks of whole specs.
#[derive(Clone, Copy)]
pub struct Editor {
    pub spec: RwSignal<ModelSpec>,
    undo: RwSignal<Vec<ModelSpec>>,
    redo: RwSignal<Vec<ModelSpec>>,
    /// Undo stops here (a lesson: Undo stays inside it, and the model from before
    /// the lesson comes back once the lesson is left).
    floor: RwSignal<usize>,
}

impl Editor {
    fn new(spec: ModelSpec) -> Self {
        Editor {
            spec: RwSignal::new(spec),
            undo: RwSignal::new(vec![]),
            redo: RwSignal::new(vec![]),
            floor: RwSignal::new(0),
        }
    }

    /// Applies an edit as one undoable step (no step if nothing changed).
    pub fn edit(&self, f: impl FnOnce(&mut ModelSpec)) {
        let old = self.spec.get_untracked();
        let mut new = old.clone();
        f(&mut new);
        if new != old {
            self.undo.update(|u| u.push(old));
            self.redo.set(vec![]);
            self.spec.set(new);
        }
    }

    pub fn undo(&self) {
        if !self.can_undo() {
            return;
        }
        if let Some(prev) = self.undo.try_update(|u| u.pop()).flatten() {
            let cur = self.spec.get_untracked();
            self.redo.update(|r| r.push(cur));
            self.spec.set(prev);
        }
    }

    pub fn redo(&self) {
        if let Some(next) = self.redo.try_update(|r| r.pop()).flatten() {
            let cur = self.spec.get_untracked();
            self.undo.update(|u| u.push(cur));
            self.spec.set(next);
        }
    }

    pub fn can_undo(&self) -> bool {
        self.undo.with(|u| u.len()) > self.floor.get()
    }

    /// Undo goes no further back than now (`false`: as far as there is history).
    pub fn hold_history(&self, hold: bool) {
        self.floor.set(if hold { self.undo.with_untracked(|u| u.len()) } else { 0 });
    }
    pub fn can_redo(&self) -> bool {
        !self.redo.with(|r| r.is_empty())
    }
}

/// A confusion cell's examples: actual class, predicted class, the digits'
/// images, or the test sequences of a sequence task.
pub type ConfusionExamples = (usize, usize, Vec<Vec<u8>>, Vec<crate::worker::protocol::ExampleSequence>);

/// What the worker has reported, for the training panel and the charts.
#[derive(Clone, Copy)]
pub struct TrainView {
    pub losses: RwSignal<Vec<f32>>,
    pub evals: RwSignal<Vec<(usize, f32)>>,
    /// The test loss at each evaluation, `(step, loss)`: the loss chart shows
    /// it beside the training loss (overfitting is the gap between them).
    pub test_losses: RwSignal<Vec<(usize, f32)>>,
    /// Per-sequence accuracy of the last evaluation (sequence tasks).
    pub sequence_accuracy: RwSignal<Option<f32>>,
    /// Training speed, samples/s, over the last `SPEED_WINDOW_S` seconds of
    /// training (0 before any).
    pub samples_per_s: RwSignal<f32>,
    /// The slices it is averaged over: (samples, seconds of training).
    speed_window: StoredValue<std::collections::VecDeque<(f32, f32)>>,
    /// Test examples of the last evaluation (1,000 while training, all at the end).
    pub eval_samples: RwSignal<usize>,
    pub elapsed_s: RwSignal<f32>,
    pub epoch: RwSignal<usize>,
    pub epoch_progress: RwSignal<f32>,
    /// Every step of the run's epochs (0 before the first report).
    pub total_steps: RwSignal<usize>,
    pub running: RwSignal<bool>,
    /// The steps of a run that has trained all its epochs (`Event::Finished`):
    /// Train then adds an epoch and goes on.
    pub complete: RwSignal<Option<usize>>,
    pub data: RwSignal<DataState>,
    /// What the run says in the status line (finished, diverged, continued).
    pub message: RwSignal<Option<String>>,
    /// What the page's last request could not do (`Event::Error`, a failed
    /// export): in the status line until a later request succeeds or the
    /// user trains (the successful answers `apply` names), not for good.
    pub problem: RwSignal<Option<String>>,
    pub prediction: RwSignal<Option<Vec<f32>>>,
    pub confusion: RwSignal<Option<Vec<Vec<u32>>>>,
    pub examples: RwSignal<Option<ConfusionExamples>>,
    pub inspection: RwSignal<Option<views::Inspection>>,
    pub attention: RwSignal<Option<sequence::Attention>>,
    pub hidden: RwSignal<Option<sequence::Hidden>>,
    /// Where the worker trains: (`webgpu` or `cpu`, the adapter's name).
    pub backend: RwSignal<(String, String)>,
    /// Why training is not where the selector says, or that it moved to the CPU.
    pub backend_notice: RwSignal<Option<String>>,
    /// What Auto measured for the current model (WebGPU and CPU samples/s).
    pub backend_speeds: RwSignal<Option<crate::worker::protocol::Speeds>>,
    /// Why Auto found no WebGPU (shown on demand).
    pub backend_unavailable: RwSignal<Option<String>>,
    /// What the worker's CPU kernels run on (`Event::Backend`'s `cpu`).
    pub cpu_kernels: RwSignal<String>,
    /// The training workers: asked for, taking part now, why fewer (`Event::Workers`).
    pub workers: RwSignal<Option<(usize, usize, Option<String>)>>,
    /// What splitting steps across the workers gave for this run: workers,
    /// samples/s in one and split, workers used (`Event::WorkerSpeeds`).
    pub worker_speeds: RwSignal<Option<(usize, f32, f32, usize)>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DataState {
    Loading { loaded: usize, total: usize },
    Ready { train: usize, test: usize },
    Failed(String),
}

impl TrainView {
    fn new() -> Self {
        TrainView {
            losses: RwSignal::new(vec![]),
            evals: RwSignal::new(vec![]),
            test_losses: RwSignal::new(vec![]),
            sequence_accuracy: RwSignal::new(None),
            samples_per_s: RwSignal::new(0.0),
            speed_window: StoredValue::new(Default::default()),
            eval_samples: RwSignal::new(0),
            elapsed_s: RwSignal::new(0.0),
            epoch: RwSignal::new(0),
            epoch_progress: RwSignal::new(0.0),
            total_steps: RwSignal::new(0),
            running: RwSignal::new(false),
            complete: RwSignal::new(None),
            data: RwSignal::new(DataState::Loading { loaded: 0, total: 4 }),
            message: RwSignal::new(None),
            problem: RwSignal::new(None),
            prediction: RwSignal::new(None),
            confusion: RwSignal::new(None),
            examples: RwSignal::new(None),
            inspection: RwSignal::new(None),
            attention: RwSignal::new(None),
            hidden: RwSignal::new(None),
            backend: RwSignal::new(("cpu".into(), String::new())),
            backend_notice: RwSignal::new(None),
            backend_speeds: RwSignal::new(None),
            backend_unavailable: RwSignal::new(None),
            cpu_kernels: RwSignal::new(String::new()),
            workers: RwSignal::new(None),
            worker_speeds: RwSignal::new(None),
        }
    }

    /// The user starts something (Train, Step, Reset, a preset): what the
    /// page said of earlier moments goes: the run's message, a failed
    /// request, and the notice on top (a file opened, a run restored).
    pub fn moved_on(&self, notice: RwSignal<Option<share::Notice>>) {
        self.message.set(None);
        self.problem.set(None);
        notice.set(None);
    }

    fn clear(&self) {
        self.losses.set(vec![]);
        self.evals.set(vec![]);
        self.test_losses.set(vec![]);
        self.sequence_accuracy.set(None);
        self.samples_per_s.set(0.0);
        self.speed_window.set_value(Default::default());
        self.eval_samples.set(0);
        self.elapsed_s.set(0.0);
        self.epoch.set(0);
        self.epoch_progress.set(0.0);
        self.total_steps.set(0);
        self.message.set(None);
        self.problem.set(None);
        self.complete.set(None);
        self.confusion.set(None);
        self.examples.set(None);
        self.attention.set(None);
        self.hidden.set(None);
        self.inspection.set(None);
        self.worker_speeds.set(None);
    }

    fn apply(&self, event: Event) {
        // A request that succeeds puts an earlier one's failure behind it.
        if matches!(
            event,
            Event::Metrics { .. }
                | Event::Evaluation { .. }
                | Event::AttentionMaps { .. }
                | Event::HiddenStates { .. }
                | Event::Inspection { .. }
                | Event::Examples { .. }
                | Event::Prediction { .. }
                | Event::Weights { .. }
                | Event::WeightsLoaded { .. }
                | Event::Resumed { .. }
                | Event::Exported { .. }
        ) {
            self.problem.set(None);
        }
        match event {
            Event::Ready | Event::RunStarted { .. } => {}
            Event::DataProgress { loaded, total } => self.data.set(DataState::Loading { loaded, total }),
            Event::DataLoaded { train, test } => self.data.set(DataState::Ready { train, test }),
            Event::Metrics {
                first_step,
                losses,
                samples_per_s,
                train_s,
                epoch,
                epoch_progress,
                elapsed_s,
                total_steps,
                ..
            } => {
                self.total_steps.set(total_steps);
                // After a move to the CPU the run may go back a few steps.
                self.losses.update(|l| {
                    l.truncate(first_step.saturating_sub(1));
                    l.extend(losses)
                });
                // Averaged over the last seconds of training, so one short
                // slice (a Step, the slice that ends a run) does not swing it.
                let rate = self.speed_window.try_update_value(|w| {
                    w.push_back((samples_per_s * train_s, train_s));
                    while w.len() > 1 && w.iter().skip(1).map(|s| s.1).sum::<f32>() >= SPEED_WINDOW_S {
                        w.pop_front();
                    }
                    let (samples, secs) = w.iter().fold((0.0, 0.0), |a, s| (a.0 + s.0, a.1 + s.1));
                    if secs > 0.0 {
                        samples / secs
                    } else {
                        samples_per_s
                    }
                });
                self.samples_per_s.set(rate.unwrap_or(samples_per_s));
                self.elapsed_s.set(elapsed_s);
                self.epoch.set(epoch);
                self.epoch_progress.set(epoch_progress);
            }
            Event::Evaluation { step, accuracy, loss, confusion, sequence_accuracy, samples } => {
                self.test_losses.update(|t| {
                    if t.last().is_some_and(|l| l.0 == step) {
                        t.pop();
                    }
                    t.push((step, loss))
                });
                self.eval_samples.set(samples);
                // Keep the run in this browser (a reload goes on with it).
                if step > 0 {
                    client::send(&crate::worker::protocol::Command::GetCheckpoint);
                }
                // A continued run is evaluated again at the step it was kept.
                self.evals.update(|e| {
                    if e.last().is_some_and(|l| l.0 == step) {
                        e.pop();
                    }
                    e.push((step, accuracy))
                });
                self.sequence_accuracy.set(sequence_accuracy);
                self.confusion.set(Some(confusion));
            }
            Event::Weights { purpose, spec, safetensors, .. } => files::on_weights(&purpose, spec, &safetensors),
            Event::Exported { format, files } => files::on_exported(format, files, self.problem),
            // Kept in this browser with the worker's history of the run
            // (a reload, or Undo back to its model, goes on with it).
            Event::Checkpoint { spec, steps, checkpoint, history, .. } => {
                files::on_checkpoint(spec, steps, &checkpoint, *history)
            }
            Event::Resumed { steps, history } => {
                self.clear();
                self.losses.set(history.losses);
                self.evals.set(history.evals);
                self.test_losses.set(history.test_losses);
                self.elapsed_s.set(history.elapsed_s);
                self.message.set(Some(format!(
                    "Continued the run kept in this browser: {} trained; Train goes on from there.",
                    crate::error::count_of(steps, "step")
                )));
            }
            Event::WeightsLoaded { tensors } => {
                self.clear();
                self.message
                    .set(Some(format!("Loaded the weights ({tensors} tensors); training continues from them.")));
            }
            Event::AttentionMaps { maps, tokens, targets, image, label, grid, .. } => {
                self.attention.set(Some(sequence::Attention { maps, tokens, targets, image, label, grid }))
            }
            Event::HiddenStates { layers, tokens, image, label, .. } => {
                self.hidden.set(Some(sequence::Hidden { layers, tokens, image, label }))
            }
            Event::Examples { actual, predicted, images, sequences, .. } => {
                self.examples.set(Some((actual, predicted, images, sequences)))
            }
            Event::Inspection { index, layer, label, image, filter_shape, filters, map_shape, maps } => self
                .inspection
                .set(Some(views::Inspection { index, layer, label, image, filter_shape, filters, map_shape, maps })),
            Event::Running { running } => {
                // Training again: what the run said of its last moment
                // (continued, complete) gives way to its progress.
                if running {
                    self.message.set(None);
                }
                self.running.set(running)
            }
            Event::Finished { steps } => self.complete.set(Some(steps)),
            Event::Diverged { message } | Event::NotLearning { message } => {
                // The worker has paused: training does not go on by itself.
                self.running.set(false);
                self.message.set(Some(message));
            }
            Event::Prediction { probs } => self.prediction.set(Some(probs)),
            Event::DataFailed { message } => self.data.set(DataState::Failed(message)),
            Event::Error { message } => self.problem.set(Some(message)),
            Event::Backend { active, adapter, notice, speeds, unavailable, cpu, .. } => {
                self.backend.set((active, adapter));
                self.cpu_kernels.set(cpu);
                self.backend_notice.set(notice);
                self.backend_speeds.set(speeds);
                self.backend_unavailable.set(unavailable);
            }
            Event::Workers { wanted, running, note } => self.workers.set(Some((wanted, running, note))),
            Event::WorkerSpeeds { workers, one, split, using } => {
                self.worker_speeds.set(Some((workers, one, split, using)))
            }
        }
    }
}

/// Seconds of training the speed shown is averaged over.
const SPEED_WINDOW_S: f32 = 3.0;

/// This browser's localStorage (`None` where the page may not use it).
pub(super) fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// The spec stored by an earlier visit, or the Seed CNN; a stored spec that cannot
/// be read is reported, not fatal.
fn initial_spec() -> (ModelSpec, Option<String>) {
    let default = crate::preset("seed-cnn").expect("preset");
    let stored = local_storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
    match stored {
        None => (default, None),
        Some(text) => match ModelSpec::from_json(&text) {
            Ok(spec) => (spec, None),
            Err(e) => (
                default,
                Some(format!("The model saved in this browser could not be read ({e}); starting from the Seed CNN.")),
            ),
        },
    }
}

/// Set once the first visit's introduction was closed.
const INTRO_KEY: &str = "layerlab.intro-seen";

/// The first visit's introduction: what the page is and the three things to
/// do, until it is closed (remembered in this browser). A lesson shows its
/// own banner instead.
#[component]
fn Intro() -> impl IntoView {
    let page = expect_context::<share::PageState>();
    let seen = RwSignal::new(local_storage().and_then(|s| s.get_item(INTRO_KEY).ok().flatten()).is_some());
    let close = move |_| {
        seen.set(true);
        if let Some(s) = local_storage() {
            let _ = s.set_item(INTRO_KEY, "1");
        }
    };
    view! {
        <Show when=move || !seen.get() && page.lesson.with(Option::is_none)>
            <section class="intro" data-testid="intro" aria-label="Welcome">
                <p><strong>"Welcome to layerlab."</strong>" A real neural network, trained in this browser: nothing is installed or sent anywhere."</p>
                <ol>
                    <li>"Choose a preset, or drag layers from the palette into the network; each card shows the shape it makes."</li>
                    <li>"Press Train: the loss falls and the test accuracy rises as the model learns MNIST digits (or a sequence task)."</li>
                    <li>"Look inside: draw a digit for the model to guess, click the confusion matrix, see the filters, the attention or the memory."</li>
                </ol>
                <button data-testid="intro-close" on:click=close>"Got it"</button>
            </section>
        </Show>
    }
}

/// Where the theme chosen in this browser is kept (`dark` or `light`).
const THEME_KEY: &str = "layerlab.theme";

/// Whether the theme chosen in this browser is dark; `None` when none was chosen.
fn stored_theme() -> Option<bool> {
    match local_storage()?.get_item(THEME_KEY).ok().flatten()?.as_str() {
        "dark" => Some(true),
        "light" => Some(false),
        _ => None,
    }
}

fn store_theme(dark: bool) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(THEME_KEY, if dark { "dark" } else { "light" });
    }
}

/// The system's setting (`prefers-color-scheme: dark`).
fn system_prefers_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

fn store_spec(spec: &ModelSpec) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(STORAGE_KEY, &spec.to_json_pretty());
    }
}

/// The page's fields whose text was refused, by what they are (`layer 2
/// Dense`, `Batch size`), with the message. Training waits until they are
/// fixed: a run on the last valid value would not be what the field shows.
#[derive(Clone, Copy)]
pub struct FieldErrors(RwSignal<std::collections::BTreeMap<String, String>>);

impl FieldErrors {
    /// Notes (or, with `None`, clears) the error of `field`.
    pub fn set(&self, field: &str, error: Option<String>) {
        let same = self.0.with_untracked(|m| m.get(field) == error.as_ref());
        if same {
            return;
        }
        self.0.update(|m| match error {
            Some(e) => {
                m.insert(field.to_string(), e);
            }
            None => {
                m.remove(field);
            }
        });
    }

    /// Keeps `field`'s entry in step with `error` for as long as the calling
    /// component lives (a card or a field).
    pub fn follow(self, field: String, error: RwSignal<Option<String>>) {
        Effect::new({
            let field = field.clone();
            move |_| self.set(&field, error.get())
        });
        on_cleanup(move || self.set(&field, None));
    }

    /// The first field in error and its message.
    pub fn first(&self) -> Option<(String, String)> {
        self.0.with(|m| m.iter().next().map(|(f, e)| (f.clone(), e.clone())))
    }
}

#[component]
pub fn App() -> impl IntoView {
    let (spec, restore_error) = initial_spec();
    let editor = Editor::new(spec);
    let view_state = TrainView::new();
    let page = share::PageState::new();
    provide_context(editor);
    provide_context(view_state);
    provide_context(page);
    let pending = files::PendingWeights(StoredValue::new(None));
    provide_context(pending);
    // A share link in the address replaces the model (undoably) before the worker
    // gets it; its message (or why it could not be opened) goes in the notice.
    let link_notice = share::open_link_in_address(editor, page);
    let notice = RwSignal::new(match (restore_error, link_notice) {
        (Some(a), Some(b)) => Some(share::Notice::problem(format!("{a} {}", b.text))),
        (a, b) => a.map(share::Notice::problem).or(b),
    });
    provide_context(notice);
    provide_context(FieldErrors(RwSignal::new(Default::default())));
    client::start(view_state);
    // A lesson may name a file for the class to open (the teacher's weights).
    let open_lesson_file = move || {
        let link = page.lesson.with_untracked(|l| l.as_ref().map(|l| l.open.clone()).unwrap_or_default());
        if !link.is_empty() {
            wasm_bindgen_futures::spawn_local(async move {
                let n = files::open_link(link, editor, pending, page.model_locked()).await;
                notice.set(Some(n));
            });
        }
    };
    open_lesson_file();
    // A link pasted into the address bar of an open page changes only the fragment.
    let hash = window_event_listener(leptos::ev::hashchange, move |_| {
        if let Some(n) = share::open_link_in_address(editor, page) {
            notice.set(Some(n));
            open_lesson_file();
        }
    });
    on_cleanup(move || hash.remove());

    // Keep the work, and keep the worker's model in step with the editor.
    let last_sent = StoredValue::new(None::<ModelSpec>);
    Effect::new(move |_| {
        let spec = editor.spec.get();
        store_spec(&spec);
        if spec.infer().is_err() {
            return;
        }
        let prev = last_sent.get_value();
        // The learning rate and the epochs change during a run; anything
        // else makes a new one.
        let run_goes_on = prev.as_ref().is_some_and(|p| {
            let mut q = p.clone();
            q.training.optimizer.set_lr(spec.training.optimizer.lr());
            q.training.epochs = spec.training.epochs;
            q == spec
        });
        if run_goes_on {
            let prev = prev.expect("compared");
            let (lr, epochs) = (spec.training.optimizer.lr(), spec.training.epochs);
            if prev.training.optimizer.lr() != lr {
                client::send(&crate::worker::protocol::Command::SetLr { lr });
            }
            if prev.training.epochs != epochs {
                client::send(&crate::worker::protocol::Command::SetEpochs { epochs });
                // More epochs: the run is not complete; fewer: the worker says so at the next Train.
                view_state.complete.set(None);
            }
        } else {
            // A trained run left for another model is kept with its model,
            // and the page says once that Undo brings it back.
            let steps = view_state.losses.with_untracked(|l| l.len());
            let left = prev.as_ref().is_some_and(|p| files::store::run_key(p) != files::store::run_key(&spec));
            if left
                && steps > 0
                && page.lesson.with_untracked(Option::is_none)
                && notice.with_untracked(|n| n.is_none())
            {
                notice.set(Some(share::Notice {
                    text: format!(
                        "Changing the model starts training over; Undo brings back the trained model ({}).",
                        crate::error::count_of(steps, "step")
                    ),
                    problem: false,
                }));
            }
            view_state.clear();
            // The run left is sent back first and kept with its model (`NewRun`).
            client::send_new_run(&crate::worker::protocol::Command::SetSpec { spec: spec.clone() }, true);
            // Weights opened together with this model follow it; else a run
            // this browser kept of the model goes on (not in a lesson, which
            // starts fresh). At start a notice says so.
            if let Some(w) = pending.0.try_update_value(|p| p.take()).flatten() {
                client::send(&crate::worker::protocol::Command::LoadWeights { safetensors: w });
            } else if page.lesson.with_untracked(Option::is_none) {
                files::resume_kept(editor, view_state, spec.clone(), prev.is_none().then_some(notice));
            }
        }
        last_sent.set_value(Some(spec));
    });

    // Model and weights files dropped anywhere on the page are opened.
    let drop_files = move |ev: web_sys::DragEvent| {
        // A lesson that fixes the model opens only its weights (`open_items`).
        let files: Vec<web_sys::File> = ev
            .data_transfer()
            .and_then(|d| d.files())
            .map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
            .unwrap_or_default();
        if files.is_empty() {
            return;
        }
        ev.prevent_default();
        wasm_bindgen_futures::spawn_local(async move {
            let n = files::open_files(files, editor, pending, page.model_locked()).await;
            notice.set(Some(n));
        });
    };
    let drag_over = move |ev: web_sys::DragEvent| {
        // Allow dropping files (layer drags have their own targets).
        if ev.data_transfer().is_some_and(|d| d.types().includes(&"Files".into(), 0)) {
            ev.prevent_default();
        }
    };

    // Undo / redo from anywhere on the page, except inside a text field (its own undo).
    let keys = window_event_listener(leptos::ev::keydown, move |ev: web_sys::KeyboardEvent| {
        let target_is_input =
            ev.target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlInputElement>(t).ok()).is_some();
        let target_is_input = target_is_input
            || ev
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlTextAreaElement>(t).ok())
                .is_some();
        if !(ev.ctrl_key() || ev.meta_key()) || target_is_input || page.model_locked() {
            return;
        }
        // Ctrl+Z undoes; Ctrl+Shift+Z and Ctrl+Y (Windows' redo) redo.
        match (ev.key().to_ascii_lowercase().as_str(), ev.shift_key()) {
            ("z", false) => editor.undo(),
            ("z", true) | ("y", false) => editor.redo(),
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || keys.remove());
    // The theme: the one chosen in this browser, else the system's.
    let dark = RwSignal::new(stored_theme().unwrap_or_else(system_prefers_dark));

    view! {
        <div class="app" class:dark=move || dark.get() class:presenter=move || page.presenter.get() on:drop=drop_files on:dragover=drag_over>
            <header class="topbar">
                <h1>"layerlab"</h1>
                <span class="tagline">"Build a network. Train it. Watch it learn."</span>
                <files::FileButtons/>
                <share::ShareButton/>
                <button class="presenter-toggle" data-testid="presenter-toggle" aria-pressed=move || page.presenter.get().to_string()
                    title="Larger type and charts, for a projector" on:click=move |_| page.set_presenter(!page.presenter.get_untracked())>
                    {move || if page.presenter.get() { "Presenter: on" } else { "Presenter" }}
                </button>
                <button class="theme" data-testid="theme-toggle" on:click=move |_| {
                    dark.update(|d| *d = !*d);
                    store_theme(dark.get_untracked());
                }>
                    {move || if dark.get() { "Light theme" } else { "Dark theme" }}
                </button>
            </header>
            <share::LessonBanner/>
            <Intro/>
            {move || notice.get().map(|n| view! {
                <div class="notice" class:info=!n.problem data-testid="notice" role=if n.problem { "alert" } else { "status" }>{n.text}
                    <button on:click=move |_| notice.set(None)>"Dismiss"</button>
                </div>
            })}
            <main class="columns" class:no-palette=move || page.model_locked()>
                <Show when=move || !page.model_locked()>
                    <builder::Palette/>
                </Show>
                <div class="middle">
                    <builder::Stack/>
                    <sequence::AttentionView/>
                    <sequence::HiddenView/>
                    <views::FilterView/>
                </div>
                <chart::TrainingPanel/>
            </main>
        </div>
    }
}

pub use chart::{loss_axis, LossAxis};
pub use client::{deliver, receive, shown_run, DRAW_EVERY_MS};

/// Mounts the app on the page's body.
pub fn mount() {
    leptos::mount::mount_to_body(App);
}
