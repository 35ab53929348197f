//! `Flatten`: one example's values in one axis, in memory order.

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{volume, Context, LayerConfig, Module, Params, Stateless};

/// `[..]` -> `[product]`, channels first, then rows, then columns (as
/// PyTorch's `nn.Flatten`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flatten {}

impl LayerConfig for Flatten {
    fn palette_default() -> Self {
        Flatten {}
    }

    fn param_names() -> &'static [&'static str] {
        &[]
    }

    fn description() -> &'static str {
        "Lays all the values out in one row, for Dense layers: [C, H, W] becomes [C x H x W]."
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        Ok(vec![volume(cx.input)])
    }

    fn build(&self, _input: &[usize], _output: &[usize], _p: &mut Params) -> Box<dyn Module> {
        Box::new(Stateless(|x: &crate::tensor::Tensor, _: &mut super::Mode, _| {
            let s = x.shape();
            x.reshape(&[s[0], s[1..].iter().product()])
        }))
    }
}
