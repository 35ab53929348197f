//! Optimizers: SGD with momentum and Adam, with Keras's update rules and defaults.

use ndarray::{ArrayD, IxDyn, Zip};

use crate::nn::spec::OptimizerSpec;
use crate::tensor::{Array, Tensor};

/// Per-parameter state: SGD keeps a velocity in `m`; Adam its two moments.
#[derive(Clone)]
struct Slot {
    m: Array,
    v: Array,
}

#[derive(Clone)]
pub struct Optimizer {
    pub spec: OptimizerSpec,
    slots: Vec<Slot>,
    /// Number of updates applied (Adam's bias correction uses it).
    pub t: u64,
}

impl Optimizer {
    pub fn new(spec: &OptimizerSpec, params: &[(String, Tensor)]) -> Self {
        let slots = params
            .iter()
            .map(|(_, p)| {
                let shape = p.shape();
                let v = if matches!(spec, OptimizerSpec::Adam { .. }) { ArrayD::zeros(IxDyn(&shape)) } else { ArrayD::zeros(IxDyn(&[0])) };
                Slot { m: ArrayD::zeros(IxDyn(&shape)), v }
            })
            .collect();
        Optimizer { spec: spec.clone(), slots, t: 0 }
    }

    pub fn lr(&self) -> f32 {
        self.spec.lr()
    }
    pub fn set_lr(&mut self, lr: f32) {
        self.spec.set_lr(lr);
    }

    /// Applies one update from the gradients on `params` (same order as at `new`).
    /// Parameters without a gradient are left alone.
    pub fn step(&mut self, params: &[(String, Tensor)]) {
        self.t += 1;
        let t = self.t as i32;
        for ((_, p), slot) in params.iter().zip(&mut self.slots) {
            let Some(g) = p.grad() else { continue };
            let mut w = p.value_mut();
            match self.spec {
                OptimizerSpec::SGD { lr, momentum } => {
                    // Keras: v = momentum * v - lr * g; w += v
                    Zip::from(&mut *w).and(&mut slot.m).and(&*g).for_each(|w, v, &g| {
                        *v = momentum * *v - lr * g;
                        *w += *v;
                    });
                }
                OptimizerSpec::Adam { lr, beta_1, beta_2, epsilon } => {
                    // Keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); w -= alpha * m / (sqrt(v) + eps)
                    let alpha = lr * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
                    Zip::from(&mut *w).and(&mut slot.m).and(&mut slot.v).and(&*g).for_each(|w, m, v, &g| {
                        *m += (g - *m) * (1.0 - beta_1);
                        *v += (g * g - *v) * (1.0 - beta_2);
                        *w -= alpha * *m / (v.sqrt() + epsilon);
                    });
                }
            }
        }
    }
}
