//! Optimizers: SGD with momentum and Adam, with Keras's update rules and defaults.

use crate::backend::{apply_update, Device, StepCounters, Storage, Update};
use crate::nn::spec::OptimizerSpec;
use crate::tensor::Tensor;

/// Per-parameter state: SGD keeps a velocity in `m`; Adam its two moments. On
/// the parameter's device, so a GPU model's updates never leave the GPU.
struct Slot {
    m: Storage,
    v: Storage,
}

pub struct Optimizer {
    pub spec: OptimizerSpec,
    slots: Vec<Slot>,
    /// Number of updates applied (Adam's bias correction uses it).
    pub t: u64,
}

/// A copy that later updates do not reach: CPU state is copied (updated in
/// place), GPU state shared (its updates write new arrays, `apply_update`).
impl Clone for Optimizer {
    fn clone(&self) -> Self {
        let slots = self.slots.iter().map(|s| Slot { m: s.m.clone(), v: s.v.clone() }).collect();
        Optimizer { spec: self.spec.clone(), slots, t: self.t }
    }
}

impl Optimizer {
    pub fn new(spec: &OptimizerSpec, params: &[(String, Tensor)]) -> Self {
        let slots = params
            .iter()
            .map(|(_, p)| {
                let (shape, device) = (p.shape(), p.device());
                let v = if matches!(spec, OptimizerSpec::Adam { .. }) {
                    Storage::full(&shape, 0.0, &device)
                } else {
                    Storage::full(&[0], 0.0, &Device::Cpu)
                };
                Slot { m: Storage::full(&shape, 0.0, &device), v }
            })
            .collect();
        Optimizer { spec: spec.clone(), slots, t: 0 }
    }

    /// The state as `(m, v)` storages per parameter (a checkpoint reads them back).
    pub(crate) fn state(&self) -> Vec<(&Storage, &Storage)> {
        self.slots.iter().map(|s| (&s.m, &s.v)).collect()
    }

    /// Replaces the state with CPU arrays (from a checkpoint), on `device`.
    pub fn set_state(&mut self, state: Vec<(crate::tensor::Array, crate::tensor::Array)>, device: &Device) {
        for (s, (m, v)) in self.slots.iter_mut().zip(state) {
            s.m = Storage::Cpu(m).upload_to(device);
            s.v = if !v.is_empty() && matches!(self.spec, OptimizerSpec::Adam { .. }) {
                Storage::Cpu(v).upload_to(device)
            } else {
                Storage::Cpu(v)
            };
        }
    }

    pub fn lr(&self) -> f32 {
        self.spec.lr()
    }
    pub fn set_lr(&mut self, lr: f32) {
        self.spec.set_lr(lr);
    }

    /// Applies one update from the gradients on `params` (same order as at `new`),
    /// on the parameters' device, adding the gradients' NaN and infinite
    /// entries to counter `slot` of `counters` (read with the step's metrics).
    /// Parameters without a gradient are left alone.
    pub fn step(&mut self, params: &[(String, Tensor)], counters: &StepCounters, slot: usize) {
        self.t += 1;
        let t = self.t as i32;
        let update = match self.spec {
            OptimizerSpec::SGD { lr, momentum } => Update::Sgd { lr, momentum },
            OptimizerSpec::Adam { lr, beta_1, beta_2, epsilon } => {
                // Keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)
                let alpha = lr * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
                Update::Adam { alpha, beta_1, beta_2, epsilon }
            }
        };
        for ((_, p), state) in params.iter().zip(&mut self.slots) {
            let Some(g) = p.grad_storage() else { continue };
            let mut w = p.0.value.borrow_mut();
            apply_update(update, &mut w, &mut state.m, &mut state.v, &g, (counters, slot));
        }
    }
}
