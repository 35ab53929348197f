//! The message protocol between the page and the training worker: `Command`
//! (page -> worker) and `Event` (worker -> page), JSON by serde, with the
//! figures both sides agree on. The only part of the worker the UI imports.

use serde::{Deserialize, Serialize};

use crate::nn::ModelSpec;
pub use crate::train::measure::Speeds;

/// Page -> worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd")]
pub enum Command {
    /// Fetch the data set files from `base_url` (the page's own address).
    LoadData {
        base_url: String,
    },
    /// The page shows a new run from now on, numbered `run` (higher than any
    /// before): sent just before the command that makes the run (`SetSpec`,
    /// also for the page's Reset, `LoadWeights`, `Resume`). Training stops
    /// and the run under way is dropped (as `Reset`), first sent as a
    /// `Checkpoint` when `keep` and it has trained (the page keeps it with its
    /// model, so that Undo brings it back); the answer is `RunStarted { run }`,
    /// and no event of an earlier run (`Event::of_run`) comes after it. The
    /// page drops those that reach it before: they were on their way when it
    /// moved on.
    NewRun {
        run: u64,
        #[serde(default)]
        keep: bool,
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
    /// The run's length in epochs (1 to `MAX_EPOCHS`), changed without
    /// starting over: a complete run trains on with more.
    SetEpochs {
        epochs: usize,
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
    /// A convolution's filters and its feature maps for test digit `index`:
    /// of layer `layer` (a Conv2D's index in the stack), or of the first.
    Inspect {
        index: usize,
        #[serde(default)]
        layer: Option<usize>,
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
    /// Where to train: `auto` (the faster of WebGPU and the CPU, measured on
    /// the model when training starts, where there is an adapter), `webgpu` or
    /// `cpu`. `simulate` is for tests: `unavailable` (no adapter), `lose:N`
    /// (the device is lost after N more steps), `slow:cpu` / `slow:gpu` (Auto
    /// counts that backend at a thousandth of the slower measured speed, so it
    /// loses).
    SetBackend {
        backend: BackendChoice,
        #[serde(default)]
        simulate: Option<String>,
    },
    /// Train on the CPU data-parallel across `workers` Web Workers in all (this
    /// one and `workers - 1` helpers, at most `MAX_WORKERS`; 1: this one
    /// alone). Each step's batch is split across them and their gradients
    /// summed (`Trainer::split_step`). `simulate` is for tests:
    /// `unavailable` acts as a browser whose workers cannot start workers.
    SetWorkers {
        workers: usize,
        #[serde(default)]
        simulate: Option<String>,
    },
}

/// The most training workers a page uses (`SetWorkers`).
pub const MAX_WORKERS: usize = 8;

/// Starts the training worker script served from `base` (the page's folder)
/// as a classic Web Worker named `name`: from a blob that loads the
/// no-modules build Trunk makes. The page starts the training worker with it,
/// and the training worker its helpers (`HELPER_NAME`).
///
/// Where the browser has WebAssembly's relaxed SIMD (`RELAXED_SIMD_PROBE`
/// validates), the worker loads `FMA_WORKER_WASM`, the same worker built with
/// fused multiply-adds (scripts/fma_worker.sh); if that file cannot be
/// loaded, the plain one. The URLs enter the script as JSON strings, so a
/// page address with quotes in it cannot add code to it.
///
/// # Errors
/// The browser's, when it cannot make the blob or start the worker.
#[cfg(target_arch = "wasm32")]
pub fn spawn_worker(base: &str, name: &str) -> Result<web_sys::Worker, wasm_bindgen::JsValue> {
    use wasm_bindgen::JsValue;
    let quoted = |file: &str| serde_json::to_string(&format!("{base}{file}")).expect("strings serialize");
    let script = js_sys::Array::new();
    script.push(&JsValue::from_str(&format!(
        "importScripts({glue});
(function () {{
  var plain = {plain}, fma = {fma}, relaxed = false;
  try {{ relaxed = WebAssembly.validate(new Uint8Array({probe:?})); }} catch (e) {{}}
  if (!relaxed) {{ wasm_bindgen(plain); return; }}
  wasm_bindgen(fma).catch(function (e) {{
    console.warn('layerlab: the FMA build of the worker did not load (' + e + '); loading the plain one');
    return wasm_bindgen(plain);
  }});
}})();",
        glue = quoted("layerlab-worker.js"),
        plain = quoted("layerlab-worker_bg.wasm"),
        fma = quoted(FMA_WORKER_WASM),
        probe = RELAXED_SIMD_PROBE,
    )));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/javascript");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&script, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let worker_options = web_sys::WorkerOptions::new();
    worker_options.set_name(name);
    web_sys::Worker::new_with_options(&url, &worker_options)
}

/// The training worker built with relaxed SIMD (scripts/fma_worker.sh), in
/// the page's folder beside `layerlab-worker_bg.wasm`.
pub const FMA_WORKER_WASM: &str = "layerlab-worker-fma_bg.wasm";

/// The smallest module that uses relaxed SIMD: one function returning
/// `f32x4.relaxed_madd` (opcode `0xfd 0x105`) of three constant vectors.
/// `WebAssembly.validate` accepts it exactly where relaxed SIMD is on
/// (tests/web.rs checks that in Chromium). Sections: type `() -> v128`, one
/// function, its code.
pub const RELAXED_SIMD_PROBE: [u8; 82] = {
    let head: [u8; 24] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
        0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
        0x03, 0x02, 0x01, 0x00, // functions: one, of type 0
        0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
    ];
    let mut m = [0u8; 82];
    let mut i = 0;
    while i < 24 {
        m[i] = head[i];
        i += 1;
    }
    // Three `v128.const 0` (0xfd 0x0c and 16 zero bytes), then
    // `f32x4.relaxed_madd` and `end`.
    let mut k = 0;
    while k < 3 {
        m[24 + 18 * k] = 0xfd;
        m[25 + 18 * k] = 0x0c;
        k += 1;
    }
    m[78] = 0xfd;
    m[79] = 0x85;
    m[80] = 0x02;
    m[81] = 0x0b;
    m
};

/// The name of the training worker (`spawn_worker`).
pub const TRAINER_NAME: &str = "layerlab-trainer";
/// The name of a helper worker: the same script, as a `Replica` that computes
/// parts of batches for the training worker.
pub const HELPER_NAME: &str = "layerlab-helper";

/// What the page shows of a run (its loss per step, its evaluations as
/// `(step, accuracy)` and `(step, test loss)`, the seconds spent training),
/// kept with its checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub losses: Vec<f32>,
    #[serde(default)]
    pub evals: Vec<(usize, f32)>,
    #[serde(default)]
    pub test_losses: Vec<(usize, f32)>,
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
    /// For `NewRun`: every event of an earlier run came before this one.
    RunStarted {
        run: u64,
    },
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
    /// Losses of the steps since the last report, with the newest metrics:
    /// `samples_per_s` over the slice's `train_s` seconds of training (its
    /// evaluations left out, so the rate does not dip at each).
    Metrics {
        first_step: usize,
        losses: Vec<f32>,
        accuracy: f32,
        samples_per_s: f32,
        #[serde(default)]
        train_s: f32,
        epoch: usize,
        epoch_progress: f32,
        elapsed_s: f32,
        /// Every step of the run's epochs (for "step 420 of 938").
        #[serde(default)]
        total_steps: usize,
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
    /// Training paused because the run is not learning (its loss ran away, or
    /// it sits at the chance level); the message says why and what to try.
    NotLearning {
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
    /// For `Examples`: up to `MAX_EXAMPLES` test digits (28x28 u8 each) of
    /// class `actual` predicted as `predicted`, or for a sequence task, test
    /// sequences with a position whose target token `actual` was predicted as
    /// `predicted` (`images` empty).
    Examples {
        actual: usize,
        predicted: usize,
        indices: Vec<usize>,
        images: Vec<Vec<u8>>,
        #[serde(default)]
        sequences: Vec<ExampleSequence>,
    },
    /// For `Inspect`: the digit, the convolution's weights `[F, C, KH, KW]`
    /// and its output `[F, H, W]` (empty when the model has no convolution),
    /// and which layer it is.
    Inspection {
        index: usize,
        #[serde(default)]
        layer: usize,
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
    /// For `GetCheckpoint` (and `NewRun` with `keep`): the run's spec,
    /// steps, training time and checkpoint (safetensors, base64), and its
    /// history up to those steps (to show again when it goes on).
    Checkpoint {
        spec: ModelSpec,
        steps: usize,
        elapsed_s: f32,
        checkpoint: String,
        #[serde(default)]
        history: Box<History>,
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
    /// name (on the CPU: the adapter Auto measures against it, or empty);
    /// `notice` says why it is not what was chosen, or that the GPU failed and
    /// training moved to the CPU; `speeds` what Auto measured for the current
    /// model and batch size (`None` before it has); `unavailable` why there is
    /// no WebGPU, when Auto found none (information, not a notice: nothing
    /// for the user to do); `cpu` what this worker's CPU kernels run on
    /// (`backend::cpu::KERNELS`: in the page, WebAssembly SIMD, with or
    /// without fused multiply-adds).
    Backend {
        choice: BackendChoice,
        active: String,
        adapter: String,
        notice: Option<String>,
        #[serde(default)]
        speeds: Option<Speeds>,
        #[serde(default)]
        unavailable: Option<String>,
        #[serde(default)]
        cpu: String,
    },
    /// The training workers: `wanted` asked for (`SetWorkers`), `running` those
    /// that take part in CPU steps now (1: this worker alone; helpers that are
    /// still starting are not counted), `note` why fewer run than asked (the
    /// browser cannot start them, or one failed).
    Workers {
        wanted: usize,
        running: usize,
        note: Option<String>,
    },
    /// What splitting steps across `workers` workers gives for the current
    /// run, measured on its first steps (samples/s in one worker and split),
    /// and the workers each step uses from now on: `workers` when splitting
    /// is faster, else 1 (`split::SplitTuner`).
    WorkerSpeeds {
        workers: usize,
        one: f32,
        split: f32,
        using: usize,
    },
    Error {
        message: String,
    },
}

impl Event {
    /// Whether the event reports on the run under way (its steps, figures,
    /// views, checkpoint, pause or failure), so that one of an earlier run is
    /// stale once the page has moved on (`Command::NewRun`). The rest are about
    /// the data, the backend, the workers or a file asked for, and stay true.
    pub fn of_run(&self) -> bool {
        !matches!(
            self,
            Event::Ready
                | Event::RunStarted { .. }
                | Event::DataProgress { .. }
                | Event::DataLoaded { .. }
                | Event::DataFailed { .. }
                | Event::Weights { .. }
                | Event::Exported { .. }
                | Event::Backend { .. }
                | Event::Workers { .. }
        )
    }
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

/// A test sequence of a sequence task, as the last evaluation saw it: its
/// tokens, the targets, the model's prediction at each position, and the
/// position that put it in a confusion cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExampleSequence {
    pub tokens: Vec<usize>,
    pub targets: Vec<usize>,
    pub predicted: Vec<usize>,
    pub position: usize,
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

#[cfg(test)]
mod tests {
    use super::RELAXED_SIMD_PROBE as P;

    /// The probe's sizes add up: the code section's size byte (at 20) counts
    /// the bytes after it, the body's (at 22) the bytes after it, and the body
    /// ends with the `f32x4.relaxed_madd` (0xfd, LEB128 of 0x105) and `end`.
    #[test]
    fn the_relaxed_simd_probe_is_a_whole_module() {
        assert_eq!(P[..8], [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
        assert_eq!((P[19], P[20] as usize), (0x0a, P.len() - 21));
        assert_eq!(P[22] as usize, P.len() - 23);
        assert_eq!(P[P.len() - 4..], [0xfd, 0x85, 0x02, 0x0b]);
    }
}
