//! `Dropout`: zeroes a random share of values in training, scaling the rest.

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, LayerConfig, Mode, Module, Params, Stateless};

/// Inverted dropout (Srivastava et al. 2014): in training each value is kept
/// with probability `1 - rate` and scaled by `1 / (1 - rate)`; in evaluation
/// the identity. Any shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    pub rate: f32,
}

impl LayerConfig for Dropout {
    fn palette_default() -> Self {
        Dropout { rate: 0.2 }
    }

    fn param_names() -> &'static [&'static str] {
        &["rate"]
    }

    fn description() -> &'static str {
        "While training, zeroes a random fraction rate of the values (scaling the rest), so the model cannot lean on any one; at test time it does nothing. The shape is unchanged."
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        if !(0.0..1.0).contains(&self.rate) {
            return cx.fail(format!("rate must be in [0, 1), got {}; 0.2 to 0.5 is usual", self.rate), None);
        }
        Ok(cx.input.to_vec())
    }

    fn build(&self, _input: &[usize], _output: &[usize], _p: &mut Params) -> Box<dyn Module> {
        let rate = self.rate;
        Box::new(Stateless(move |x: &crate::tensor::Tensor, mode: &mut Mode, _| match mode {
            Mode::Train(rng) => x.dropout(rate, *rng),
            Mode::Eval => x.clone(),
        }))
    }
}
