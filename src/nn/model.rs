//! `Model`: the layers of a spec with their parameters, and the forward pass.
//!
//! Parameters are named as in a PyTorch `nn.Sequential` state dict: parameter `p`
//! of layer `i` is `"{i}.{p}"` (`"0.weight"` [32, 1, 3, 3], `"0.bias"` [32]).
//! Initialisation is Keras's (Glorot-uniform weights, zero biases), drawn from a
//! ChaCha stream per layer so a layer's weights depend only on the seed and its index.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::spec::{Activation, LayerSpec, ModelInfo, ModelSpec, Padding, PositionKind, Size2};
use crate::error::Result;
use crate::tensor::Tensor;

/// Training (dropout active, drawing from the generator) or evaluation.
pub enum Mode<'a> {
    Train(&'a mut ChaCha8Rng),
    Eval,
}

enum Layer {
    Dense {
        weight: Tensor,
        bias: Option<Tensor>,
        activation: Option<Activation>,
    },
    Conv2D {
        weight: Tensor,
        bias: Option<Tensor>,
        stride: [usize; 2],
        pad: [usize; 4],
        activation: Option<Activation>,
    },
    MaxPool2D {
        size: [usize; 2],
        stride: [usize; 2],
    },
    AveragePool2D {
        size: [usize; 2],
        stride: [usize; 2],
    },
    Flatten,
    Dropout {
        rate: f32,
    },
    Reshape {
        shape: Vec<usize>,
    },
    Activation(Activation),
    Recurrent {
        kind: Cell,
        units: usize,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        return_sequences: bool,
    },
    LayerNorm {
        weight: Tensor,
        bias: Tensor,
        eps: f32,
    },
    Position {
        learned: Option<Tensor>,
        table: Tensor,
    },
    Attention(Attention),
    Encoder {
        attn: Attention,
        linear1: (Tensor, Tensor),
        linear2: (Tensor, Tensor),
        norm1: (Tensor, Tensor),
        norm2: (Tensor, Tensor),
        activation: Activation,
        dropout: f32,
        norm_first: bool,
    },
    Patchify {
        patch: usize,
    },
    GlobalAveragePooling1D,
    Embedding {
        weight: Tensor,
    },
}

thread_local! {
    /// Set only while `Model::attention_maps` runs, so ordinary steps pay nothing.
    static ATTENTION_CAPTURE: std::cell::RefCell<Option<Vec<ArrayD<f32>>>> = const { std::cell::RefCell::new(None) };
}

/// Multi-head self-attention parameters (PyTorch `MultiheadAttention` layout).
struct Attention {
    in_w: Tensor,
    in_b: Tensor,
    out_w: Tensor,
    out_b: Tensor,
    heads: usize,
    causal: bool,
}

const LAYER_NORM_EPS: f32 = 1e-5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Rnn,
    Lstm,
    Gru,
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
            let named: Vec<(&str, &Tensor)> = match layer {
                Layer::Recurrent { w_ih, w_hh, b_ih, b_hh, .. } => {
                    vec![("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)]
                }
                Layer::LayerNorm { weight, bias, .. } => vec![("weight", weight), ("bias", bias)],
                Layer::Embedding { weight } => vec![("weight", weight)],
                Layer::Position { learned: Some(w), .. } => vec![("weight", w)],
                Layer::Attention(a) => a.named(""),
                Layer::Encoder { attn, linear1, linear2, norm1, norm2, .. } => {
                    let mut v = attn.named("self_attn.");
                    v.extend([
                        ("linear1.weight", &linear1.0),
                        ("linear1.bias", &linear1.1),
                        ("linear2.weight", &linear2.0),
                        ("linear2.bias", &linear2.1),
                        ("norm1.weight", &norm1.0),
                        ("norm1.bias", &norm1.1),
                        ("norm2.weight", &norm2.0),
                        ("norm2.bias", &norm2.1),
                    ]);
                    v
                }
                _ => vec![],
            };
            if !named.is_empty() {
                out.extend(named.into_iter().map(|(n, t)| (format!("{i}.{n}"), t.clone())));
                continue;
            }
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

    /// Every tensor the model holds: the parameters and constants such as
    /// sinusoidal position tables (to move the model to another device).
    pub fn tensors(&self) -> Vec<Tensor> {
        let mut out: Vec<Tensor> = self.parameters().into_iter().map(|(_, t)| t).collect();
        out.extend(self.layers.iter().filter_map(|l| match l {
            Layer::Position { table, .. } => Some(table.clone()),
            _ => None,
        }));
        out
    }

    /// Whether the input is token ids (read on the CPU by an embedding).
    pub fn takes_ids(&self) -> bool {
        matches!(self.layers.first(), Some(Layer::Embedding { .. }))
    }

    /// The model's output for a batch `x` [N, ..input shape], as logits: the
    /// output softmax the spec decided on (`ModelInfo::softmax_output`) is left
    /// out, so losses and predictions read logits (the loss applies softmax itself).
    pub fn forward_logits(&self, x: &Tensor, mut mode: Mode) -> Tensor {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h, &mut mode, self.folds_softmax(i));
        }
        h
    }

    /// Whether layer `i`'s softmax is the one the loss folds in.
    fn folds_softmax(&self, i: usize) -> bool {
        self.info.softmax_output == Some(i)
    }

    /// Every layer's output for `x`, in evaluation mode (for inspecting a model).
    pub fn activations(&self, x: &Tensor) -> Vec<Tensor> {
        let mut h = x.clone();
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h, &mut Mode::Eval, self.folds_softmax(i));
            out.push(h.clone());
        }
        out
    }

    /// The attention weights `[heads, T, T]` of every attention layer, in order, for
    /// one example `x` [1, ..input shape] (evaluation mode, no graph).
    pub fn attention_maps(&self, x: &Tensor) -> Vec<ArrayD<f32>> {
        ATTENTION_CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
        crate::autograd::no_grad(|| self.forward_logits(x, Mode::Eval));
        ATTENTION_CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default()
    }

    /// The hidden state of every recurrent layer at every time step, for one
    /// example `x` [1, ..input shape] (evaluation mode, no graph): pairs of the
    /// layer's index and its states `[T, units]`, also for layers that return only
    /// their last state.
    pub fn hidden_states(&self, x: &Tensor) -> Vec<(usize, ArrayD<f32>)> {
        crate::autograd::no_grad(|| {
            let mut h = x.clone();
            let mut out = Vec::new();
            for (i, layer) in self.layers.iter().enumerate() {
                if let Layer::Recurrent { kind, units, w_ih, w_hh, b_ih, b_hh, .. } = layer {
                    let all = recurrent_forward(&h, *kind, *units, [w_ih, w_hh, b_ih, b_hh], true);
                    let s = all.shape();
                    out.push((i, ArrayD::from_shape_vec(IxDyn(&s[1..]), all.to_vec()).expect("one example")));
                }
                h = layer.forward(&h, &mut Mode::Eval, self.folds_softmax(i));
            }
            out
        })
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
    /// `fold_softmax`: this layer's softmax is the model's output softmax, which
    /// the loss applies (left out here).
    fn forward(&self, x: &Tensor, mode: &mut Mode, fold_softmax: bool) -> Tensor {
        match self {
            Layer::Dense { weight, bias, activation } => {
                // y = x W^T + b over the last axis (W is [out, in], as PyTorch).
                let mut y = x.matmul(&weight.transpose(0, 1));
                if let Some(b) = bias {
                    y = y.add(b);
                }
                apply_activation(&y, *activation, fold_softmax)
            }
            Layer::Conv2D { weight, bias, stride, pad, activation } => {
                apply_activation(&x.conv2d(weight, bias.as_ref(), *stride, *pad), *activation, fold_softmax)
            }
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
            Layer::Activation(a) => apply_activation(x, Some(*a), fold_softmax),
            Layer::Recurrent { kind, units, w_ih, w_hh, b_ih, b_hh, return_sequences } => {
                recurrent_forward(x, *kind, *units, [w_ih, w_hh, b_ih, b_hh], *return_sequences)
            }
            Layer::LayerNorm { weight, bias, eps } => layer_norm(x, weight, bias, *eps),
            Layer::Position { learned, table } => x.add(learned.as_ref().unwrap_or(table)),
            Layer::Attention(a) => a.forward(x),
            Layer::Encoder { attn, linear1, linear2, norm1, norm2, activation, dropout, norm_first } => {
                let mut drop = |t: Tensor, mode: &mut Mode| match mode {
                    Mode::Train(rng) if *dropout > 0.0 => t.dropout(*dropout, *rng),
                    _ => t,
                };
                let ff = |h: &Tensor, mode: &mut Mode, drop: &mut dyn FnMut(Tensor, &mut Mode) -> Tensor| {
                    let a = apply_activation(&linear(h, &linear1.0, &linear1.1), Some(*activation), false);
                    linear(&drop(a, mode), &linear2.0, &linear2.1)
                };
                if *norm_first {
                    let h = x.add(&drop(attn.forward(&layer_norm(x, &norm1.0, &norm1.1, LAYER_NORM_EPS)), mode));
                    let f = ff(&layer_norm(&h, &norm2.0, &norm2.1, LAYER_NORM_EPS), mode, &mut drop);
                    h.add(&drop(f, mode))
                } else {
                    let h = layer_norm(&x.add(&drop(attn.forward(x), mode)), &norm1.0, &norm1.1, LAYER_NORM_EPS);
                    let f = ff(&h, mode, &mut drop);
                    layer_norm(&h.add(&drop(f, mode)), &norm2.0, &norm2.1, LAYER_NORM_EPS)
                }
            }
            Layer::Patchify { patch } => {
                // [N, C, H, W] -> [N, H/p, W/p, C, p, p] -> [N, tokens, C*p*p]
                let s = x.shape();
                let (n, c, h, w, p) = (s[0], s[1], s[2], s[3], *patch);
                x.reshape(&[n, c, h / p, p, w / p, p]).permute(&[0, 2, 4, 1, 3, 5]).reshape(&[
                    n,
                    (h / p) * (w / p),
                    c * p * p,
                ])
            }
            Layer::GlobalAveragePooling1D => x.mean(&[1], false),
            Layer::Embedding { weight } => {
                let s = x.shape();
                let ids: Vec<usize> = x.to_array().iter().map(|&v| v.max(0.0) as usize).collect();
                weight.gather_rows(&ids).reshape(&[s[0], s[1], weight.shape()[1]])
            }
        }
    }
}

/// `x W^T + b` over the last axis.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    x.matmul(&w.transpose(0, 1)).add(b)
}

/// LayerNorm over the last axis, from primitives.
fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Tensor {
    let last = x.ndim() - 1;
    let centred = x.sub(&x.mean(&[last], true));
    let var = centred.mul(&centred).mean(&[last], true);
    centred.div(&var.add_scalar(eps).sqrt()).mul(weight).add(bias)
}

impl Attention {
    fn named(&self, prefix: &'static str) -> Vec<(&'static str, &Tensor)> {
        let names: [&'static str; 4] = match prefix {
            "" => ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"],
            _ => [
                "self_attn.in_proj_weight",
                "self_attn.in_proj_bias",
                "self_attn.out_proj.weight",
                "self_attn.out_proj.bias",
            ],
        };
        names.into_iter().zip([&self.in_w, &self.in_b, &self.out_w, &self.out_b]).collect()
    }

    /// softmax(Q K^T / sqrt(d_head)) V per head, over `x` [N, T, E].
    fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.shape();
        let (n, t, e) = (s[0], s[1], s[2]);
        let dh = e / self.heads;
        let qkv = linear(x, &self.in_w, &self.in_b); // [N, T, 3E]
        let head = |k: usize| qkv.slice(2, k * e, (k + 1) * e).reshape(&[n, t, self.heads, dh]).permute(&[0, 2, 1, 3]);
        let (q, k, v) = (head(0).mul_scalar(1.0 / (dh as f32).sqrt()), head(1), head(2));
        let mut scores = q.matmul(&k.transpose(2, 3)); // [N, H, T, T]
        if self.causal {
            let mask = ArrayD::from_shape_fn(IxDyn(&[t, t]), |i| if i[1] > i[0] { -1e9 } else { 0.0 });
            scores = scores.add(&Tensor::new(mask));
        }
        let weights = scores.softmax();
        ATTENTION_CAPTURE.with(|c| {
            if let Some(maps) = c.borrow_mut().as_mut() {
                // Example 0's weights, [heads, T, T].
                maps.push(weights.to_array().index_axis(ndarray::Axis(0), 0).to_owned());
            }
        });
        let out = weights.matmul(&v).permute(&[0, 2, 1, 3]).reshape(&[n, t, e]);
        linear(&out, &self.out_w, &self.out_b)
    }
}

/// A recurrent layer over `x` [N, T, I], unrolled in time from zero state, built
/// from primitives (backpropagation through time comes with them).
/// Returns the last hidden state [N, H], or every one [N, T, H].
fn recurrent_forward(
    x: &Tensor,
    kind: Cell,
    units: usize,
    [w_ih, w_hh, b_ih, b_hh]: [&Tensor; 4],
    return_sequences: bool,
) -> Tensor {
    let s = x.shape();
    let (n, steps, features) = (s[0], s[1], s[2]);
    let h_dim = units;
    let (w_ih_t, w_hh_t) = (w_ih.transpose(0, 1), w_hh.transpose(0, 1));
    let mut h = Tensor::zeros(&[n, h_dim]);
    let mut c = Tensor::zeros(&[n, h_dim]);
    let mut outputs = Vec::with_capacity(if return_sequences { steps } else { 0 });
    for t in 0..steps {
        let x_t = x.slice(1, t, t + 1).reshape(&[n, features]);
        let gi = x_t.matmul(&w_ih_t).add(b_ih); // [N, G*H]
        let gh = h.matmul(&w_hh_t).add(b_hh);
        h = match kind {
            Cell::Rnn => gi.add(&gh).tanh(),
            Cell::Lstm => {
                // [h | c'] from one fused op (see `Tensor::lstm_cell`).
                let hc = gi.add(&gh).lstm_cell(&c);
                c = hc.slice(1, h_dim, 2 * h_dim);
                hc.slice(1, 0, h_dim)
            }
            // PyTorch: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) n + z h
            Cell::Gru => gi.gru_cell(&gh, &h),
        };
        if return_sequences {
            outputs.push(h.reshape(&[n, 1, h_dim]));
        }
    }
    if return_sequences {
        Tensor::concat(&outputs, 1)
    } else {
        h
    }
}

/// A [rows, cols] matrix (rows >= cols) with orthonormal columns: Keras's
/// orthogonal initialiser in PyTorch's layout (Gram-Schmidt on normal samples).
fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> ArrayD<f32> {
    let a = crate::tensor::random_normal(&[cols, rows], 1.0, rng);
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(cols);
    for k in 0..cols {
        let mut v: Vec<f64> = (0..rows).map(|r| a[[k, r]] as f64).collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
        q.push(v);
    }
    ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| q[i[1]][i[0]] as f32)
}

fn apply_activation(x: &Tensor, activation: Option<Activation>, fold_softmax: bool) -> Tensor {
    match activation {
        None | Some(Activation::Linear) => x.clone(),
        Some(Activation::Relu) => x.relu(),
        Some(Activation::Tanh) => x.tanh(),
        Some(Activation::Sigmoid) => x.sigmoid(),
        Some(Activation::Gelu) => x.gelu(),
        // The output softmax: the loss applies it to the logits (log-sum-exp).
        Some(Activation::Softmax) if fold_softmax => x.clone(),
        Some(Activation::Softmax) => x.softmax(),
    }
}

fn ones(d: usize) -> Tensor {
    Tensor::parameter(ArrayD::ones(IxDyn(&[d])))
}

fn zeros(d: usize) -> Tensor {
    Tensor::parameter(ArrayD::zeros(IxDyn(&[d])))
}

/// A Glorot-uniform [out, in] weight.
fn glorot(shape: &[usize; 2], rng: &mut ChaCha8Rng) -> Tensor {
    Tensor::parameter(crate::tensor::random_uniform(shape, glorot_limit(shape[1], shape[0]), rng))
}

fn attention(d: usize, heads: usize, causal: bool, rng: &mut ChaCha8Rng) -> Attention {
    Attention {
        in_w: glorot(&[3 * d, d], rng),
        in_b: zeros(3 * d),
        out_w: glorot(&[d, d], rng),
        out_b: zeros(d),
        heads,
        causal,
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
            let weight =
                Tensor::parameter(crate::tensor::random_uniform(&[*units, fan_in], glorot_limit(fan_in, *units), rng));
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
        LayerSpec::MaxPool2D { pool_size, strides } => {
            Layer::MaxPool2D { size: pool_size.hw(), stride: strides.unwrap_or(*pool_size).hw() }
        }
        LayerSpec::AveragePool2D { pool_size, strides } => {
            Layer::AveragePool2D { size: pool_size.hw(), stride: strides.unwrap_or(*pool_size).hw() }
        }
        LayerSpec::Flatten => Layer::Flatten,
        LayerSpec::Dropout { rate } => Layer::Dropout { rate: *rate },
        LayerSpec::Reshape { .. } => Layer::Reshape { shape: output.to_vec() },
        LayerSpec::SimpleRNN { units, return_sequences }
        | LayerSpec::LSTM { units, return_sequences }
        | LayerSpec::GRU { units, return_sequences } => {
            let kind = match layer {
                LayerSpec::LSTM { .. } => Cell::Lstm,
                LayerSpec::GRU { .. } => Cell::Gru,
                _ => Cell::Rnn,
            };
            let g = super::spec::recurrent_gates(layer) * units;
            let features = input[1];
            let w_ih = Tensor::parameter(crate::tensor::random_uniform(&[g, features], glorot_limit(features, g), rng));
            let w_hh = Tensor::parameter(orthogonal(g, *units, rng));
            let mut b = ArrayD::zeros(IxDyn(&[g]));
            if kind == Cell::Lstm {
                // Keras's unit_forget_bias: the forget gate starts open.
                b.slice_mut(ndarray::s![*units..2 * units]).fill(1.0);
            }
            Layer::Recurrent {
                kind,
                units: *units,
                w_ih,
                w_hh,
                b_ih: Tensor::parameter(b),
                b_hh: Tensor::parameter(ArrayD::zeros(IxDyn(&[g]))),
                return_sequences: return_sequences.unwrap_or(false),
            }
        }
        LayerSpec::LayerNormalization { epsilon } => {
            let d = *input.last().unwrap();
            Layer::LayerNorm { weight: ones(d), bias: zeros(d), eps: epsilon.unwrap_or(LAYER_NORM_EPS) }
        }
        LayerSpec::PositionalEmbedding { kind } => {
            let (t, d) = (input[0], input[1]);
            let learned = (*kind == PositionKind::Learned)
                .then(|| Tensor::parameter(crate::tensor::random_normal(&[t, d], 0.02, rng)));
            // sin on even features, cos on odd ones, as in "Attention is all you need".
            let table = ArrayD::from_shape_fn(IxDyn(&[t, d]), |i| {
                let (pos, k) = (i[0] as f32, i[1]);
                let angle = pos / 10000f32.powf((k - k % 2) as f32 / d as f32);
                if k % 2 == 0 {
                    angle.sin()
                } else {
                    angle.cos()
                }
            });
            Layer::Position { learned, table: Tensor::new(table) }
        }
        LayerSpec::MultiHeadAttention { num_heads, causal, .. } => {
            Layer::Attention(attention(input[1], *num_heads, causal.unwrap_or(false), rng))
        }
        LayerSpec::TransformerEncoder { num_heads, ff_dim, activation, dropout, norm_first } => {
            let d = input[1];
            let attn = attention(d, *num_heads, false, rng);
            let linear1 = (glorot(&[*ff_dim, d], rng), zeros(*ff_dim));
            let linear2 = (glorot(&[d, *ff_dim], rng), zeros(d));
            Layer::Encoder {
                attn,
                linear1,
                linear2,
                norm1: (ones(d), zeros(d)),
                norm2: (ones(d), zeros(d)),
                activation: activation.unwrap_or(Activation::Relu),
                dropout: dropout.unwrap_or(0.0),
                norm_first: norm_first.unwrap_or(false),
            }
        }
        LayerSpec::Patchify { patch_size } => Layer::Patchify { patch: *patch_size },
        LayerSpec::GlobalAveragePooling1D => Layer::GlobalAveragePooling1D,
        // Keras's default: uniform in [-0.05, 0.05].
        LayerSpec::Embedding { input_dim, output_dim } => Layer::Embedding {
            weight: Tensor::parameter(crate::tensor::random_uniform(&[*input_dim, *output_dim], 0.05, rng)),
        },
        other => Layer::Activation(other.activation().expect("the remaining layer types are activations")),
    }
}
