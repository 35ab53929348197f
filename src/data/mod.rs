//! Data sets: what a spec's `input` names, the MNIST IDX reader, batching and
//! the seeded data order.

pub mod drawing;
pub mod idx;
pub mod mnist;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::nn::spec::{Fix, LayerSpec};

pub use mnist::Mnist;

/// The `input` section of a spec: which data set, and the shape one example is
/// given to the first layer in (without the batch axis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dataset", rename_all = "lowercase", deny_unknown_fields)]
pub enum DatasetSpec {
    /// 28x28 grey digits, 10 classes; `shape` may be [1,28,28], [28,28] or [784].
    Mnist {
        #[serde(default = "mnist_default_shape")]
        shape: Vec<usize>,
    },
}

fn mnist_default_shape() -> Vec<usize> {
    vec![1, 28, 28]
}

impl DatasetSpec {
    pub fn name(&self) -> &'static str {
        match self {
            DatasetSpec::Mnist { .. } => "mnist",
        }
    }

    /// The shape one example is given in (without the batch axis).
    pub fn shape(&self) -> &[usize] {
        match self {
            DatasetSpec::Mnist { shape } => shape,
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            DatasetSpec::Mnist { .. } => 10,
        }
    }

    /// The model's input shape, or why the given one cannot hold this data.
    pub fn validate(&self) -> Result<Vec<usize>, SpecError> {
        let err = |m: String| Err(SpecError { layer: None, layer_type: String::new(), message: format!("input: {m}"), fix: None });
        match self {
            DatasetSpec::Mnist { shape } => {
                let total: usize = shape.iter().product();
                if shape.is_empty() || shape.contains(&0) {
                    return err(format!("shape must have positive sizes, got {shape:?}; use [1, 28, 28]"));
                }
                if total != mnist::PIXELS {
                    return err(format!("shape {shape:?} holds {total} values but an MNIST image has 784 (28x28); use [1, 28, 28]"));
                }
                Ok(shape.clone())
            }
        }
    }

    /// The model's output must be one logit per class.
    pub fn check_output(&self, shape: &[usize], layer_count: usize) -> Result<(), SpecError> {
        let classes = self.classes();
        if shape == [classes] {
            return Ok(());
        }
        let (fix, advice) = if shape.len() > 1 {
            (LayerSpec::Flatten, format!("end with Flatten and Dense {classes}"))
        } else {
            (LayerSpec::Dense { units: classes, activation: None, use_bias: None }, format!("end with Dense {classes}"))
        };
        let last = layer_count.checked_sub(1);
        Err(SpecError {
            layer: last,
            layer_type: String::new(),
            message: format!("the model ends with shape {shape:?} but {} has {classes} classes; {advice}", self.name()),
            fix: Some(Fix::Insert { index: layer_count, layer: fix }),
        })
    }
}

/// A batch of examples: `x` row-major with shape `[batch, ..input shape]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub x: Vec<f32>,
    pub shape: Vec<usize>,
    pub labels: Vec<usize>,
}

/// The data order of BENCHMARKS.md: a Fisher-Yates shuffle driven by a 32-bit LCG
/// (`state = 1664525 * state + 1013904223 mod 2^32`; for i = n-1..1, j = state mod (i+1)).
/// With seed 1 it is the fixed order the PyTorch and TensorFlow.js anchors use.
pub fn lcg_permutation(n: usize, seed: u32) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let j = (state as usize) % (i + 1);
        perm.swap(i, j);
    }
    perm
}

/// The shuffle seed of `epoch` under a spec's `seed`: seed 0, epoch 0 gives
/// LCG seed 1, the benchmarks' order; later epochs reshuffle.
pub fn epoch_shuffle_seed(seed: u64, epoch: usize) -> u32 {
    (seed as u32).wrapping_mul(0x9E37_79B1).wrapping_add(epoch as u32).wrapping_add(1)
}
