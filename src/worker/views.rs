//! The views of a model's insides for the page, each a function of a model
//! and a test example (or a drawing): filters and feature maps, attention
//! maps, hidden states, a drawing's prediction; and a confusion cell's
//! examples. `Session` finds the model (a GPU run's CPU copy) and the example.

use super::protocol::*;
use super::session::Session;
use crate::nn::layers::Role;
use crate::nn::{LayerSpec, Mode, Model};
use crate::Tensor;

/// A test example prepared for a view.
pub struct ViewExample {
    /// `[1, ..input shape]`.
    pub x: Tensor,
    /// Token ids and targets (sequence tasks).
    pub tokens: Vec<usize>,
    pub targets: Vec<usize>,
    /// 28x28 grey pixels and label (MNIST).
    pub image: Vec<u8>,
    pub label: usize,
}

/// The first convolution's filters `[f, c, kh, kw]` and its feature maps for
/// `ex` (empty when the model has none).
pub fn inspection(model: &Model, index: usize, ex: ViewExample, layer: Option<usize>) -> Event {
    // The layer asked for if it is a convolution (the stack may have changed
    // since the page asked), else the first.
    let is_conv = |i: &usize| model.spec.layers.get(*i).is_some_and(|l| l.role() == Role::Convolution);
    let conv = layer.filter(is_conv).or_else(|| (0..model.spec.layers.len()).find(is_conv));
    let (filter_shape, filters, map_shape, maps) = match conv.and_then(|i| Some((i, model.conv_weight(i)?))) {
        Some((i, w)) => {
            let acts = crate::autograd::no_grad(|| model.activations(&ex.x));
            let a = &acts[i];
            (w.shape(), w.to_vec(), a.shape()[1..].to_vec(), a.to_vec())
        }
        None => (vec![], vec![], vec![], vec![]),
    };
    let layer = conv.unwrap_or(0);
    Event::Inspection { index, layer, label: ex.label, image: ex.image, filter_shape, filters, map_shape, maps }
}

/// Every attention layer's weights `[heads, T, T]` for `ex`, with the patch
/// grid when the tokens are an image's patches.
pub fn attention_maps(model: &Model, index: usize, ex: ViewExample) -> Event {
    let layers = model.spec.layers.iter().enumerate().filter(|(_, l)| l.role() == Role::Attention).map(|(i, _)| i);
    // Tokens made by Patchify from an image stand for a grid of patches.
    let grid = model
        .spec
        .layers
        .iter()
        .zip(&model.info.layers)
        .find_map(|(l, info)| match l {
            LayerSpec::Patchify(p) if info.input_shape.len() == 3 => {
                Some(vec![info.input_shape[1] / p.patch_size, info.input_shape[2] / p.patch_size])
            }
            _ => None,
        })
        .unwrap_or_default();
    let maps: Vec<AttentionMap> = model
        .attention_maps(&ex.x)
        .into_iter()
        .zip(layers)
        .map(|(m, layer)| AttentionMap {
            layer,
            heads: m.shape()[0],
            steps: m.shape()[1],
            weights: m.iter().copied().collect(),
        })
        .collect();
    let grid = if maps.iter().all(|m| grid.iter().product::<usize>() == m.steps) { grid } else { vec![] };
    Event::AttentionMaps { index, maps, tokens: ex.tokens, targets: ex.targets, image: ex.image, label: ex.label, grid }
}

/// Every recurrent layer's hidden state `[T, units]` at every step of `ex`.
pub fn hidden_states(model: &Model, index: usize, ex: ViewExample) -> Event {
    let layers = model
        .hidden_states(&ex.x)
        .into_iter()
        .map(|(layer, s)| HiddenState {
            layer,
            layer_type: model.spec.layers[layer].type_name().to_string(),
            steps: s.shape()[0],
            units: s.shape()[1],
            values: s.iter().copied().collect(),
        })
        .collect();
    Event::HiddenStates { index, layers, tokens: ex.tokens, targets: ex.targets, image: ex.image, label: ex.label }
}

/// The class probabilities for a drawing of 784 pixels in [0, 1].
pub fn prediction(model: &Model, pixels: Vec<f32>) -> Event {
    if pixels.len() != crate::data::mnist::PIXELS {
        return Event::Error { message: format!("a drawing must have 784 pixels, got {}", pixels.len()) };
    }
    if model.spec.input.is_tokens() {
        return Event::Error {
            message: format!(
                "this model reads token sequences ({}), not drawings; choose an MNIST model to draw",
                model.spec.input.name()
            ),
        };
    }
    let mut shape = vec![1];
    shape.extend_from_slice(&model.info.input_shape);
    let probs = crate::autograd::no_grad(|| {
        model.forward_logits(&Tensor::from_vec(&shape, pixels), Mode::Eval).softmax().to_vec()
    });
    Event::Prediction { probs }
}

impl Session {
    /// Up to `MAX_EXAMPLES` test digits of class `actual` the last evaluation
    /// predicted as `predicted`; for a sequence task, the test sequences with
    /// a position whose target `actual` it predicted as `predicted` (the first
    /// such position of each).
    pub(super) fn examples(&self, actual: usize, predicted: usize) -> Event {
        let mut indices = Vec::new();
        let mut images = Vec::new();
        let mut sequences = Vec::new();
        match self.trainer.as_ref().map(|t| t.test_set()) {
            Some(crate::data::Data::Mnist(test)) => {
                for (i, &p) in self.last_predicted.iter().enumerate() {
                    if p as usize == predicted && test.labels.get(i).is_some_and(|&l| l as usize == actual) {
                        indices.push(i);
                        images.push(test.image(i).to_vec());
                        if indices.len() == MAX_EXAMPLES {
                            break;
                        }
                    }
                }
            }
            Some(crate::data::Data::Tokens(test)) => {
                // The evaluation predicted every position of its first examples, in order.
                let per = test.seq_len.max(1);
                for (i, row) in self.last_predicted.chunks_exact(per).enumerate() {
                    let (tokens, targets) = test.example(i);
                    let hit = (0..per).find(|&t| targets[t] == actual && row[t] as usize == predicted);
                    if let Some(position) = hit {
                        indices.push(i);
                        let predicted = row.iter().map(|&p| p as usize).collect();
                        sequences.push(ExampleSequence { tokens, targets, predicted, position });
                        if indices.len() == MAX_EXAMPLES {
                            break;
                        }
                    }
                }
            }
            None => {}
        }
        Event::Examples { actual, predicted, indices, images, sequences }
    }

    /// `view` of the shown model on test example `index`, or why there is none.
    pub(super) fn view(&mut self, index: usize, view: fn(&Model, usize, ViewExample) -> Event) -> Vec<Event> {
        match self.view_example(index) {
            Ok(ex) => vec![view(self.view_model().expect("ensured"), index, ex)],
            Err(e) => vec![e],
        }
    }

    /// The filter view, for image data sets only.
    pub(super) fn inspect(&mut self, index: usize, layer: Option<usize>) -> Vec<Event> {
        match self.view_example(index) {
            Ok(ex) if ex.image.is_empty() => {
                vec![Event::Error { message: "filters and feature maps are shown for image data sets (MNIST)".into() }]
            }
            Ok(ex) => vec![inspection(self.view_model().expect("ensured"), index, ex, layer)],
            Err(e) => vec![e],
        }
    }

    /// The prediction of the shown model for a drawing.
    pub(super) fn predict(&mut self, pixels: Vec<f32>) -> Vec<Event> {
        if let Err(message) = self.ensure_model() {
            return vec![Event::Error { message }];
        }
        vec![prediction(self.view_model().expect("ensured"), pixels)]
    }

    /// The test example `index` for a view of the model's insides, or an error event.
    fn view_example(&mut self, index: usize) -> Result<ViewExample, Event> {
        self.ensure_model().map_err(|message| Event::Error { message })?;
        let t = self.trainer.as_ref().expect("ensured");
        let test = t.test_set();
        if index >= test.len() {
            return Err(Event::Error {
                message: format!("there is no test example {index}; choose 0 to {}", test.len().saturating_sub(1)),
            });
        }
        let model = self.view_model().expect("ensured");
        let batch = test.batch(&[index as u32], &model.info.input_shape);
        let mut ex = ViewExample {
            x: Tensor::from_vec(&batch.shape, batch.x.clone()),
            tokens: vec![],
            targets: vec![],
            image: vec![],
            label: 0,
        };
        if model.spec.input.is_tokens() {
            ex.tokens = batch.x.iter().map(|&v| v as usize).collect();
            ex.targets = batch.labels.clone();
        } else if let Some(mnist) = test.as_mnist() {
            ex.image = mnist.image(index).to_vec();
            ex.label = mnist.labels[index] as usize;
        }
        Ok(ex)
    }
}
