//! `TransformerEncoder`: PyTorch's `nn.TransformerEncoderLayer` (`self_attn.*`,
//! `linear1`, `linear2`, `norm1`, `norm2`) over `[steps, features]`.

use serde::{Deserialize, Serialize};

use super::layer_normalization::{norm_params, LayerNorm, EPSILON};
use super::multi_head_attention::{attention_params, check_heads, Attention};
use super::SpecError;
use super::{activation, linear, Activation, Context, Init, LayerConfig, Limit, Mode, Module, Param, Params, Role};
use crate::tensor::Tensor;

/// Self-attention and a feed-forward block (`ff_dim` wide), each with a
/// residual connection and LayerNorm (Vaswani et al. 2017): post-norm as
/// PyTorch's default, or pre-norm with `norm_first` (Xiong et al. 2020).
/// Input and output `[steps, d_model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerEncoder {
    pub num_heads: usize,
    pub ff_dim: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_first: Option<bool>,
}

impl TransformerEncoder {
    /// The feed-forward activation (PyTorch's default: ReLU; GELU is the other
    /// one inference accepts).
    pub fn activation(&self) -> Activation {
        self.activation.unwrap_or(Activation::Relu)
    }

    /// The dropout rate (default 0).
    pub fn dropout(&self) -> f32 {
        self.dropout.unwrap_or(0.0)
    }

    /// Pre-norm (default: post-norm, as PyTorch; the palette adds pre-norm).
    pub fn norm_first(&self) -> bool {
        self.norm_first.unwrap_or(false)
    }
}

impl LayerConfig for TransformerEncoder {
    fn palette_default() -> Self {
        TransformerEncoder {
            num_heads: 4,
            ff_dim: 128,
            activation: Some(Activation::Gelu),
            dropout: None,
            norm_first: Some(true),
        }
    }

    fn param_names() -> &'static [&'static str] {
        &["num_heads", "ff_dim", "activation", "dropout", "norm_first"]
    }

    fn description() -> &'static str {
        "Self-attention, then a feed-forward block of ff_dim, each with a residual connection and layer normalization. [T, features] stays [T, features]."
    }

    fn role(&self) -> Role {
        Role::Attention
    }

    fn limits(&self) -> Vec<Limit> {
        vec![Limit::width("num_heads", self.num_heads), Limit::width("ff_dim", self.ff_dim)]
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let [_, d] = cx.sequence_input()?;
        check_heads(cx, d, self.num_heads, None)?;
        if self.ff_dim == 0 {
            return cx.fail("ff_dim must be at least 1", None);
        }
        if let Some(r) = self.dropout.filter(|r| !(0.0..1.0).contains(r)) {
            return cx.fail(format!("dropout must be in [0, 1), got {r}"), None);
        }
        // PyTorch's TransformerEncoderLayer (and so both exports) takes these two.
        if !matches!(self.activation(), Activation::Relu | Activation::Gelu) {
            let name = serde_json::to_string(&self.activation()).unwrap_or_default();
            return cx.fail(
                format!(
                    "activation must be relu or gelu, as in PyTorch's TransformerEncoderLayer; got {}",
                    name.trim_matches('"')
                ),
                None,
            );
        }
        Ok(cx.input.to_vec())
    }

    fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
        let (d, ff) = (input[1], self.ff_dim);
        let mut params = attention_params("self_attn.", d);
        params.extend([
            Param::new("linear1.weight", vec![ff, d], Init::glorot([ff, d])),
            Param::new("linear1.bias", vec![ff], Init::Zeros),
            Param::new("linear2.weight", vec![d, ff], Init::glorot([d, ff])),
            Param::new("linear2.bias", vec![d], Init::Zeros),
        ]);
        params.extend(norm_params("norm1.", d));
        params.extend(norm_params("norm2.", d));
        params
    }

    fn build(&self, _input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
        Box::new(Encoder {
            attn: Attention::take("self_attn.", p, self.num_heads, false),
            linear1: (p.take("linear1.weight"), p.take("linear1.bias")),
            linear2: (p.take("linear2.weight"), p.take("linear2.bias")),
            norm1: LayerNorm::take("norm1.", p, EPSILON),
            norm2: LayerNorm::take("norm2.", p, EPSILON),
            activation: self.activation(),
            dropout: self.dropout(),
            norm_first: self.norm_first(),
        })
    }
}

struct Encoder {
    attn: Attention,
    linear1: (Tensor, Tensor),
    linear2: (Tensor, Tensor),
    norm1: LayerNorm,
    norm2: LayerNorm,
    activation: Activation,
    dropout: f32,
    norm_first: bool,
}

impl Encoder {
    fn drop(&self, t: Tensor, mode: &mut Mode) -> Tensor {
        match mode {
            Mode::Train(rng) if self.dropout > 0.0 => t.dropout(self.dropout, *rng),
            _ => t,
        }
    }

    fn feed_forward(&self, h: &Tensor, mode: &mut Mode) -> Tensor {
        let a = activation::apply(&linear(h, &self.linear1.0, Some(&self.linear1.1)), Some(self.activation), false);
        linear(&self.drop(a, mode), &self.linear2.0, Some(&self.linear2.1))
    }
}

impl Module for Encoder {
    fn forward(&self, x: &Tensor, mode: &mut Mode, _fold_softmax: bool) -> Tensor {
        if self.norm_first {
            let h = x.add(&self.drop(self.attn.apply(&self.norm1.apply(x)), mode));
            let f = self.feed_forward(&self.norm2.apply(&h), mode);
            h.add(&self.drop(f, mode))
        } else {
            let h = self.norm1.apply(&x.add(&self.drop(self.attn.apply(x), mode)));
            let f = self.feed_forward(&h, mode);
            self.norm2.apply(&h.add(&self.drop(f, mode)))
        }
    }
}
