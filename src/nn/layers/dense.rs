//! `Dense`: a fully connected layer over the last axis (PyTorch `nn.Linear`).

use serde::{Deserialize, Serialize};

use super::{activation, Activation, Context, Init, LayerConfig, Limit, Mode, Module, Param, Params};
use super::{Fix, SpecError};
use crate::tensor::Tensor;

/// `y = x W^T + b` over the last axis, then the activation: input
/// `[.., features]`, output `[.., units]`; `weight` `[units, features]`,
/// `bias` `[units]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    pub units: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_bias: Option<bool>,
}

impl Dense {
    /// A `Dense` of `units` with no activation and a bias (the usual output layer).
    pub fn new(units: usize) -> Dense {
        Dense { units, activation: None, use_bias: None }
    }

    /// Whether it has a bias (Keras's default: yes).
    pub fn use_bias(&self) -> bool {
        self.use_bias.unwrap_or(true)
    }
}

impl LayerConfig for Dense {
    fn palette_default() -> Self {
        Dense { units: 64, activation: Some(Activation::Relu), use_bias: None }
    }

    fn param_names() -> &'static [&'static str] {
        &["units", "activation", "use_bias"]
    }

    fn description() -> &'static str {
        "Fully connected: each of units outputs is a weighted sum of all the inputs plus a bias: [.., inputs] becomes [.., units]."
    }

    fn activation(&self) -> Option<Activation> {
        self.activation
    }

    fn limits(&self) -> Vec<Limit> {
        vec![Limit::width("units", self.units)]
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        if self.units == 0 {
            return cx.fail("units must be at least 1", None);
        }
        if cx.input.len() > 2 {
            return cx.fail(
                format!("expects a flat input but gets {:?}; insert Flatten before it", cx.input),
                Some(Fix::Insert { index: cx.index, layer: super::LayerSpec::Flatten(super::flatten::Flatten {}) }),
            );
        }
        let mut out = cx.input.to_vec();
        *out.last_mut().unwrap() = self.units;
        Ok(out)
    }

    fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
        let features = *input.last().unwrap();
        let mut params = vec![Param::new("weight", vec![self.units, features], Init::glorot([self.units, features]))];
        if self.use_bias() {
            params.push(Param::new("bias", vec![self.units], Init::Zeros));
        }
        params
    }

    fn build(&self, _input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
        Box::new(DenseModule { weight: p.take("weight"), bias: p.take_if("bias"), activation: self.activation })
    }
}

struct DenseModule {
    weight: Tensor,
    bias: Option<Tensor>,
    activation: Option<Activation>,
}

impl Module for DenseModule {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, fold_softmax: bool) -> Tensor {
        activation::apply(&super::linear(x, &self.weight, self.bias.as_ref()), self.activation, fold_softmax)
    }
}
