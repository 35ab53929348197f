//! `LayerNormalization`: normalises the last axis (PyTorch `nn.LayerNorm`).

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, Init, LayerConfig, Mode, Module, Param, Params};
use crate::tensor::Tensor;

/// PyTorch's `LayerNorm` epsilon, also Keras's for the layers layerlab exports.
pub const EPSILON: f32 = 1e-5;

/// `(x - mean) / sqrt(var + epsilon) * weight + bias` over the last axis
/// (Ba et al. 2016), any shape `[.., d]`; `weight` and `bias` `[d]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNormalization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f32>,
}

impl LayerNormalization {
    /// The epsilon, default [`EPSILON`].
    pub fn epsilon(&self) -> f32 {
        self.epsilon.unwrap_or(EPSILON)
    }
}

impl LayerConfig for LayerNormalization {
    fn palette_default() -> Self {
        LayerNormalization { epsilon: None }
    }

    fn param_names() -> &'static [&'static str] {
        &["epsilon"]
    }

    fn description() -> &'static str {
        "Rescales each token's features to mean 0 and variance 1, then a trained scale and shift. The shape is unchanged."
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        if let Some(e) = self.epsilon.filter(|e| !(*e > 0.0 && e.is_finite())) {
            return cx.fail(format!("epsilon must be a small positive number, got {e}; 1e-5 is usual"), None);
        }
        Ok(cx.input.to_vec())
    }

    fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
        norm_params("", *input.last().unwrap())
    }

    fn build(&self, _input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
        Box::new(LayerNorm::take("", p, self.epsilon()))
    }
}

/// `{prefix}weight` (ones) and `{prefix}bias` (zeros), `[d]`.
pub(crate) fn norm_params(prefix: &str, d: usize) -> Vec<Param> {
    vec![
        Param::new(format!("{prefix}weight"), vec![d], Init::Ones),
        Param::new(format!("{prefix}bias"), vec![d], Init::Zeros),
    ]
}

/// A LayerNorm's parameters and epsilon.
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    pub(crate) fn take(prefix: &str, p: &mut Params, eps: f32) -> LayerNorm {
        LayerNorm { weight: p.take(&format!("{prefix}weight")), bias: p.take(&format!("{prefix}bias")), eps }
    }

    /// Over the last axis of `x`, from primitives.
    pub(crate) fn apply(&self, x: &Tensor) -> Tensor {
        x.layer_norm(&self.weight, &self.bias, self.eps)
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, _fold_softmax: bool) -> Tensor {
        self.apply(x)
    }
}
