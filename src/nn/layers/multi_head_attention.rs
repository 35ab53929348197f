//! `MultiHeadAttention`: multi-head self-attention over `[steps, features]`,
//! with PyTorch's `nn.MultiheadAttention` parameters (`in_proj_weight`
//! `[3E, E]`, `in_proj_bias` `[3E]`, `out_proj.weight` `[E, E]`,
//! `out_proj.bias` `[E]`). Also the attention of `TransformerEncoder`.

use std::cell::RefCell;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{linear, Context, Init, LayerConfig, Limit, Mode, Module, Param, Params, Role};
use crate::tensor::Tensor;

/// Self-attention (Vaswani et al. 2017): `softmax(Q K^T / sqrt(d_head)) V` per
/// head, over `[steps, E]`; `key_dim` must be `E / num_heads`, as in PyTorch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadAttention {
    pub num_heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_dim: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal: Option<bool>,
}

impl MultiHeadAttention {
    /// Whether position `i` sees only positions `<= i` (default: no).
    pub fn causal(&self) -> bool {
        self.causal.unwrap_or(false)
    }
}

impl LayerConfig for MultiHeadAttention {
    fn palette_default() -> Self {
        MultiHeadAttention { num_heads: 4, key_dim: None, causal: None }
    }

    fn param_names() -> &'static [&'static str] {
        &["num_heads", "key_dim", "causal"]
    }

    fn description() -> &'static str {
        "Self-attention: each token takes in the others, weighted by how well its query matches their keys, in num_heads heads. [T, features] stays [T, features]."
    }

    fn role(&self) -> Role {
        Role::Attention
    }

    fn limits(&self) -> Vec<Limit> {
        vec![Limit::width("num_heads", self.num_heads), Limit::width("key_dim", self.key_dim.unwrap_or(0))]
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let [_, d] = cx.sequence_input()?;
        check_heads(cx, d, self.num_heads, self.key_dim)?;
        Ok(cx.input.to_vec())
    }

    fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
        attention_params("", input[1])
    }

    fn build(&self, _input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
        Box::new(Attention::take("", p, self.num_heads, self.causal()))
    }
}

/// `num_heads` must divide the features `d`, and `key_dim` be `d / num_heads`.
pub(crate) fn check_heads(cx: &Context, d: usize, heads: usize, key_dim: Option<usize>) -> Result<(), SpecError> {
    if heads == 0 || d % heads != 0 {
        let options: Vec<String> = (1..=d).filter(|h| d % h == 0).map(|h| h.to_string()).collect();
        return cx.fail(
            format!("num_heads {heads} must divide the feature size {d}; use one of {}", options.join(", ")),
            None,
        );
    }
    if let Some(k) = key_dim.filter(|&k| k != d / heads) {
        return cx.fail(
            format!("key_dim {k} must be features / num_heads = {} (as in PyTorch); leave it out", d / heads),
            None,
        );
    }
    Ok(())
}

/// The parameters of a PyTorch `MultiheadAttention` under `prefix`.
pub(crate) fn attention_params(prefix: &str, d: usize) -> Vec<Param> {
    vec![
        Param::new(format!("{prefix}in_proj_weight"), vec![3 * d, d], Init::glorot([3 * d, d])),
        Param::new(format!("{prefix}in_proj_bias"), vec![3 * d], Init::Zeros),
        Param::new(format!("{prefix}out_proj.weight"), vec![d, d], Init::glorot([d, d])),
        Param::new(format!("{prefix}out_proj.bias"), vec![d], Init::Zeros),
    ]
}

thread_local! {
    /// Set only while [`capture`] runs, so ordinary steps pay nothing.
    static CAPTURE: RefCell<Option<Vec<ArrayD<f32>>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns the attention weights `[heads, T, T]` of example 0 of
/// every attention computed meanwhile on this thread, in order.
pub fn capture(f: impl FnOnce()) -> Vec<ArrayD<f32>> {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default()
}

/// Multi-head self-attention parameters (PyTorch `MultiheadAttention` layout).
pub(crate) struct Attention {
    in_w: Tensor,
    in_b: Tensor,
    out_w: Tensor,
    out_b: Tensor,
    heads: usize,
    causal: bool,
}

impl Attention {
    /// The parameters of [`attention_params`] under `prefix`, in order.
    pub(crate) fn take(prefix: &str, p: &mut Params, heads: usize, causal: bool) -> Attention {
        Attention {
            in_w: p.take(&format!("{prefix}in_proj_weight")),
            in_b: p.take(&format!("{prefix}in_proj_bias")),
            out_w: p.take(&format!("{prefix}out_proj.weight")),
            out_b: p.take(&format!("{prefix}out_proj.bias")),
            heads,
            causal,
        }
    }

    /// softmax(Q K^T / sqrt(d_head)) V per head, over `x` `[N, T, E]`.
    pub(crate) fn apply(&self, x: &Tensor) -> Tensor {
        // [N, T, 3E]
        let qkv = linear(x, &self.in_w, Some(&self.in_b));
        // The views want the weights: only then is the attention composed
        // from primitives on the CPU (`Tensor::attention` fuses it).
        let out = if CAPTURE.with(|c| c.borrow().is_some()) {
            let (out, weights) = qkv.attention_composed(self.heads, self.causal);
            CAPTURE.with(|c| {
                if let Some(maps) = c.borrow_mut().as_mut() {
                    // Example 0's weights, [heads, T, T].
                    maps.push(weights.to_array().index_axis(ndarray::Axis(0), 0).to_owned());
                }
            });
            out
        } else {
            qkv.attention(self.heads, self.causal)
        };
        linear(&out, &self.out_w, Some(&self.out_b))
    }
}

impl Module for Attention {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, _fold_softmax: bool) -> Tensor {
        self.apply(x)
    }
}
