//! A run on the GPU: the trainer moves between devices, a CPU copy of its
//! model (for evaluation and the views) and its last checkpoint (to go on on
//! the CPU if the GPU fails) are kept up to date, and a failure falls back.

use super::protocol::*;
use super::session::Session;
use crate::backend::{ready, Device};
use crate::train::{Checkpoint, HostCheckpoint};

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
            _ => {}
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

    /// What the page's backend selector says (reported with every `Backend` event).
    pub fn set_choice(&mut self, choice: BackendChoice) {
        self.choice = choice;
    }

    fn backend_event(&self, notice: Option<String>) -> Event {
        let choice = self.choice;
        let (active, adapter) = match &self.device {
            Device::Cpu => ("cpu".to_string(), String::new()),
            Device::Gpu(g) => ("webgpu".to_string(), g.adapter.clone()),
        };
        Event::Backend { choice, active, adapter, notice }
    }

    /// The GPU failed (`reason`): training goes on on the CPU from the last
    /// checkpoint of the run, with a notice that says from which step.
    pub fn fall_back(&mut self, reason: &str) -> Vec<Event> {
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
