//! `Session`, the worker's state machine: the spec, the data, the trainer,
//! running or paused, and the commands that need no I/O. Plain Rust, tested
//! natively; `web` wires it to a Web Worker, `slice` trains, `device` keeps a
//! GPU run with its CPU copy, `views` shows the model's insides.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::device::Mirror;
use super::protocol::*;
use super::views;
use crate::backend::{ready, Device};
use crate::data::{Data, Mnist};
use crate::nn::ModelSpec;
use crate::train::Trainer;

/// The worker's state: what it holds and whether it is training.
pub struct Session {
    pub(super) spec: Option<ModelSpec>,
    /// MNIST once loaded; shared with every trainer made from it.
    pub(super) data: Option<(Data, Data)>,
    pub(super) trainer: Option<Trainer>,
    pub(super) running: bool,
    /// Seconds spent in training steps since the last reset.
    pub(super) elapsed_s: f64,
    /// Predicted classes of the last evaluation, for the examples of a confusion cell.
    pub(super) last_predicted: Vec<u8>,
    /// Loaded weights (checked) for the next trainer, when the data is still loading.
    pub(super) pending_weights: Option<Vec<u8>>,
    /// A checkpoint (and its history) to go on from, for the next trainer.
    pub(super) pending_resume: Option<(Vec<u8>, History)>,
    /// The history of a run just continued from a checkpoint, for `Resumed`.
    pub(super) resumed: Option<History>,
    /// The run's history as the page shows it (each step's loss, each
    /// evaluation), kept with its checkpoints (`Event::Checkpoint`).
    pub(super) history: History,
    /// Where new trainers live.
    pub(super) device: Device,
    /// For a trainer on the GPU: a CPU copy of its model (evaluation and the
    /// views run on it) and its last checkpoint (to go on on the CPU if the GPU
    /// fails), refreshed every `SYNC_EVERY` steps.
    pub(super) mirror: Option<Mirror>,
    /// Changes whenever the trainer is replaced or moved, so that a GPU readback
    /// that comes back afterwards is dropped.
    pub(super) generation: u64,
    /// What the page's backend selector says.
    pub(super) choice: BackendChoice,
    /// Watches the run for one that is not learning.
    pub(super) watch: super::watch::RunWatch,
    /// Whether splitting the run's steps across helper workers pays.
    pub(super) split: super::split::SplitTuner,
    /// Auto's GPU, to measure against the CPU (`device::Auto`).
    pub(super) auto: Option<super::device::Auto>,
    /// Why Auto found no WebGPU (reported with `Backend`).
    pub(super) unavailable: Option<String>,
    /// A split step's parts are out with helpers (the page's worker handles
    /// messages meanwhile, in the middle of the step).
    pub(super) split_out: bool,
    /// The evaluation after a step is under way, its parts out with helpers
    /// (`slice::evaluation_after_step`): a Pause meanwhile leaves the
    /// evaluating to it.
    pub(super) evaluation_out: bool,
    /// A Pause came while a split step was out: its evaluation waits for the
    /// step to finish, so that it shows the weights the run pauses with.
    pub(super) eval_after_step: bool,
    /// Counts the runs this session has begun (`reset`): a slice of training
    /// that outlives its run reports nothing of it (`slice::Slice`).
    pub(super) run: u64,
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
            history: History::default(),
            device: Device::Cpu,
            mirror: None,
            generation: 0,
            choice: BackendChoice::Auto,
            watch: Default::default(),
            split: Default::default(),
            auto: None,
            unavailable: None,
            split_out: false,
            evaluation_out: false,
            eval_after_step: false,
            run: 0,
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
            let mut events = self.sync_blocking();
            events.extend(self.handle_now(cmd));
            return events;
        }
        self.handle_now(cmd)
    }

    fn handle_now(&mut self, cmd: Command) -> Vec<Event> {
        match cmd {
            Command::LoadData { .. } => vec![],
            Command::SetBackend { backend, .. } => {
                // The page's worker makes the GPU (asynchronously) and calls
                // `set_device`; natively there is none to make here.
                self.set_choice(backend);
                self.set_device(Device::Cpu, None)
            }
            Command::SetSpec { spec } => {
                self.spec = Some(spec);
                self.reset()
            }
            // The page's worker starts its helper workers itself (`web`); a
            // native session trains in one thread.
            Command::SetWorkers { .. } => vec![],
            Command::Reset => self.reset(),
            Command::NewRun { run, keep } => {
                // The run left, for the page to keep with its model.
                let trained = self.trainer.as_ref().is_some_and(|t| t.steps_done() > 0);
                let mut events = if keep && trained { self.checkpoint() } else { vec![] };
                events.push(Event::RunStarted { run });
                events.extend(self.reset());
                events
            }
            Command::Train => match self.ensure_trainer() {
                Ok(()) => {
                    // Training again: a Pause's evaluation still waiting is moot.
                    self.eval_after_step = false;
                    self.running = true;
                    vec![Event::Running { running: true }]
                }
                Err(e) => vec![Event::Error { message: e }],
            },
            Command::Pause => {
                self.running = false;
                let mut events = vec![Event::Running { running: false }];
                // A quick look at the test set, so a paused run shows its
                // accuracy: at once, or when the step under way is done.
                if self.split_out {
                    self.eval_after_step = true;
                } else if self.evaluation_out {
                    // The evaluation under way reports these weights.
                } else if self.trainer.as_ref().is_some_and(|t| t.steps_done() > 0) {
                    events.push(self.evaluation(Some(QUICK_EVAL_SAMPLES)));
                }
                events
            }
            Command::Step => {
                // One step: natively at once; the page's worker runs it as a
                // slice of one step after this (see `web`).
                let events = self.prepare_step();
                #[cfg(not(target_arch = "wasm32"))]
                let events = match self.trainer.is_some() {
                    true => [events, self.run_steps(1, f64::INFINITY)].concat(),
                    false => events,
                };
                events
            }
            Command::Predict { pixels } => self.predict(pixels),
            Command::Examples { actual, predicted } => vec![self.examples(actual, predicted)],
            Command::Inspect { index, layer } => self.inspect(index, layer),
            Command::Attention { index } => self.view(index, views::attention_maps),
            Command::Hidden { index } => self.view(index, views::hidden_states),
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
                // A new learning rate: the run is judged afresh.
                self.watch = Default::default();
                vec![]
            }
            Command::SetEpochs { epochs } => {
                // The spec's own check of the training section (the same message as a file's).
                let mut training = self.spec.as_ref().map(|s| s.training.clone()).unwrap_or_default();
                training.epochs = epochs;
                if let Err(e) = training.validate() {
                    return vec![Event::Error { message: e.message }];
                }
                if let Some(spec) = self.spec.as_mut() {
                    spec.training.epochs = epochs;
                }
                if let Some(t) = self.trainer.as_mut() {
                    t.model.spec.training.epochs = epochs;
                }
                vec![]
            }
        }
    }

    pub(super) fn reset(&mut self) -> Vec<Event> {
        self.run += 1;
        self.watch = Default::default();
        self.eval_after_step = false;
        self.trainer = None;
        self.mirror = None;
        self.generation += 1;
        self.pending_weights = None;
        self.pending_resume = None;
        self.resumed = None;
        self.history = History::default();
        self.running = false;
        self.elapsed_s = 0.0;
        vec![Event::Running { running: false }]
    }

    /// Evaluates on the first `limit` test digits and remembers the predictions.
    pub(super) fn evaluation(&mut self, limit: Option<usize>) -> Event {
        let t = self.trainer.as_ref().expect("evaluation needs a trainer");
        let e = crate::train::evaluate(self.view_model().expect("a trainer"), t.test_set(), limit);
        self.evaluation_event(e)
    }

    /// The event of an evaluation's figures, remembered in the run's history
    /// (and its predictions for the confusion matrix's examples).
    pub(super) fn evaluation_event(&mut self, e: crate::train::EvalMetrics) -> Event {
        let t = self.trainer.as_ref().expect("evaluation needs a trainer");
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
        let step = t.steps_done();
        let h = &mut self.history;
        h.evals.retain(|p| p.0 != step);
        h.evals.push((step, e.accuracy));
        h.test_losses.retain(|p| p.0 != step);
        h.test_losses.push((step, e.loss));
        Event::Evaluation {
            step: t.steps_done(),
            accuracy: e.accuracy,
            loss: e.loss,
            samples: e.samples,
            sequence_accuracy: e.sequence_accuracy,
            confusion: e.confusion,
        }
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
        let steps = host.step();
        // The history up to the checkpoint (a GPU run's CPU copy may be behind).
        let h = &self.history;
        let history = History {
            losses: h.losses[..steps.min(h.losses.len())].to_vec(),
            evals: h.evals.iter().copied().filter(|e| e.0 <= steps).collect(),
            test_losses: h.test_losses.iter().copied().filter(|e| e.0 <= steps).collect(),
            elapsed_s: self.elapsed_s as f32,
        };
        match t.checkpoint_to_bytes(&host) {
            Ok(bytes) => vec![Event::Checkpoint {
                spec: t.model.spec.clone(),
                steps,
                elapsed_s: self.elapsed_s as f32,
                checkpoint: B64.encode(bytes),
                history: Box::new(history),
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
    pub(super) fn ensure_model(&mut self) -> Result<(), String> {
        let generated = self.spec.as_ref().is_some_and(|s| s.input.is_tokens());
        if self.trainer.is_none() && self.data.is_none() && !generated {
            return Err("the MNIST data is still loading".into());
        }
        self.ensure_trainer()
    }

    pub(super) fn ensure_trainer(&mut self) -> Result<(), String> {
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
            self.history = history.clone();
            self.resumed = Some(history);
        }
        self.trainer = Some(trainer);
        self.generation += 1;
        if self.device.is_gpu() {
            self.move_trainer(&self.device.clone());
        }
        Ok(())
    }

    /// For tests: split every step across the helpers there are (or never),
    /// without measuring whether it pays (`split::SplitTuner::force`).
    pub fn force_split(&mut self, split: Option<bool>) {
        self.split.force(split);
    }

    /// Where new trainers live, and the trainer's device if it is not there.
    pub fn device(&self) -> &Device {
        &self.device
    }
}
