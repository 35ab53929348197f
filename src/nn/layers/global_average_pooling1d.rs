//! `GlobalAveragePooling1D`: the mean over the steps of a sequence.

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, LayerConfig, Module, Params, Stateless};

/// `[steps, features]` -> `[features]`, the mean over steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAveragePooling1D {}

impl LayerConfig for GlobalAveragePooling1D {
    fn palette_default() -> Self {
        GlobalAveragePooling1D {}
    }

    fn param_names() -> &'static [&'static str] {
        &[]
    }

    fn description() -> &'static str {
        "Averages over the sequence, one vector for the whole input: [T, features] becomes [features]."
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let [_, d] = cx.sequence_input()?;
        Ok(vec![d])
    }

    fn build(&self, _input: &[usize], _output: &[usize], _p: &mut Params) -> Box<dyn Module> {
        Box::new(Stateless(|x: &crate::tensor::Tensor, _: &mut super::Mode, _| x.mean(&[1], false)))
    }
}
