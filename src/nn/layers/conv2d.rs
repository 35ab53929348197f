//! `Conv2D`: 2-D convolution over `[channels, height, width]` images.

use serde::{Deserialize, Serialize};

use super::{activation, Activation, Context, Init, LayerConfig, Limit, Mode, Module, Param, Params, Role, Size2};
use super::{SpecError, MAX_VALUES_PER_EXAMPLE};
use crate::tensor::Tensor;

/// Keras's padding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// No padding: the output shrinks by `kernel - 1`.
    #[default]
    Valid,
    /// Output `ceil(input / stride)`, TensorFlow's rule: the odd row or column
    /// of padding goes at the end.
    Same,
}

/// Cross-correlation as PyTorch's `nn.Conv2d`, then the activation: input
/// `[channels, h, w]`, output `[filters, oh, ow]`; `weight`
/// `[filters, channels, kh, kw]`, `bias` `[filters]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2D {
    pub filters: usize,
    pub kernel_size: Size2,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strides: Option<Size2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<Padding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_bias: Option<bool>,
}

impl Conv2D {
    /// `[sh, sw]` (default 1).
    pub fn strides(&self) -> [usize; 2] {
        self.strides.map_or([1, 1], Size2::hw)
    }

    /// The padding mode (default `valid`).
    pub fn padding(&self) -> Padding {
        self.padding.unwrap_or_default()
    }

    /// Whether it has a bias (Keras's default: yes).
    pub fn use_bias(&self) -> bool {
        self.use_bias.unwrap_or(true)
    }

    /// Rows and columns of zeros around the input, `[top, bottom, left, right]`,
    /// for an input `[c, h, w]` and the output `[f, oh, ow]` inference gave.
    pub fn pad(&self, input: &[usize], output: &[usize]) -> [usize; 4] {
        match self.padding() {
            Padding::Valid => [0; 4],
            Padding::Same => {
                let [kh, kw] = self.kernel_size.hw();
                let [sh, sw] = self.strides();
                let total = |inp: usize, out: usize, k: usize, s: usize| ((out - 1) * s + k).saturating_sub(inp);
                let th = total(input[1], output[1], kh, sh);
                let tw = total(input[2], output[2], kw, sw);
                [th / 2, th - th / 2, tw / 2, tw - tw / 2]
            }
        }
    }
}

impl LayerConfig for Conv2D {
    fn palette_default() -> Self {
        Conv2D {
            filters: 32,
            kernel_size: Size2::Square(3),
            strides: None,
            padding: None,
            activation: Some(Activation::Relu),
            use_bias: None,
        }
    }

    fn param_names() -> &'static [&'static str] {
        &["filters", "kernel_size", "strides", "padding", "activation", "use_bias"]
    }

    fn description() -> &'static str {
        "Slides filters small kernels over the image, each making one feature map: [C, H, W] becomes [filters, H', W'] (smaller without padding same, divided by strides)."
    }

    fn activation(&self) -> Option<Activation> {
        self.activation
    }

    fn role(&self) -> Role {
        Role::Convolution
    }

    fn limits(&self) -> Vec<Limit> {
        let mut limits = vec![Limit::width("filters", self.filters)];
        limits.extend(Limit::window("kernel_size", Some(self.kernel_size)));
        limits.extend(Limit::window("strides", self.strides));
        limits
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let [_, h, w] = cx.image_input()?;
        let [kh, kw] = self.kernel_size.hw();
        let [sh, sw] = self.strides();
        if self.filters == 0 {
            return cx.fail("filters must be at least 1", None);
        }
        if kh == 0 || kw == 0 {
            return cx.fail(format!("kernel_size must be at least 1, got {kh}x{kw}"), None);
        }
        if sh == 0 || sw == 0 {
            return cx.fail(format!("strides must be at least 1, got {sh}x{sw}"), None);
        }
        let (oh, ow) = match self.padding() {
            Padding::Same => (h.div_ceil(sh), w.div_ceil(sw)),
            Padding::Valid => {
                if kh > h || kw > w {
                    return cx.fail(
                        format!("kernel {kh}x{kw} is larger than its input {h}x{w} (input shape {:?}); use a smaller kernel_size or padding \"same\"", cx.input),
                        None,
                    );
                }
                ((h - kh) / sh + 1, (w - kw) / sw + 1)
            }
        };
        Ok(vec![self.filters, oh, ow])
    }

    fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
        let [kh, kw] = self.kernel_size.hw();
        let (c, f) = (input[0], self.filters);
        let glorot = Init::GlorotUniform { fan_in: c * kh * kw, fan_out: f * kh * kw };
        let mut params = vec![Param::new("weight", vec![f, c, kh, kw], glorot)];
        if self.use_bias() {
            params.push(Param::new("bias", vec![f], Init::Zeros));
        }
        params
    }

    fn check_working_memory(&self, input: &[usize], output: &[usize]) -> Result<(), String> {
        let [kh, kw] = self.kernel_size.hw();
        let patches = super::volume(&[input[0], kh, kw, output[1], output[2]]);
        if patches > MAX_VALUES_PER_EXAMPLE {
            return Err(format!("unfolds {} values per example (channels x kernel x output size), more than the {} allowed; use a smaller kernel_size or larger strides", crate::text::format_count(patches as u64), crate::text::format_count(MAX_VALUES_PER_EXAMPLE as u64)));
        }
        Ok(())
    }

    fn build(&self, input: &[usize], output: &[usize], p: &mut Params) -> Box<dyn Module> {
        Box::new(Conv2DModule {
            weight: p.take("weight"),
            bias: p.take_if("bias"),
            stride: self.strides(),
            pad: self.pad(input, output),
            activation: self.activation,
        })
    }
}

struct Conv2DModule {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: [usize; 2],
    pad: [usize; 4],
    activation: Option<Activation>,
}

impl Module for Conv2DModule {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, fold_softmax: bool) -> Tensor {
        let y = x.conv2d(&self.weight, self.bias.as_ref(), self.stride, self.pad);
        activation::apply(&y, self.activation, fold_softmax)
    }

    fn filters(&self) -> Option<Tensor> {
        Some(self.weight.clone())
    }
}
