//! The training worker: the message protocol between the page and the worker, and
//! `Session`, the worker's state machine (model, data, running or paused). Session
//! is plain Rust and tested natively; `web` wires it to a Web Worker.

#[cfg(target_arch = "wasm32")]
pub mod web;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::backend::Device;
use crate::data::{Data, Mnist};
use crate::error::Error;
use crate::nn::layers::Role;
use crate::nn::ModelSpec;
use crate::train::{Checkpoint, HostCheckpoint, Trainer};

/// Page -> worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd")]
pub enum Command {
    /// Fetch the data set files from `base_url` (the page's own address).
    LoadData {
        base_url: String,
    },
    /// Build a fresh model from `spec` (replaces any running training).
    SetSpec {
        spec: ModelSpec,
    },
    Train,
    Pause,
    Step,
    Reset,
    SetLr {
        lr: f32,
    },
    /// Classify one 28x28 image (values in [0, 1]) with the current weights.
    Predict {
        pixels: Vec<f32>,
    },
    /// Test digits of class `actual` that the last evaluation took for `predicted`.
    Examples {
        actual: usize,
        predicted: usize,
    },
    /// The first convolution's filters and its feature maps for test digit `index`.
    Inspect {
        index: usize,
    },
    /// Every attention layer's weights for test example `index`.
    Attention {
        index: usize,
    },
    /// Every recurrent layer's hidden state at each time step for test example `index`.
    Hidden {
        index: usize,
    },
    /// The current weights, as safetensors; `purpose` (what the page wants them
    /// for, e.g. a download) comes back with them.
    GetWeights {
        purpose: String,
    },
    /// Replace the weights (safetensors, base64): checked against the model's
    /// names and shapes first; training starts over from them.
    LoadWeights {
        safetensors: String,
    },
    /// The model as code for another framework (`pytorch`, `keras`), with its weights.
    Export {
        format: String,
    },
    /// The run so far as a checkpoint (weights, optimizer state, data position;
    /// see `train::checkpoint`), for keeping it in the browser.
    GetCheckpoint,
    /// Go on with a run from a checkpoint (base64) of the current model, taken
    /// by `GetCheckpoint`; `history` (what the page showed of it) comes back
    /// in `Resumed`. Waits for the data if it is still loading.
    Resume {
        checkpoint: String,
        #[serde(default)]
        history: History,
    },
    /// Where to train: `auto` (WebGPU where there is an adapter), `webgpu` or `cpu`.
    /// `simulate` is for tests: `unavailable` (no adapter) or `lose:N` (the
    /// device is lost after N more steps).
    SetBackend {
        backend: BackendChoice,
        #[serde(default)]
        simulate: Option<String>,
    },
}

/// What the page shows of a run (its loss per step, its evaluations as
/// `(step, accuracy)`, the seconds spent training), kept with its checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub losses: Vec<f32>,
    #[serde(default)]
    pub evals: Vec<(usize, f32)>,
    #[serde(default)]
    pub elapsed_s: f32,
}

/// The page's backend selector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

/// Worker -> page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// The worker has started and listens.
    Ready,
    DataProgress {
        loaded: usize,
        total: usize,
    },
    DataLoaded {
        train: usize,
        test: usize,
    },
    /// The data set could not be loaded (missing or corrupt files).
    DataFailed {
        message: String,
    },
    /// Losses of the steps since the last report, with the newest metrics.
    Metrics {
        first_step: usize,
        losses: Vec<f32>,
        accuracy: f32,
        samples_per_s: f32,
        epoch: usize,
        epoch_progress: f32,
        elapsed_s: f32,
    },
    /// Test-set evaluation (on `samples` test examples), with its confusion matrix.
    Evaluation {
        step: usize,
        accuracy: f32,
        loss: f32,
        samples: usize,
        sequence_accuracy: Option<f32>,
        confusion: Vec<Vec<u32>>,
    },
    Running {
        running: bool,
    },
    /// Training stopped on its own: all epochs are done.
    Finished {
        steps: usize,
    },
    /// Training paused because the loss diverged; the last good weights are kept.
    Diverged {
        message: String,
    },
    /// For `Attention`: per attention layer `[heads, T, T]` (row-major), and the
    /// example: its tokens and targets (sequence tasks) or its digit, label and the
    /// `[rows, cols]` grid of patches the tokens stand for (images; `grid` is empty
    /// when the tokens are not a patch grid).
    AttentionMaps {
        index: usize,
        maps: Vec<AttentionMap>,
        tokens: Vec<usize>,
        targets: Vec<usize>,
        image: Vec<u8>,
        label: usize,
        grid: Vec<usize>,
    },
    /// For `Hidden`: each recurrent layer's states `[T, units]`, and the example as
    /// for `AttentionMaps`.
    HiddenStates {
        index: usize,
        layers: Vec<HiddenState>,
        tokens: Vec<usize>,
        targets: Vec<usize>,
        image: Vec<u8>,
        label: usize,
    },
    /// Class probabilities for a `Predict`.
    Prediction {
        probs: Vec<f32>,
    },
    /// Up to `MAX_EXAMPLES` test digits (28x28 u8 each) for `Examples`.
    Examples {
        actual: usize,
        predicted: usize,
        indices: Vec<usize>,
        images: Vec<Vec<u8>>,
    },
    /// For `Inspect`: the digit, the first convolution's weights `[F, C, KH, KW]`
    /// and its output `[F, H, W]` (empty when the model has no convolution).
    Inspection {
        index: usize,
        label: usize,
        image: Vec<u8>,
        filter_shape: Vec<usize>,
        filters: Vec<f32>,
        map_shape: Vec<usize>,
        maps: Vec<f32>,
    },
    /// For `GetWeights`: the spec, the steps trained, the weights (safetensors, base64).
    Weights {
        purpose: String,
        spec: ModelSpec,
        steps: usize,
        safetensors: String,
    },
    /// `LoadWeights` succeeded: `tensors` tensors replaced the model's.
    WeightsLoaded {
        tensors: usize,
    },
    /// For `GetCheckpoint`: the run's spec, steps, training time and checkpoint
    /// (safetensors, base64).
    Checkpoint {
        spec: ModelSpec,
        steps: usize,
        elapsed_s: f32,
        checkpoint: String,
    },
    /// `Resume` succeeded: the run goes on after step `steps`.
    Resumed {
        steps: usize,
        history: History,
    },
    /// For `Export`: the files (name, base64 contents).
    Exported {
        format: String,
        files: Vec<(String, String)>,
    },
    /// Where training runs now: `active` is `webgpu` or `cpu`, `adapter` the GPU's
    /// name (empty on the CPU); `notice` says why it is not what was chosen, or
    /// that the GPU failed and training moved to the CPU.
    Backend {
        choice: BackendChoice,
        active: String,
        adapter: String,
        notice: Option<String>,
    },
    Error {
        message: String,
    },
}

/// The largest weights file the page accepts.
pub const MAX_WEIGHTS_BYTES: usize = 200 << 20;

/// One attention layer's weights for one example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionMap {
    pub layer: usize,
    pub heads: usize,
    pub steps: usize,
    pub weights: Vec<f32>,
}

/// A test example prepared for the attention and hidden-state views.
struct ViewExample {
    x: crate::Tensor,
    tokens: Vec<usize>,
    targets: Vec<usize>,
    image: Vec<u8>,
    label: usize,
}

/// One recurrent layer's hidden states for one example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HiddenState {
    pub layer: usize,
    pub layer_type: String,
    pub steps: usize,
    pub units: usize,
    /// `[steps, units]`, row-major.
    pub values: Vec<f32>,
}

/// Test examples evaluated during training (all 10,000 at the end).
pub const QUICK_EVAL_SAMPLES: usize = 1000;
/// Steps between quick evaluations.
pub const EVAL_EVERY: usize = 100;
/// Most example digits sent for one confusion-matrix cell.
pub const MAX_EXAMPLES: usize = 24;

/// The worker's state: what it holds and whether it is training.
pub struct Session {
    spec: Option<ModelSpec>,
    /// MNIST once loaded; shared with every trainer made from it.
    data: Option<(Data, Data)>,
    trainer: Option<Trainer>,
    running: bool,
    /// Seconds spent in training steps since the last reset.
    elapsed_s: f64,
    /// Predicted classes of the last evaluation, for the examples of a confusion cell.
    last_predicted: Vec<u8>,
    /// Loaded weights (checked) for the next trainer, when the data is still loading.
    pending_weights: Option<Vec<u8>>,
    /// A checkpoint (and its history) to go on from, for the next trainer.
    pending_resume: Option<(Vec<u8>, History)>,
    /// The history of a run just continued from a checkpoint, for `Resumed`.
    resumed: Option<History>,
    /// Where new trainers live.
    device: Device,
    /// For a trainer on the GPU: a CPU copy of its model (evaluation and the
    /// views run on it) and its last checkpoint (to go on on the CPU if the GPU
    /// fails), refreshed every `SYNC_EVERY` steps.
    mirror: Option<Mirror>,
    /// Changes whenever the trainer is replaced or moved, so that a GPU readback
    /// that comes back afterwards is dropped.
    generation: u64,
}

struct Mirror {
    model: crate::nn::Model,
    host: HostCheckpoint,
}

/// Steps between refreshes of a GPU run's CPU copy.
pub const SYNC_EVERY: usize = 25;

/// What one slice of training collected (see `Session::slice_start`).
pub struct Slice {
    first_step: usize,
    samples_before: usize,
    started: Instant,
    max_steps: usize,
    budget_s: f64,
    losses: Vec<f32>,
    last: Option<crate::train::StepMetrics>,
    events: Vec<Event>,
    stop: bool,
}

/// Polls a future that is ready at once (a checkpoint of a CPU trainer).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("a CPU checkpoint needs no waiting"),
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            spec: None,
            data: None,
            trainer: None,
            running: false,
            elapsed_s: 0.0,
            last_predicted: Vec::new(),
            pending_weights: None,
            pending_resume: None,
            resumed: None,
            device: Device::Cpu,
            mirror: None,
            generation: 0,
        }
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    pub fn has_data(&self) -> bool {
        self.data.is_some()
    }

    pub fn set_data(&mut self, train: Mnist, test: Mnist) -> Vec<Event> {
        let ev = Event::DataLoaded { train: train.len(), test: test.len() };
        self.data = Some((train.into(), test.into()));
        self.trainer = None;
        let mut events = vec![ev];
        // Weights that came before the data (a restored model): show how good they are.
        if self.pending_resume.is_some() {
            events.extend(self.resume_now());
        } else if self.pending_weights.is_some() && self.ensure_model().is_ok() {
            events.push(self.evaluation(Some(QUICK_EVAL_SAMPLES)));
        }
        events
    }

    /// Handles a command that needs no I/O (`LoadData` is the web layer's).
    pub fn handle(&mut self, cmd: Command) -> Vec<Event> {
        // Natively the CPU copy of a GPU run is brought up to date at once (the
        // page's worker awaits it before calling `handle`; see `needs_sync`).
        #[cfg(not(target_arch = "wasm32"))]
        if self.needs_sync(&cmd) {
            self.sync_blocking();
        }
        match cmd {
            Command::LoadData { .. } => vec![],
            Command::SetBackend { backend, .. } => {
                // The page's worker makes the GPU (asynchronously) and calls
                // `set_device`; natively there is none to make here.
                let mut ev = self.set_device(Device::Cpu, None);
                if let Some(Event::Backend { choice, .. }) = ev.first_mut() {
                    *choice = backend;
                }
                ev
            }
            Command::SetSpec { spec } => {
                self.spec = Some(spec);
                self.reset()
            }
            Command::Reset => self.reset(),
            Command::Train => match self.ensure_trainer() {
                Ok(()) => {
                    self.running = true;
                    vec![Event::Running { running: true }]
                }
                Err(e) => vec![Event::Error { message: e }],
            },
            Command::Pause => {
                self.running = false;
                let mut events = vec![Event::Running { running: false }];
                // A quick look at the test set, so a paused run shows its accuracy.
                if self.trainer.as_ref().is_some_and(|t| t.steps_done() > 0) {
                    events.push(self.evaluation(Some(QUICK_EVAL_SAMPLES)));
                }
                events
            }
            Command::Step => match self.ensure_trainer() {
                Ok(()) => {
                    self.running = false;
                    let mut events = vec![Event::Running { running: false }];
                    events.extend(self.run_steps(1, f64::INFINITY));
                    events
                }
                Err(e) => vec![Event::Error { message: e }],
            },
            Command::Predict { pixels } => {
                if let Err(e) = self.ensure_model() {
                    return vec![Event::Error { message: e }];
                }
                let model = self.view_model().expect("ensured");
                if pixels.len() != crate::data::mnist::PIXELS {
                    return vec![Event::Error {
                        message: format!("a drawing must have 784 pixels, got {}", pixels.len()),
                    }];
                }
                if model.spec.input.is_tokens() {
                    return vec![Event::Error {
                        message: format!(
                            "this model reads token sequences ({}), not drawings; choose an MNIST model to draw",
                            model.spec.input.name()
                        ),
                    }];
                }
                let mut shape = vec![1];
                shape.extend_from_slice(&model.info.input_shape);
                let probs = crate::autograd::no_grad(|| {
                    model
                        .forward_logits(&crate::Tensor::from_vec(&shape, pixels), crate::nn::Mode::Eval)
                        .softmax()
                        .to_vec()
                });
                vec![Event::Prediction { probs }]
            }
            Command::Examples { actual, predicted } => vec![self.examples(actual, predicted)],
            Command::Inspect { index } => self.inspect(index),
            Command::Attention { index } => self.attention(index),
            Command::Hidden { index } => self.hidden(index),
            Command::GetWeights { purpose } => self.weights(purpose),
            Command::LoadWeights { safetensors } => self.load_weights(&safetensors),
            Command::Export { format } => self.export(&format),
            Command::GetCheckpoint => self.checkpoint(),
            Command::Resume { checkpoint, history } => {
                let Ok(bytes) = B64.decode(&checkpoint) else {
                    return vec![Event::Error { message: "the checkpoint could not be read (not base64)".into() }];
                };
                let mut events = self.reset();
                self.pending_resume = Some((bytes, history));
                let generated = self.spec.as_ref().is_some_and(|s| s.input.is_tokens());
                if self.data.is_some() || generated {
                    events.extend(self.resume_now());
                }
                events
            }
            Command::SetLr { lr } => {
                if !(lr.is_finite() && lr > 0.0) {
                    return vec![Event::Error {
                        message: format!("the learning rate must be a positive number, got {lr}"),
                    }];
                }
                if let Some(spec) = self.spec.as_mut() {
                    spec.training.optimizer.set_lr(lr);
                }
                if let Some(t) = self.trainer.as_mut() {
                    t.set_lr(lr);
                }
                vec![]
            }
        }
    }

    fn reset(&mut self) -> Vec<Event> {
        self.trainer = None;
        self.mirror = None;
        self.generation += 1;
        self.pending_weights = None;
        self.pending_resume = None;
        self.resumed = None;
        self.running = false;
        self.elapsed_s = 0.0;
        vec![Event::Running { running: false }]
    }

    /// Evaluates on the first `limit` test digits and remembers the predictions.
    fn evaluation(&mut self, limit: Option<usize>) -> Event {
        let t = self.trainer.as_ref().expect("evaluation needs a trainer");
        let e = crate::train::evaluate(self.view_model().expect("a trainer"), t.test_set(), limit);
        if !e.loss.is_finite() {
            // Every step's loss was finite, yet the model's outputs overflow on the
            // test set: a divergence, never a figure of NaN or infinity.
            self.running = false;
            let message = match t.steps_done() {
                0 => format!("the test loss is {} with these weights: the model's outputs overflow; the weights come from a diverged run", e.loss),
                steps => format!("the test loss became {} after step {steps}: training diverged; try a smaller learning rate (e.g. {})", e.loss, crate::error::format_lr(t.optimizer.lr() / 10.0)),
            };
            return Event::Diverged { message };
        }
        self.last_predicted = e.predicted;
        Event::Evaluation {
            step: t.steps_done(),
            accuracy: e.accuracy,
            loss: e.loss,
            samples: e.samples,
            sequence_accuracy: e.sequence_accuracy,
            confusion: e.confusion,
        }
    }

    fn examples(&self, actual: usize, predicted: usize) -> Event {
        let mut indices = Vec::new();
        let mut images = Vec::new();
        if let Some(test) = self.trainer.as_ref().and_then(|t| t.test_set().as_mnist()) {
            for (i, &p) in self.last_predicted.iter().enumerate() {
                if p as usize == predicted && test.labels.get(i).is_some_and(|&l| l as usize == actual) {
                    indices.push(i);
                    images.push(test.image(i).to_vec());
                    if indices.len() == MAX_EXAMPLES {
                        break;
                    }
                }
            }
        }
        Event::Examples { actual, predicted, indices, images }
    }

    fn inspect(&mut self, index: usize) -> Vec<Event> {
        let ex = match self.view_example(index) {
            Ok(ex) => ex,
            Err(e) => return vec![e],
        };
        if ex.image.is_empty() {
            return vec![Event::Error {
                message: "filters and feature maps are shown for image data sets (MNIST)".into(),
            }];
        }
        let model = self.view_model().expect("ensured");
        let first_conv = model.spec.layers.iter().position(|l| l.role() == Role::Convolution);
        let (filter_shape, filters, map_shape, maps) = match (first_conv, model.first_conv_weight()) {
            (Some(i), Some(w)) => {
                let acts = crate::autograd::no_grad(|| model.activations(&ex.x));
                let a = &acts[i];
                (w.shape(), w.to_vec(), a.shape()[1..].to_vec(), a.to_vec())
            }
            _ => (vec![], vec![], vec![], vec![]),
        };
        vec![Event::Inspection { index, label: ex.label, image: ex.image, filter_shape, filters, map_shape, maps }]
    }

    /// The test example `index` for a view of the model's insides, or an error event.
    fn view_example(&mut self, index: usize) -> Result<ViewExample, Event> {
        self.ensure_model().map_err(|message| Event::Error { message })?;
        let t = self.trainer.as_ref().expect("ensured");
        let test = t.test_set();
        if index >= test.len() {
            return Err(Event::Error {
                message: format!("there is no test example {index}; choose 0 to {}", test.len().saturating_sub(1)),
            });
        }
        let model = self.view_model().expect("ensured");
        let batch = test.batch(&[index as u32], &model.info.input_shape);
        let mut ex = ViewExample {
            x: crate::Tensor::from_vec(&batch.shape, batch.x.clone()),
            tokens: vec![],
            targets: vec![],
            image: vec![],
            label: 0,
        };
        if model.spec.input.is_tokens() {
            ex.tokens = batch.x.iter().map(|&v| v as usize).collect();
            ex.targets = batch.labels.clone();
        } else if let Some(mnist) = test.as_mnist() {
            ex.image = mnist.image(index).to_vec();
            ex.label = mnist.labels[index] as usize;
        }
        Ok(ex)
    }

    fn attention(&mut self, index: usize) -> Vec<Event> {
        let ex = match self.view_example(index) {
            Ok(ex) => ex,
            Err(e) => return vec![e],
        };
        let model = self.view_model().expect("ensured");
        let layers: Vec<usize> =
            model.spec.layers.iter().enumerate().filter(|(_, l)| l.role() == Role::Attention).map(|(i, _)| i).collect();
        // Tokens made by Patchify from an image stand for a grid of patches.
        let grid = model
            .spec
            .layers
            .iter()
            .zip(&model.info.layers)
            .find_map(|(l, info)| match l {
                crate::nn::LayerSpec::Patchify(p) if info.input_shape.len() == 3 => {
                    Some(vec![info.input_shape[1] / p.patch_size, info.input_shape[2] / p.patch_size])
                }
                _ => None,
            })
            .unwrap_or_default();
        let maps: Vec<AttentionMap> = model
            .attention_maps(&ex.x)
            .into_iter()
            .zip(layers)
            .map(|(m, layer)| AttentionMap {
                layer,
                heads: m.shape()[0],
                steps: m.shape()[1],
                weights: m.iter().copied().collect(),
            })
            .collect();
        let grid = if maps.iter().all(|m| grid.iter().product::<usize>() == m.steps) { grid } else { vec![] };
        vec![Event::AttentionMaps {
            index,
            maps,
            tokens: ex.tokens,
            targets: ex.targets,
            image: ex.image,
            label: ex.label,
            grid,
        }]
    }

    fn hidden(&mut self, index: usize) -> Vec<Event> {
        let ex = match self.view_example(index) {
            Ok(ex) => ex,
            Err(e) => return vec![e],
        };
        let model = self.view_model().expect("ensured");
        let layers = model
            .hidden_states(&ex.x)
            .into_iter()
            .map(|(layer, s)| HiddenState {
                layer,
                layer_type: model.spec.layers[layer].type_name().to_string(),
                steps: s.shape()[0],
                units: s.shape()[1],
                values: s.iter().copied().collect(),
            })
            .collect();
        vec![Event::HiddenStates {
            index,
            layers,
            tokens: ex.tokens,
            targets: ex.targets,
            image: ex.image,
            label: ex.label,
        }]
    }

    /// Runs `f` on the model in training, or (before any training) on the spec's
    /// model as initialised, with weights loaded for it if any.
    fn with_model<R>(&self, f: impl FnOnce(&crate::nn::Model) -> R) -> Result<R, String> {
        if let Some(m) = self.view_model() {
            return Ok(f(m));
        }
        let spec = self.spec.as_ref().ok_or("no model yet")?;
        let model = crate::nn::Model::new(spec).map_err(|e| e.to_string())?;
        if let Some(bytes) = &self.pending_weights {
            crate::io::weights::load_parameters(&model.parameters(), bytes).map_err(|e| e.to_string())?;
        }
        Ok(f(&model))
    }

    fn weights(&self, purpose: String) -> Vec<Event> {
        let steps = self.trainer.as_ref().map_or(0, |t| t.steps_done());
        let saved = self.with_model(|m| {
            crate::io::weights::save_parameters(&m.parameters())
                .map(|bytes| (m.spec.clone(), bytes))
                .map_err(|e| e.to_string())
        });
        match saved.and_then(|r| r) {
            Ok((spec, bytes)) => vec![Event::Weights { purpose, spec, steps, safetensors: B64.encode(bytes) }],
            Err(message) => vec![Event::Error { message }],
        }
    }

    fn load_weights(&mut self, b64: &str) -> Vec<Event> {
        let fail = |message: String| vec![Event::Error { message }];
        if b64.len() / 4 * 3 > MAX_WEIGHTS_BYTES {
            return fail(format!(
                "the weights file is larger than {} MB, more than layerlab opens",
                MAX_WEIGHTS_BYTES >> 20
            ));
        }
        let Ok(bytes) = B64.decode(b64) else { return fail("the weights could not be read (not base64)".into()) };
        let Some(spec) = self.spec.clone() else { return fail("there is no model to load weights into".into()) };
        // Check names, shapes and values against the model the spec builds.
        let model = match crate::nn::Model::new(&spec) {
            Ok(m) => m,
            Err(e) => return fail(e.to_string()),
        };
        let params = model.parameters();
        if let Err(e) = crate::io::weights::load_parameters(&params, &bytes) {
            return fail(format!("these weights do not fit the model: {e}"));
        }
        let mut events = self.reset();
        self.pending_weights = Some(bytes);
        events.push(Event::WeightsLoaded { tensors: params.len() });
        if self.ensure_model().is_ok() {
            events.push(self.evaluation(Some(QUICK_EVAL_SAMPLES)));
        }
        events
    }

    /// Builds the trainer from the pending checkpoint: `Resumed` and a quick
    /// evaluation, or why the run could not be continued.
    fn resume_now(&mut self) -> Vec<Event> {
        if let Err(message) = self.ensure_model() {
            return vec![Event::Error { message }];
        }
        let Some(history) = self.resumed.take() else { return vec![] };
        let steps = self.trainer.as_ref().map_or(0, |t| t.steps_done());
        vec![Event::Resumed { steps, history }, self.evaluation(Some(QUICK_EVAL_SAMPLES))]
    }

    fn checkpoint(&self) -> Vec<Event> {
        let Some(t) = self.trainer.as_ref() else {
            return vec![Event::Error { message: "there is no training to keep yet".into() }];
        };
        // A GPU run's checkpoint is its CPU copy's, brought up to date first (`needs_sync`).
        let host = match &self.mirror {
            Some(m) => m.host.clone(),
            None => ready(t.checkpoint().to_host()).expect("a CPU checkpoint"),
        };
        match t.checkpoint_to_bytes(&host) {
            Ok(bytes) => vec![Event::Checkpoint {
                spec: t.model.spec.clone(),
                steps: host.step(),
                elapsed_s: self.elapsed_s as f32,
                checkpoint: B64.encode(bytes),
            }],
            Err(e) => vec![Event::Error { message: e.to_string() }],
        }
    }

    fn export(&self, format: &str) -> Vec<Event> {
        let export = match format {
            "pytorch" => crate::io::export::pytorch,
            "keras" => crate::io::keras::keras,
            _ => {
                return vec![Event::Error {
                    message: format!("unknown export format \"{format}\"; use pytorch or keras"),
                }]
            }
        };
        let files = self.with_model(|m| export(m).map_err(|e| e.to_string()));
        match files.and_then(|r| r) {
            Ok(files) => vec![Event::Exported {
                format: format.into(),
                files: files.into_iter().map(|(n, b)| (n, B64.encode(b))).collect(),
            }],
            Err(message) => vec![Event::Error { message }],
        }
    }

    /// A model to predict with: the one in training, or a fresh one.
    fn ensure_model(&mut self) -> Result<(), String> {
        let generated = self.spec.as_ref().is_some_and(|s| s.input.is_tokens());
        if self.trainer.is_none() && self.data.is_none() && !generated {
            return Err("the MNIST data is still loading".into());
        }
        self.ensure_trainer()
    }

    fn ensure_trainer(&mut self) -> Result<(), String> {
        if self.trainer.is_some() {
            return Ok(());
        }
        let spec = self.spec.as_ref().ok_or("no model yet")?;
        let mut trainer = match Data::generated(&spec.input, spec.training.seed) {
            Some((train, test)) => Trainer::new(spec, train, test),
            None => {
                let (train, test) = self.data.as_ref().ok_or("the MNIST data is still loading")?;
                Trainer::new(spec, train.clone(), test.clone())
            }
        }
        .map_err(|e| e.to_string())?;
        if let Some(bytes) = self.pending_weights.take() {
            crate::io::weights::load_parameters(trainer.parameters(), &bytes).map_err(|e| e.to_string())?;
        }
        if let Some((bytes, history)) = self.pending_resume.take() {
            let host = trainer.checkpoint_from_bytes(&bytes).map_err(|e| {
                format!("The training kept in this browser could not be continued ({e}); training starts over.")
            })?;
            trainer.restore(&host, &Device::Cpu);
            self.elapsed_s = history.elapsed_s as f64;
            self.resumed = Some(history);
        }
        self.trainer = Some(trainer);
        self.generation += 1;
        if self.device.is_gpu() {
            self.move_trainer(&self.device.clone());
        }
        Ok(())
    }

    /// Where new trainers live, and the trainer's device if it is not there.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The model the views, predictions and evaluations read: the trainer's, or
    /// for a GPU run its CPU copy.
    fn view_model(&self) -> Option<&crate::nn::Model> {
        match (&self.mirror, &self.trainer) {
            (Some(m), Some(_)) => Some(&m.model),
            (None, Some(t)) => Some(&t.model),
            _ => None,
        }
    }

    /// Moves the trainer to `device`: to the GPU from the CPU state (immediate),
    /// or to the CPU from the last checkpoint of the GPU run.
    fn move_trainer(&mut self, device: &Device) {
        let Some(t) = self.trainer.as_mut() else { return };
        let on_gpu = t.device().is_gpu();
        match (on_gpu, device.is_gpu()) {
            (false, true) => {
                let host = ready(t.checkpoint().to_host()).expect("a CPU checkpoint");
                let model = crate::nn::Model::new(&t.model.spec).expect("the trainer's spec is valid");
                for ((_, p), w) in model.parameters().iter().zip(&host.weights) {
                    p.set_value(w);
                }
                t.restore(&host, device);
                self.mirror = Some(Mirror { model, host });
            }
            (true, false) => {
                if let Some(m) = self.mirror.take() {
                    t.restore(&m.host, device);
                }
            }
            _ => {}
        }
        self.generation += 1;
    }

    /// Trains on `device` from now on (the current run moves there, see
    /// `move_trainer`). `notice` says why, when it is not what the page chose.
    pub fn set_device(&mut self, device: Device, notice: Option<String>) -> Vec<Event> {
        self.move_trainer(&device);
        self.device = device;
        vec![self.backend_event(BackendChoice::Auto, notice)]
    }

    fn backend_event(&self, choice: BackendChoice, notice: Option<String>) -> Event {
        let (active, adapter) = match &self.device {
            Device::Cpu => ("cpu".to_string(), String::new()),
            Device::Gpu(g) => ("webgpu".to_string(), g.adapter.clone()),
        };
        Event::Backend { choice, active, adapter, notice }
    }

    /// The GPU failed (`reason`): training goes on on the CPU from the last
    /// checkpoint of the run, with a notice that says from which step.
    pub fn fall_back(&mut self, choice: BackendChoice, reason: &str) -> Vec<Event> {
        let from = self.mirror.as_ref().map(|m| m.host.step());
        self.move_trainer(&Device::Cpu);
        self.device = Device::Cpu;
        let at = match from {
            Some(step) if step > 0 => format!(" from the weights of step {step}"),
            _ => String::new(),
        };
        vec![self.backend_event(
            choice,
            Some(format!("WebGPU stopped working ({reason}). Training goes on on the CPU{at}; nothing else is lost.")),
        )]
    }

    /// Whether the CPU copy of a GPU run must be brought up to date before `cmd`
    /// (commands that need the current weights exactly).
    pub fn needs_sync(&self, cmd: &Command) -> bool {
        self.mirror_stale()
            && matches!(
                cmd,
                Command::Pause
                    | Command::GetWeights { .. }
                    | Command::GetCheckpoint
                    | Command::Export { .. }
                    | Command::SetBackend { .. }
            )
    }

    /// The GPU run has trained since its CPU copy was refreshed.
    pub fn mirror_stale(&self) -> bool {
        match (&self.mirror, &self.trainer) {
            (Some(m), Some(t)) => m.host.step() != t.steps_done(),
            _ => false,
        }
    }

    /// A checkpoint of the GPU run to read back (then `finish_sync`), with the
    /// generation it belongs to.
    pub fn begin_sync(&self) -> Option<(u64, Checkpoint)> {
        let t = self.trainer.as_ref()?;
        self.mirror.as_ref()?;
        Some((self.generation, t.checkpoint()))
    }

    /// Refreshes the CPU copy from a checkpoint read back from the GPU.
    pub fn finish_sync(&mut self, generation: u64, host: HostCheckpoint) {
        if generation != self.generation {
            return;
        }
        if let Some(m) = self.mirror.as_mut() {
            for ((_, p), w) in m.model.parameters().iter().zip(&host.weights) {
                p.set_value(w);
            }
            m.host = host;
        }
    }

    /// `begin_sync` and `finish_sync`, waiting for the GPU (native code, tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sync_blocking(&mut self) {
        if let Some((generation, c)) = self.begin_sync() {
            match pollster::block_on(c.to_host()) {
                Ok(host) => self.finish_sync(generation, host),
                Err(e) => {
                    let _ = self.fall_back(BackendChoice::Auto, &e.0);
                }
            }
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Trains for about `budget_s` seconds while running; returns what to report.
    pub fn tick(&mut self, budget_s: f64) -> Vec<Event> {
        if !self.running {
            return vec![];
        }
        self.run_steps(usize::MAX, budget_s)
    }

    /// Runs up to `max_steps` steps for about `budget_s` seconds, synchronously
    /// (the CPU; natively also the GPU, waiting for it).
    fn run_steps(&mut self, max_steps: usize, budget_s: f64) -> Vec<Event> {
        let Some(mut slice) = self.slice_start(max_steps, budget_s) else { return vec![] };
        while self.slice_wants_step(&slice) {
            let r = self.trainer.as_mut().expect("a slice has a trainer").step();
            if self.slice_step(&mut slice, r) {
                #[cfg(not(target_arch = "wasm32"))]
                self.sync_blocking();
                self.slice_synced(&mut slice);
            }
        }
        self.slice_end(slice)
    }

    /// Starts a slice of training (for `run_steps`, or the page's worker, which
    /// runs GPU steps itself so that it can await their metrics).
    pub fn slice_start(&mut self, max_steps: usize, budget_s: f64) -> Option<Slice> {
        let t = self.trainer.as_ref()?;
        Some(Slice {
            first_step: t.steps_done() + 1,
            samples_before: t.samples_seen(),
            started: Instant::now(),
            max_steps,
            budget_s,
            losses: Vec::new(),
            last: None,
            events: Vec::new(),
            stop: false,
        })
    }

    /// Every step of the run's epochs (at most `MAX_EPOCHS`, checked by the spec;
    /// saturating all the same, never wrapping to a short run).
    fn total_steps(t: &Trainer) -> usize {
        t.steps_per_epoch().saturating_mul(t.model.spec.training.epochs)
    }

    /// Whether the slice should take another step.
    pub fn slice_wants_step(&self, slice: &Slice) -> bool {
        let Some(t) = self.trainer.as_ref() else { return false };
        !slice.stop
            && slice.losses.len() < slice.max_steps
            && t.steps_done() < Self::total_steps(t)
            && (slice.losses.is_empty() || slice.started.elapsed().as_secs_f64() < slice.budget_s)
    }

    /// For a `Step` on the GPU (which the page's worker runs itself): the trainer
    /// made if need be, and training paused.
    pub fn prepare_step(&mut self) -> Vec<Event> {
        match self.ensure_trainer() {
            Ok(()) => {
                self.running = false;
                vec![Event::Running { running: false }]
            }
            Err(message) => vec![Event::Error { message }],
        }
    }

    /// Whether the trainer is on the GPU (its steps are awaited by the page's worker).
    pub fn on_gpu(&self) -> bool {
        self.trainer.as_ref().is_some_and(|t| t.device().is_gpu())
    }

    /// Begins a GPU step (see `Trainer::begin_step`), with the generation it belongs to.
    pub fn begin_gpu_step(&mut self) -> Option<(u64, crate::train::PendingStep)> {
        let t = self.trainer.as_mut()?;
        t.device().is_gpu().then(|| (self.generation, t.begin_step()))
    }

    /// Completes a GPU step begun by `begin_gpu_step` with its metrics (or the
    /// reason the readback failed). Returns whether a sync is due (see `slice_step`);
    /// a step of an older generation is dropped.
    pub fn finish_gpu_step(
        &mut self,
        slice: &mut Slice,
        generation: u64,
        pending: crate::train::PendingStep,
        words: Result<[u32; 3], crate::backend::GpuError>,
    ) -> bool {
        if generation != self.generation {
            slice.stop = true;
            return false;
        }
        let t = self.trainer.as_mut().expect("a trainer of this generation");
        let r = match words {
            Ok(w) => t.finish_step(pending, w),
            Err(e) => Err(Error::Gpu(e.0)),
        };
        self.slice_step(slice, r)
    }

    /// Records a step's outcome. Returns true when the CPU copy of a GPU run is
    /// due for a refresh (every `SYNC_EVERY` steps, before an evaluation, at the
    /// end); call `slice_synced` after it.
    pub fn slice_step(&mut self, slice: &mut Slice, r: crate::Result<crate::train::StepMetrics>) -> bool {
        match r {
            Ok(m) => {
                slice.losses.push(m.loss);
                let step = m.step;
                slice.last = Some(m);
                let t = self.trainer.as_ref().expect("a trainer");
                let done = step >= Self::total_steps(t);
                if !t.device().is_gpu() {
                    self.slice_synced(slice);
                    return false;
                }
                step % SYNC_EVERY == 0 || step % EVAL_EVERY == 0 || done
            }
            Err(Error::Gpu(reason)) => {
                // The slice ends here: the run may go back to its last checkpoint.
                let ev = self.fall_back(BackendChoice::Auto, &reason);
                slice.events.extend(ev);
                slice.stop = true;
                false
            }
            Err(e @ Error::NonFiniteLoss { .. }) => {
                self.running = false;
                slice.stop = true;
                slice.events.push(Event::Diverged { message: e.to_string() });
                slice.events.push(Event::Running { running: false });
                false
            }
            Err(e) => {
                self.running = false;
                slice.stop = true;
                slice.events.push(Event::Error { message: e.to_string() });
                slice.events.push(Event::Running { running: false });
                false
            }
        }
    }

    /// After the step (and, for a GPU run, the refresh of its CPU copy): the
    /// evaluation every `EVAL_EVERY` steps.
    pub fn slice_synced(&mut self, slice: &mut Slice) {
        let Some(step) = slice.last.as_ref().map(|m| m.step) else { return };
        let Some(t) = self.trainer.as_ref() else { return };
        if step % EVAL_EVERY == 0 && t.steps_done() == step && step < Self::total_steps(t) {
            let ev = self.evaluation(Some(QUICK_EVAL_SAMPLES));
            let diverged = matches!(ev, Event::Diverged { .. });
            slice.events.push(ev);
            if diverged {
                // Paused: no further step in this slice.
                slice.stop = true;
                slice.events.push(Event::Running { running: false });
            }
        }
    }

    /// Ends a slice: its metrics, and the final evaluation when training is done.
    pub fn slice_end(&mut self, slice: Slice) -> Vec<Event> {
        let Some(trainer) = self.trainer.as_ref() else { return slice.events };
        let total_steps = Self::total_steps(trainer);
        let mut events = slice.events;
        let spent = slice.started.elapsed().as_secs_f64();
        self.elapsed_s += spent;
        if let Some(m) = slice.last {
            let samples_per_s =
                ((trainer.samples_seen().saturating_sub(slice.samples_before)) as f64 / spent.max(1e-9)) as f32;
            events.insert(
                0,
                Event::Metrics {
                    first_step: slice.first_step,
                    losses: slice.losses,
                    accuracy: m.accuracy,
                    samples_per_s,
                    epoch: m.epoch,
                    epoch_progress: m.epoch_progress,
                    elapsed_s: self.elapsed_s as f32,
                },
            );
        }
        let steps = trainer.steps_done();
        if steps >= total_steps && self.running {
            let ev = self.evaluation(None);
            // A final evaluation that diverged says so; the run is not "finished".
            let diverged = matches!(ev, Event::Diverged { .. });
            events.push(ev);
            if !diverged {
                events.push(Event::Finished { steps });
            }
            self.running = false;
            events.push(Event::Running { running: false });
        }
        events
    }
}
