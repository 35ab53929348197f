//! `Embedding`: token ids to vectors (PyTorch `nn.Embedding`).

use serde::{Deserialize, Serialize};

use super::{Context, Init, LayerConfig, Limit, Mode, Module, Param, Params};
use super::{Fix, SpecError};
use crate::tensor::Tensor;

/// Token ids `[steps]` -> vectors `[steps, output_dim]`, row `id` of `weight`
/// `[input_dim, output_dim]` (Keras's start: uniform in [-0.05, 0.05]). Only
/// as the first layer of a model on a sequence task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedding {
    pub input_dim: usize,
    pub output_dim: usize,
}

impl LayerConfig for Embedding {
    fn palette_default() -> Self {
        Embedding { input_dim: 10, output_dim: 64 }
    }

    fn param_names() -> &'static [&'static str] {
        &["input_dim", "output_dim"]
    }

    fn description() -> &'static str {
        "Looks up a trained vector of output_dim values for each token id: [T] ids become [T, output_dim]."
    }

    fn limits(&self) -> Vec<Limit> {
        vec![Limit::width("input_dim", self.input_dim), Limit::width("output_dim", self.output_dim)]
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let Some(vocab) = cx.token_vocab.filter(|_| cx.index == 0) else {
            let fix = Some(Fix::Remove { index: cx.index });
            return match cx.token_vocab {
                Some(_) => cx.fail("takes token ids, so it must be the first layer: move it to the top, or remove it", fix),
                None => cx.fail(
                    "takes token ids, which only a sequence task (reverse, sort, copy) gives; this model's input is images: remove it, or choose a sequence task",
                    fix,
                ),
            };
        };
        if self.output_dim == 0 {
            return cx.fail("output_dim must be at least 1", None);
        }
        if self.input_dim < vocab {
            return cx.fail(
                format!(
                    "input_dim {} is smaller than the task's vocabulary of {vocab} tokens; use input_dim {vocab}",
                    self.input_dim
                ),
                None,
            );
        }
        Ok(vec![cx.input[0], self.output_dim])
    }

    fn params(&self, _input: &[usize], _output: &[usize]) -> Vec<Param> {
        vec![Param::new("weight", vec![self.input_dim, self.output_dim], Init::Uniform(0.05))]
    }

    fn build(&self, _input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
        Box::new(EmbeddingModule { weight: p.take("weight") })
    }
}

struct EmbeddingModule {
    weight: Tensor,
}

impl Module for EmbeddingModule {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, _fold_softmax: bool) -> Tensor {
        let s = x.shape();
        let ids: Vec<usize> = x.to_array().iter().map(|&v| v.max(0.0) as usize).collect();
        self.weight.gather_rows(&ids).reshape(&[s[0], s[1], self.weight.shape()[1]])
    }
}
