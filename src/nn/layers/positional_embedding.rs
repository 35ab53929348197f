//! `PositionalEmbedding`: adds a position code to `[steps, features]`.

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, Init, LayerConfig, Mode, Module, Param, Params};
use crate::tensor::Tensor;

/// How positions are coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionKind {
    /// A trained `weight` `[steps, features]`, starting as N(0, 0.02^2).
    #[default]
    Learned,
    /// The fixed sinusoids of "Attention is all you need" (Vaswani et al.
    /// 2017): sin on even features, cos on odd ones.
    Sinusoidal,
}

/// `x + P` for `x` `[steps, features]`, `P` learned or sinusoidal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionalEmbedding {
    #[serde(default)]
    pub kind: PositionKind,
}

impl LayerConfig for PositionalEmbedding {
    fn palette_default() -> Self {
        PositionalEmbedding { kind: PositionKind::Learned }
    }

    fn param_names() -> &'static [&'static str] {
        &["kind"]
    }

    fn description() -> &'static str {
        "Adds each position's vector to its token, so attention knows the order: learned, or fixed sinusoids. The shape is unchanged."
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        cx.sequence_input()?;
        Ok(cx.input.to_vec())
    }

    fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
        match self.kind {
            PositionKind::Learned => vec![Param::new("weight", vec![input[0], input[1]], Init::Normal(0.02))],
            PositionKind::Sinusoidal => vec![],
        }
    }

    fn build(&self, input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
        let (t, d) = (input[0], input[1]);
        let learned = (self.kind == PositionKind::Learned).then(|| p.take("weight"));
        let table = ArrayD::from_shape_fn(IxDyn(&[t, d]), |i| {
            let (pos, k) = (i[0] as f32, i[1]);
            let angle = pos / 10000f32.powf((k - k % 2) as f32 / d as f32);
            if k % 2 == 0 {
                angle.sin()
            } else {
                angle.cos()
            }
        });
        Box::new(Position { learned, table: Tensor::new(table) })
    }
}

struct Position {
    learned: Option<Tensor>,
    table: Tensor,
}

impl Module for Position {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, _fold_softmax: bool) -> Tensor {
        x.add(self.learned.as_ref().unwrap_or(&self.table))
    }

    fn constants(&self) -> Vec<Tensor> {
        vec![self.table.clone()]
    }
}
