//! `Model`: the layers of a spec with their parameters, and the forward pass.
//!
//! Parameters are named as in a PyTorch `nn.Sequential` state dict: parameter `p`
//! of layer `i` is `"{i}.{p}"` (`"0.weight"` [32, 1, 3, 3], `"0.bias"` [32]).
//! Initialisation is Keras's (Glorot-uniform weights, zero biases; each layer's
//! `params` says which), drawn from a ChaCha stream per layer so a layer's
//! weights depend only on the seed and its index.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::layers::{multi_head_attention, LayerSpec, Mode, Module, Params, Role};
use super::spec::{ModelInfo, ModelSpec, SpecError};
use crate::tensor::Tensor;

/// Rows per piece of a CPU inference batch (see `Model::forward_logits`).
pub const INFERENCE_PIECE: usize = 64;

/// A spec that builds no model: its first mistake. Shown as "invalid model:
/// layer 1 Dense: ..."; `crate::Error` takes it as `Error::Spec`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid model: {0}")]
pub struct InvalidModel(pub SpecError);

pub struct Model {
    pub spec: ModelSpec,
    pub info: ModelInfo,
    layers: Vec<Box<dyn Module>>,
    /// State-dict order, named `"{layer}.{param}"`.
    params: Vec<(String, Tensor)>,
}

impl Model {
    /// Checks the spec and initialises the parameters from `spec.training.seed`.
    ///
    /// # Errors
    /// `InvalidModel`, the spec's first mistake (see `ModelSpec::infer`).
    pub fn new(spec: &ModelSpec) -> Result<Model, InvalidModel> {
        let info = spec.infer().map_err(InvalidModel)?;
        let seed = spec.training.seed;
        let mut layers = Vec::with_capacity(spec.layers.len());
        let mut params = Vec::new();
        for (layer, li) in spec.layers.iter().zip(&info.layers) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(li.index as u64);
            let config = layer.config();
            let named: Vec<(String, Tensor)> = config
                .params(&li.input_shape, &li.output_shape)
                .into_iter()
                .map(|p| {
                    let tensor = Tensor::parameter(p.init.sample(&p.shape, &mut rng));
                    (p.name, tensor)
                })
                .collect();
            params.extend(named.iter().map(|(n, t)| (format!("{}.{n}", li.index), t.clone())));
            layers.push(config.build(&li.input_shape, &li.output_shape, &mut Params::new(named)));
        }
        Ok(Model { spec: spec.clone(), info, layers, params })
    }

    /// Parameters in state-dict order, named `"{layer}.{param}"`.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.params.clone()
    }

    /// Every tensor the model holds: the parameters and constants such as
    /// sinusoidal position tables (to move the model to another device).
    pub fn tensors(&self) -> Vec<Tensor> {
        let mut out: Vec<Tensor> = self.params.iter().map(|(_, t)| t.clone()).collect();
        out.extend(self.layers.iter().flat_map(|l| l.constants()));
        out
    }

    /// Whether the input is token ids (read on the CPU by an embedding).
    pub fn takes_ids(&self) -> bool {
        matches!(self.spec.layers.first(), Some(LayerSpec::Embedding(_)))
    }

    /// The model's output for a batch `x` [N, ..input shape], as logits: the
    /// output softmax the spec decided on (`ModelInfo::softmax_output`) is left
    /// out, so losses and predictions read logits (the loss applies softmax itself).
    ///
    /// Inference on the CPU (evaluation mode, no graph) runs a large batch in
    /// pieces of `INFERENCE_PIECE` rows: each piece's activations stay in the
    /// cache from layer to layer, which makes a batch of 1,000 as fast per
    /// example as one of 64 (for the Seed CNN and the tiny ViT, 1.6 to 2
    /// times as fast as whole). Recurrent layers take the batch whole: their
    /// per-step GEMMs gain from more rows. Every layer treats rows alike in
    /// evaluation mode, so the logits are the same either way.
    pub fn forward_logits(&self, x: &Tensor, mode: Mode) -> Tensor {
        let n = x.shape().first().copied().unwrap_or(0);
        let cpu_inference = matches!(mode, Mode::Eval) && !crate::autograd::is_grad_enabled() && !x.device().is_gpu();
        if !cpu_inference || n <= INFERENCE_PIECE {
            return self.forward_layers(x, 0..self.layers.len(), mode);
        }
        let whole = |i: usize| self.spec.layers[i].role() == Role::Recurrent;
        let mut h = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let end = (i..self.layers.len()).find(|&j| whole(j) != whole(i)).unwrap_or(self.layers.len());
            h = if whole(i) {
                self.forward_layers(&h, i..end, Mode::Eval)
            } else {
                let pieces: Vec<Tensor> = (0..n)
                    .step_by(INFERENCE_PIECE)
                    .map(|s| self.forward_layers(&h.slice(0, s, (s + INFERENCE_PIECE).min(n)), i..end, Mode::Eval))
                    .collect();
                Tensor::concat(&pieces, 0)
            };
            i = end;
        }
        h
    }

    /// Layers `layers` on the batch as it is.
    fn forward_layers(&self, x: &Tensor, layers: std::ops::Range<usize>, mut mode: Mode) -> Tensor {
        let mut h = x.clone();
        for i in layers {
            h = self.layers[i].forward(&h, &mut mode, self.folds_softmax(i));
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
        multi_head_attention::capture(|| {
            crate::autograd::no_grad(|| self.forward_logits(x, Mode::Eval));
        })
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
                if let Some(all) = layer.hidden_states(&h) {
                    let s = all.shape();
                    out.push((i, ArrayD::from_shape_vec(IxDyn(&s[1..]), all.to_vec()).expect("one example")));
                }
                h = layer.forward(&h, &mut Mode::Eval, self.folds_softmax(i));
            }
            out
        })
    }

    /// The filters `[filters, channels, kh, kw]` of layer `index`, if it is a
    /// convolution (the filter view).
    pub fn conv_weight(&self, index: usize) -> Option<Tensor> {
        self.layers.get(index).and_then(|l| l.filters())
    }
}
