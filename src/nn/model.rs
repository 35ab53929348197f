//! `Model`: the layers of a spec with their parameters, and the forward pass.
//!
//! Parameters are named as in a PyTorch `nn.Sequential` state dict: parameter `p`
//! of layer `i` is `"{i}.{p}"` (`"0.weight"` [32, 1, 3, 3], `"0.bias"` [32]).
//! Initialisation is Keras's (Glorot-uniform weights, zero biases), drawn from a
//! ChaCha stream per layer so a layer's weights depend only on the seed and its index.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::spec::{Activation, LayerSpec, ModelInfo, ModelSpec, Padding, Size2};
use crate::error::Result;
use crate::tensor::Tensor;

/// Training (dropout active, drawing from the generator) or evaluation.
pub enum Mode<'a> {
    Train(&'a mut ChaCha8Rng),
    Eval,
}

enum Layer {
    Dense { weight: Tensor, bias: Option<Tensor>, activation: Option<Activation> },
    Conv2D { weight: Tensor, bias: Option<Tensor>, stride: [usize; 2], pad: [usize; 4], activation: Option<Activation> },
    MaxPool2D { size: [usize; 2], stride: [usize; 2] },
    AveragePool2D { size: [usize; 2], stride: [usize; 2] },
    Flatten,
    Dropout { rate: f32 },
    Reshape { shape: Vec<usize> },
    Activation(Activation),
}

pub struct Model {
    pub spec: ModelSpec,
    pub info: ModelInfo,
    layers: Vec<Layer>,
}

impl Model {
    /// Checks the spec and initialises the parameters from `spec.training.seed`.
    pub fn new(spec: &ModelSpec) -> Result<Model> {
        let info = spec.infer()?;
        let seed = spec.training.seed;
        let layers = spec
            .layers
            .iter()
            .zip(&info.layers)
            .map(|(layer, li)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(li.index as u64);
                build_layer(layer, &li.input_shape, &li.output_shape, &mut rng)
            })
            .collect();
        Ok(Model { spec: spec.clone(), info, layers })
    }

    /// Parameters in state-dict order, named `"{layer}.{param}"`.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let (w, b) = match layer {
                Layer::Dense { weight, bias, .. } | Layer::Conv2D { weight, bias, .. } => (weight, bias),
                _ => continue,
            };
            out.push((format!("{i}.weight"), w.clone()));
            if let Some(b) = b {
                out.push((format!("{i}.bias"), b.clone()));
            }
        }
        out
    }

    /// The model's output for a batch `x` [N, ..input shape]. A softmax at the very
    /// end is left out: losses and predictions work on logits.
    pub fn forward_logits(&self, x: &Tensor, mut mode: Mode) -> Tensor {
        let n = self.layers.len();
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let last = i + 1 == n;
            h = layer.forward(&h, &mut mode, last);
        }
        h
    }

    /// Every layer's output for `x`, in evaluation mode (for inspecting a model).
    pub fn activations(&self, x: &Tensor) -> Vec<Tensor> {
        let n = self.layers.len();
        let mut h = x.clone();
        let mut out = Vec::with_capacity(n);
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h, &mut Mode::Eval, i + 1 == n);
            out.push(h.clone());
        }
        out
    }

    /// Parameters of the first convolution, for the filter view.
    pub fn first_conv_weight(&self) -> Option<Tensor> {
        self.layers.iter().find_map(|l| match l {
            Layer::Conv2D { weight, .. } => Some(weight.clone()),
            _ => None,
        })
    }
}

impl Layer {
    fn forward(&self, x: &Tensor, mode: &mut Mode, last: bool) -> Tensor {
        match self {
            Layer::Dense { weight, bias, activation } => {
                // y = x W^T + b over the last axis (W is [out, in], as PyTorch).
                let mut y = x.matmul(&weight.transpose(0, 1));
                if let Some(b) = bias {
                    y = y.add(b);
                }
                apply_activation(&y, *activation, last)
            }
            Layer::Conv2D { weight, bias, stride, pad, activation } => apply_activation(&x.conv2d(weight, bias.as_ref(), *stride, *pad), *activation, last),
            Layer::MaxPool2D { size, stride } => x.max_pool2d(*size, *stride),
            Layer::AveragePool2D { size, stride } => x.avg_pool2d(*size, *stride),
            Layer::Flatten => {
                let s = x.shape();
                x.reshape(&[s[0], s[1..].iter().product()])
            }
            Layer::Dropout { rate } => match mode {
                Mode::Train(rng) => x.dropout(*rate, *rng),
                Mode::Eval => x.clone(),
            },
            Layer::Reshape { shape } => {
                let mut s = vec![x.shape()[0]];
                s.extend_from_slice(shape);
                x.reshape(&s)
            }
            Layer::Activation(a) => apply_activation(x, Some(*a), last),
        }
    }
}

fn apply_activation(x: &Tensor, activation: Option<Activation>, last: bool) -> Tensor {
    match activation {
        None | Some(Activation::Linear) => x.clone(),
        Some(Activation::Relu) => x.relu(),
        Some(Activation::Tanh) => x.tanh(),
        Some(Activation::Sigmoid) => x.sigmoid(),
        Some(Activation::Gelu) => x.gelu(),
        // The loss takes logits; a final softmax would only be undone by it.
        Some(Activation::Softmax) if last => x.clone(),
        Some(Activation::Softmax) => x.softmax(),
    }
}

/// Keras's Glorot-uniform limit, sqrt(6 / (fan_in + fan_out)).
fn glorot_limit(fan_in: usize, fan_out: usize) -> f32 {
    (6.0 / (fan_in + fan_out) as f32).sqrt()
}

fn build_layer(layer: &LayerSpec, input: &[usize], output: &[usize], rng: &mut ChaCha8Rng) -> Layer {
    match layer {
        LayerSpec::Dense { units, activation, use_bias } => {
            let fan_in = *input.last().unwrap();
            let weight = Tensor::parameter(crate::tensor::random_uniform(&[*units, fan_in], glorot_limit(fan_in, *units), rng));
            let bias = use_bias.unwrap_or(true).then(|| Tensor::parameter(ArrayD::zeros(IxDyn(&[*units]))));
            Layer::Dense { weight, bias, activation: *activation }
        }
        LayerSpec::Conv2D { filters, kernel_size, strides, padding, activation, use_bias } => {
            let [kh, kw] = kernel_size.hw();
            let stride = strides.map_or([1, 1], Size2::hw);
            let c = input[0];
            let receptive = kh * kw;
            let limit = glorot_limit(c * receptive, filters * receptive);
            let weight = Tensor::parameter(crate::tensor::random_uniform(&[*filters, c, kh, kw], limit, rng));
            let bias = use_bias.unwrap_or(true).then(|| Tensor::parameter(ArrayD::zeros(IxDyn(&[*filters]))));
            let pad = match padding.unwrap_or_default() {
                Padding::Valid => [0; 4],
                Padding::Same => {
                    // TensorFlow's "same": the extra row/column of padding goes at the end.
                    let total = |inp: usize, out: usize, k: usize, s: usize| ((out - 1) * s + k).saturating_sub(inp);
                    let th = total(input[1], output[1], kh, stride[0]);
                    let tw = total(input[2], output[2], kw, stride[1]);
                    [th / 2, th - th / 2, tw / 2, tw - tw / 2]
                }
            };
            Layer::Conv2D { weight, bias, stride, pad, activation: *activation }
        }
        LayerSpec::MaxPool2D { pool_size, strides } => Layer::MaxPool2D { size: pool_size.hw(), stride: strides.unwrap_or(*pool_size).hw() },
        LayerSpec::AveragePool2D { pool_size, strides } => Layer::AveragePool2D { size: pool_size.hw(), stride: strides.unwrap_or(*pool_size).hw() },
        LayerSpec::Flatten => Layer::Flatten,
        LayerSpec::Dropout { rate } => Layer::Dropout { rate: *rate },
        LayerSpec::Reshape { .. } => Layer::Reshape { shape: output.to_vec() },
        other => Layer::Activation(other.activation().expect("the remaining layer types are activations")),
    }
}
