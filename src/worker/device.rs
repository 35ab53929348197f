//! A run on the GPU: the trainer moves between devices, a CPU copy of its
//! model (for evaluation and the views) and its last checkpoint (to go on on
//! the CPU if the GPU fails) are kept up to date, and a failure falls back.

use std::rc::Rc;

use super::protocol::*;
use super::session::Session;
use super::slice::SessionCell;
use crate::backend::{ready, Device, Gpu};
use crate::error::Error;
use crate::train::{Checkpoint, HostCheckpoint};

/// Auto with a GPU at hand: the GPU, and for which model and batch size the
/// two backends were last measured (and how fast each was).
pub(super) struct Auto {
    gpu: Rc<Gpu>,
    /// `measure_key` of what was measured.
    measured: Option<String>,
    speeds: Option<Speeds>,
    /// For tests: the backend forced to lose Auto's measurement (`measure::measure`).
    slow: Option<String>,
}

/// What Auto's measurement depends on: the model and the batch size.
fn measure_key(spec: &crate::nn::ModelSpec) -> String {
    serde_json::to_string(&(&spec.input, &spec.layers, spec.training.batch_size)).unwrap_or_default()
}

/// The CPU copy of a GPU run.
pub(super) struct Mirror {
    pub(super) model: crate::nn::Model,
    pub(super) host: HostCheckpoint,
}

/// Steps between refreshes of a GPU run's CPU copy.
pub const SYNC_EVERY: usize = 25;

impl Session {
    /// The model the views, predictions and evaluations read: the trainer's, or
    /// for a GPU run its CPU copy.
    pub(super) fn view_model(&self) -> Option<&crate::nn::Model> {
        match (&self.mirror, &self.trainer) {
            (Some(m), Some(_)) => Some(&m.model),
            (None, Some(t)) => Some(&t.model),
            _ => None,
        }
    }

    /// Moves the trainer to `device`: to the GPU from the CPU state (immediate),
    /// or to the CPU from the last checkpoint of the GPU run.
    pub(super) fn move_trainer(&mut self, device: &Device) {
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
            // Nothing moves: a step in flight stays valid (dropping it would
            // leave its update applied and uncounted).
            _ => return,
        }
        self.generation += 1;
    }

    /// Trains on `device` from now on (the current run moves there, see
    /// `move_trainer`). `notice` says why, when it is not what the page chose.
    pub fn set_device(&mut self, device: Device, notice: Option<String>) -> Vec<Event> {
        self.move_trainer(&device);
        self.device = device;
        vec![self.backend_event(notice)]
    }

    /// What the page's backend selector says (reported with every `Backend`
    /// event). Any choice but Auto forgets Auto's GPU and measurements.
    pub fn set_choice(&mut self, choice: BackendChoice) {
        self.choice = choice;
        self.unavailable = None;
        if choice != BackendChoice::Auto {
            self.auto = None;
        }
    }

    /// Auto found no WebGPU (`why`, for details on demand): training runs on
    /// the CPU, which is the normal case, not a problem to report.
    pub fn set_unavailable(&mut self, why: String) -> Vec<Event> {
        self.unavailable = Some(why);
        self.set_device(Device::Cpu, None)
    }

    /// Auto with `gpu` at hand: training stays where it is until the next
    /// slice measures both backends on the model (`needs_measuring`).
    /// `slow` (tests) names a backend forced to lose the measurement.
    pub fn set_auto_gpu(&mut self, gpu: Rc<Gpu>, slow: Option<String>) -> Vec<Event> {
        self.auto = Some(Auto { gpu, measured: None, speeds: None, slow });
        vec![self.backend_event(None)]
    }

    /// Auto has a GPU and has not measured the current model and batch size
    /// (on a new model, or a new batch size, it measures again).
    pub fn needs_measuring(&self) -> bool {
        match (&self.auto, &self.trainer) {
            (Some(auto), Some(t)) => auto.measured.as_deref() != Some(measure_key(&t.model.spec).as_str()),
            _ => false,
        }
    }

    fn backend_event(&self, notice: Option<String>) -> Event {
        let choice = self.choice;
        let (active, adapter) = match &self.device {
            Device::Cpu => ("cpu".to_string(), self.auto.as_ref().map(|a| a.gpu.adapter.clone()).unwrap_or_default()),
            Device::Gpu(g) => ("webgpu".to_string(), g.adapter.clone()),
        };
        let speeds = self.auto.as_ref().and_then(|a| a.speeds);
        let (unavailable, cpu) = (self.unavailable.clone(), crate::backend::cpu::KERNELS.to_string());
        Event::Backend { choice, active, adapter, notice, speeds, unavailable, cpu }
    }

    /// The GPU failed (`reason`): training goes on on the CPU from the last
    /// checkpoint of the run, with a notice that says from which step (and
    /// Auto stops measuring a GPU that failed).
    pub fn fall_back(&mut self, reason: &str) -> Vec<Event> {
        self.auto = None;
        let from = self.mirror.as_ref().map(|m| m.host.step());
        self.move_trainer(&Device::Cpu);
        self.device = Device::Cpu;
        let at = match from {
            Some(step) if step > 0 => format!(" from the weights of step {step}"),
            _ => String::new(),
        };
        vec![self.backend_event(Some(format!(
            "WebGPU stopped working ({reason}). Training goes on on the CPU{at}; nothing else is lost."
        )))]
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

    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Measures the current model on Auto's GPU and on the CPU (a few real steps
/// each, about a second; `train::measure`) and trains on the faster from now
/// on; the `Backend` event carries both figures. A GPU that fails while
/// measuring is left for the CPU, with a notice.
pub async fn measure_auto(cell: &impl SessionCell) -> Vec<Event> {
    let Some((spec, train, gpu, slow)) = cell.with(|s| {
        let t = s.trainer.as_ref()?;
        let auto = s.auto.as_ref()?;
        Some((t.model.spec.clone(), t.train_set().clone(), auto.gpu.clone(), auto.slow.clone()))
    }) else {
        return vec![];
    };
    let gpu_device = Device::Gpu(gpu);
    let measured = crate::train::measure::measure(&spec, &train, &gpu_device, slow.as_deref()).await;
    // A GPU run leaving for the CPU goes from its current weights.
    let mut events = vec![];
    let to_cpu = matches!(&measured, Ok(speeds) if !speeds.gpu_wins()) || matches!(measured, Err(Error::Gpu(_)));
    if to_cpu && cell.with(|s| s.mirror_stale()) {
        events = super::slice::sync(cell).await;
    }
    events.extend(cell.with(|s| {
        let key = measure_key(&spec);
        // Measured for a model that has been replaced meanwhile: the next
        // slice measures the new one.
        if s.trainer.as_ref().map(|t| measure_key(&t.model.spec)) != Some(key.clone()) {
            return vec![];
        }
        let Some(auto) = s.auto.as_mut() else { return vec![] };
        auto.measured = Some(key);
        match measured {
            Ok(speeds) => {
                auto.speeds = Some(speeds);
                let device = if speeds.gpu_wins() { gpu_device } else { Device::Cpu };
                s.set_device(device, None)
            }
            Err(Error::Gpu(why)) => {
                s.auto = None;
                s.set_device(
                    Device::Cpu,
                    Some(format!("WebGPU failed while Auto measured it ({why}); training runs on the CPU.")),
                )
            }
            // Not the GPU's doing (an invalid model, say): training stays
            // where it is and says why itself.
            Err(_) => vec![],
        }
    }));
    events
}
