//! Activations: the `activation` field of Dense, Conv2D and
//! TransformerEncoder, and the five activation layers (`ReLU`, `Tanh`,
//! `Sigmoid`, `GELU`, `Softmax`), which apply one to any shape.

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, LayerConfig, Module, Params, Stateless};
use crate::tensor::Tensor;

/// An elementwise (or, for softmax, last-axis) function, by Keras's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Linear,
    Relu,
    Tanh,
    Sigmoid,
    /// GELU, tanh approximation (Hendrycks and Gimpel 2016).
    Gelu,
    /// Over the last axis.
    Softmax,
}

/// `activation` applied to `x`; `None` and `Linear` are the identity.
/// `fold_softmax`: this softmax is the model's output softmax, which the loss
/// applies to the logits (log-sum-exp), so it is left out here.
pub fn apply(x: &Tensor, activation: Option<Activation>, fold_softmax: bool) -> Tensor {
    match activation {
        None | Some(Activation::Linear) => x.clone(),
        Some(Activation::Relu) => x.relu(),
        Some(Activation::Tanh) => x.tanh(),
        Some(Activation::Sigmoid) => x.sigmoid(),
        Some(Activation::Gelu) => x.gelu(),
        Some(Activation::Softmax) if fold_softmax => x.clone(),
        Some(Activation::Softmax) => x.softmax(),
    }
}

macro_rules! activation_layer {
    ($($(#[$doc:meta])* $name:ident => $activation:ident: $description:literal,)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {}

        impl LayerConfig for $name {
            fn palette_default() -> Self {
                $name {}
            }

            fn param_names() -> &'static [&'static str] {
                &[]
            }

            fn description() -> &'static str {
                $description
            }

            fn activation(&self) -> Option<Activation> {
                Some(Activation::$activation)
            }

            fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
                Ok(cx.input.to_vec())
            }

            fn build(&self, _input: &[usize], _output: &[usize], _p: &mut Params) -> Box<dyn Module> {
                Box::new(Stateless(|x: &Tensor, _: &mut super::Mode, fold_softmax| {
                    apply(x, Some(Activation::$activation), fold_softmax)
                }))
            }
        }
    )*};
}

activation_layer! {
    /// `max(x, 0)`, any shape.
    ReLU => Relu: "max(0, x) for every value: negatives become 0. The shape is unchanged.",
    /// `tanh(x)`, any shape.
    Tanh => Tanh: "tanh(x) for every value, into (-1, 1). The shape is unchanged.",
    /// `1 / (1 + e^-x)`, any shape.
    Sigmoid => Sigmoid: "1 / (1 + e^-x) for every value, into (0, 1). The shape is unchanged.",
    /// GELU (tanh approximation), any shape.
    GELU => Gelu: "x times the chance a normal value is below x: a smooth ReLU, as transformers use. The shape is unchanged.",
    /// Softmax over the last axis; as the model's last layer it makes the
    /// output probabilities (the loss applies it to logits itself).
    Softmax => Softmax: "Turns the last axis into probabilities that sum to 1. The shape is unchanged.",
}
