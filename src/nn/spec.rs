//! `ModelSpec`: the one description of a model (JSON, serde) that the CLI, the page,
//! export and tests share, and shape inference over it, which turns every invalid
//! stack into a `SpecError` that names the layer, the shapes and the fix.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::DatasetSpec;
use crate::error::{Error, SpecError};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    #[serde(default)]
    pub name: String,
    pub input: DatasetSpec,
    pub layers: Vec<LayerSpec>,
    #[serde(default)]
    pub training: TrainingSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default)]
    pub seed: u64,
}

fn default_batch_size() -> usize {
    64
}
fn default_epochs() -> usize {
    1
}

impl Default for TrainingSpec {
    fn default() -> Self {
        TrainingSpec { optimizer: OptimizerSpec::default(), batch_size: 64, epochs: 1, seed: 0 }
    }
}

/// Optimizers and their hyper-parameters, with Keras's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum OptimizerSpec {
    SGD {
        lr: f32,
        #[serde(default)]
        momentum: f32,
    },
    Adam {
        #[serde(default = "default_adam_lr")]
        lr: f32,
        #[serde(default = "default_beta_1")]
        beta_1: f32,
        #[serde(default = "default_beta_2")]
        beta_2: f32,
        #[serde(default = "default_epsilon")]
        epsilon: f32,
    },
}

fn default_adam_lr() -> f32 {
    1e-3
}
fn default_beta_1() -> f32 {
    0.9
}
fn default_beta_2() -> f32 {
    0.999
}
fn default_epsilon() -> f32 {
    1e-7
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec::Adam { lr: 1e-3, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }
    }
}

impl OptimizerSpec {
    pub fn lr(&self) -> f32 {
        match self {
            OptimizerSpec::SGD { lr, .. } | OptimizerSpec::Adam { lr, .. } => *lr,
        }
    }
    pub fn set_lr(&mut self, new: f32) {
        match self {
            OptimizerSpec::SGD { lr, .. } | OptimizerSpec::Adam { lr, .. } => *lr = new,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Linear,
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
    Softmax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    #[default]
    Valid,
    Same,
}

/// A size given as one number (square) or as `[height, width]`, as Keras allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Rect([usize; 2]),
}

impl Size2 {
    pub fn hw(self) -> [usize; 2] {
        match self {
            Size2::Square(s) => [s, s],
            Size2::Rect(r) => r,
        }
    }
}

/// One layer, with Keras's names and parameters. Parameter layouts are PyTorch's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum LayerSpec {
    Dense {
        units: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        use_bias: Option<bool>,
    },
    Conv2D {
        filters: usize,
        kernel_size: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strides: Option<Size2>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        padding: Option<Padding>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        use_bias: Option<bool>,
    },
    MaxPool2D {
        pool_size: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strides: Option<Size2>,
    },
    AveragePool2D {
        pool_size: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strides: Option<Size2>,
    },
    Flatten,
    Dropout {
        rate: f32,
    },
    Reshape {
        target_shape: Vec<i64>,
    },
    ReLU,
    Tanh,
    Sigmoid,
    GELU,
    Softmax,
    /// Elman RNN (PyTorch `nn.RNN`, tanh): input `[steps, features]`.
    SimpleRNN {
        units: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_sequences: Option<bool>,
    },
    /// LSTM with PyTorch's gate order (i, f, g, o) and parameters.
    LSTM {
        units: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_sequences: Option<bool>,
    },
    /// GRU as PyTorch's (gates r, z, n; the reset gate scales `W_hn h + b_hn`).
    GRU {
        units: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_sequences: Option<bool>,
    },
    /// Normalises the last axis (PyTorch `LayerNorm`: `weight`, `bias`).
    LayerNormalization {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epsilon: Option<f32>,
    },
    /// Adds a position code to `[steps, features]`: learned (`weight` [steps, features])
    /// or the fixed sinusoids of the Transformer paper.
    PositionalEmbedding {
        #[serde(default)]
        kind: PositionKind,
    },
    /// Multi-head self-attention over `[steps, features]` (PyTorch
    /// `MultiheadAttention`: fused `in_proj_weight` [3E, E], `out_proj`).
    MultiHeadAttention {
        num_heads: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_dim: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        causal: Option<bool>,
    },
    /// PyTorch's `TransformerEncoderLayer` (`self_attn.*`, `linear1`, `linear2`, `norm1`, `norm2`).
    TransformerEncoder {
        num_heads: usize,
        ff_dim: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropout: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        norm_first: Option<bool>,
    },
    /// Image [C, H, W] -> tokens [H/p * W/p, C*p*p], patches row-major.
    Patchify {
        patch_size: usize,
    },
    /// Mean over the steps of `[steps, features]`.
    GlobalAveragePooling1D,
    /// Token ids `[steps]` -> vectors `[steps, output_dim]` (PyTorch `weight` [input_dim, output_dim]).
    Embedding {
        input_dim: usize,
        output_dim: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionKind {
    #[default]
    Learned,
    Sinusoidal,
}

/// Every layer type the spec accepts, in palette order.
pub const LAYER_TYPES: &[&str] = &[
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AveragePool2D",
    "Flatten",
    "Dropout",
    "Reshape",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "Softmax",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "LayerNormalization",
    "PositionalEmbedding",
    "MultiHeadAttention",
    "TransformerEncoder",
    "Patchify",
    "GlobalAveragePooling1D",
    "Embedding",
];

/// The palette: layer families and their types.
pub const LAYER_GROUPS: &[(&str, &[&str])] = &[
    ("Core", &["Dense", "Flatten", "Dropout", "Reshape", "ReLU", "Tanh", "Sigmoid", "GELU", "Softmax"]),
    ("Convolution", &["Conv2D", "MaxPool2D", "AveragePool2D"]),
    ("Recurrent", &["SimpleRNN", "LSTM", "GRU"]),
    (
        "Attention",
        &[
            "Embedding",
            "Patchify",
            "PositionalEmbedding",
            "MultiHeadAttention",
            "TransformerEncoder",
            "LayerNormalization",
            "GlobalAveragePooling1D",
        ],
    ),
];

impl LayerSpec {
    /// A layer of type `ty` with sensible starting parameters, for the palette.
    pub fn default_for(ty: &str) -> Option<LayerSpec> {
        Some(match ty {
            "Dense" => LayerSpec::Dense { units: 64, activation: Some(Activation::Relu), use_bias: None },
            "Conv2D" => LayerSpec::Conv2D {
                filters: 32,
                kernel_size: Size2::Square(3),
                strides: None,
                padding: None,
                activation: Some(Activation::Relu),
                use_bias: None,
            },
            "MaxPool2D" => LayerSpec::MaxPool2D { pool_size: Size2::Square(2), strides: None },
            "AveragePool2D" => LayerSpec::AveragePool2D { pool_size: Size2::Square(2), strides: None },
            "Flatten" => LayerSpec::Flatten,
            "Dropout" => LayerSpec::Dropout { rate: 0.2 },
            "Reshape" => LayerSpec::Reshape { target_shape: vec![28, 28] },
            "ReLU" => LayerSpec::ReLU,
            "Tanh" => LayerSpec::Tanh,
            "Sigmoid" => LayerSpec::Sigmoid,
            "GELU" => LayerSpec::GELU,
            "Softmax" => LayerSpec::Softmax,
            "SimpleRNN" => LayerSpec::SimpleRNN { units: 64, return_sequences: None },
            "LSTM" => LayerSpec::LSTM { units: 64, return_sequences: None },
            "GRU" => LayerSpec::GRU { units: 64, return_sequences: None },
            "LayerNormalization" => LayerSpec::LayerNormalization { epsilon: None },
            "PositionalEmbedding" => LayerSpec::PositionalEmbedding { kind: PositionKind::Learned },
            "MultiHeadAttention" => LayerSpec::MultiHeadAttention { num_heads: 4, key_dim: None, causal: None },
            "TransformerEncoder" => LayerSpec::TransformerEncoder {
                num_heads: 4,
                ff_dim: 128,
                activation: Some(Activation::Gelu),
                dropout: None,
                norm_first: Some(true),
            },
            "Patchify" => LayerSpec::Patchify { patch_size: 7 },
            "GlobalAveragePooling1D" => LayerSpec::GlobalAveragePooling1D,
            "Embedding" => LayerSpec::Embedding { input_dim: 10, output_dim: 64 },
            _ => return None,
        })
    }

    /// The parameters a layer type takes, in display order (optional ones included).
    pub fn param_names(ty: &str) -> &'static [&'static str] {
        match ty {
            "Dense" => &["units", "activation", "use_bias"],
            "Conv2D" => &["filters", "kernel_size", "strides", "padding", "activation", "use_bias"],
            "MaxPool2D" | "AveragePool2D" => &["pool_size", "strides"],
            "Dropout" => &["rate"],
            "Reshape" => &["target_shape"],
            "SimpleRNN" | "LSTM" | "GRU" => &["units", "return_sequences"],
            "LayerNormalization" => &["epsilon"],
            "PositionalEmbedding" => &["kind"],
            "MultiHeadAttention" => &["num_heads", "key_dim", "causal"],
            "TransformerEncoder" => &["num_heads", "ff_dim", "activation", "dropout", "norm_first"],
            "Patchify" => &["patch_size"],
            "Embedding" => &["input_dim", "output_dim"],
            _ => &[],
        }
    }

    /// The layer with parameter `name` set from text as a user types it: JSON
    /// (`64`, `[3, 5]`, `true`) or a bare word (`relu`); empty text removes an
    /// optional parameter. The error names the parameter.
    pub fn with_param(&self, name: &str, text: &str) -> Result<LayerSpec, String> {
        let mut obj = match serde_json::to_value(self) {
            Ok(Value::Object(o)) => o,
            _ => return Err("this layer has no parameters".into()),
        };
        let text = text.trim();
        if text.is_empty() {
            obj.remove(name);
        } else {
            let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
            obj.insert(name.to_string(), value);
        }
        serde_json::from_value(Value::Object(obj))
            .map_err(|e| format!("{name}: {}", crate::io::escape::printable(&e.to_string())))
    }

    /// The text a parameter shows in an editor (empty when unset).
    pub fn param_text(&self, name: &str) -> String {
        match serde_json::to_value(self).ok().and_then(|v| v.get(name).cloned()) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            // Parameters are f32; serde_json's values hold f64, which would show
            // 1e-5 as 9.999999747378752e-6.
            Some(Value::Number(n)) if n.is_f64() => (n.as_f64().unwrap_or(0.0) as f32).to_string(),
            Some(v) => v.to_string().replace(',', ", "),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Dense { .. } => "Dense",
            LayerSpec::Conv2D { .. } => "Conv2D",
            LayerSpec::MaxPool2D { .. } => "MaxPool2D",
            LayerSpec::AveragePool2D { .. } => "AveragePool2D",
            LayerSpec::Flatten => "Flatten",
            LayerSpec::Dropout { .. } => "Dropout",
            LayerSpec::Reshape { .. } => "Reshape",
            LayerSpec::ReLU => "ReLU",
            LayerSpec::Tanh => "Tanh",
            LayerSpec::Sigmoid => "Sigmoid",
            LayerSpec::GELU => "GELU",
            LayerSpec::Softmax => "Softmax",
            LayerSpec::SimpleRNN { .. } => "SimpleRNN",
            LayerSpec::LSTM { .. } => "LSTM",
            LayerSpec::GRU { .. } => "GRU",
            LayerSpec::LayerNormalization { .. } => "LayerNormalization",
            LayerSpec::PositionalEmbedding { .. } => "PositionalEmbedding",
            LayerSpec::MultiHeadAttention { .. } => "MultiHeadAttention",
            LayerSpec::TransformerEncoder { .. } => "TransformerEncoder",
            LayerSpec::Patchify { .. } => "Patchify",
            LayerSpec::GlobalAveragePooling1D => "GlobalAveragePooling1D",
            LayerSpec::Embedding { .. } => "Embedding",
        }
    }

    /// The activation this layer applies at its end, if it is one or has one.
    pub fn activation(&self) -> Option<Activation> {
        match self {
            LayerSpec::Dense { activation, .. } | LayerSpec::Conv2D { activation, .. } => *activation,
            LayerSpec::ReLU => Some(Activation::Relu),
            LayerSpec::Tanh => Some(Activation::Tanh),
            LayerSpec::Sigmoid => Some(Activation::Sigmoid),
            LayerSpec::GELU => Some(Activation::Gelu),
            LayerSpec::Softmax => Some(Activation::Softmax),
            _ => None,
        }
    }
}

/// A mechanical fix for a `SpecError`, which the page can offer as a button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Fix {
    /// Insert `layer` at `index` (before the offending layer).
    Insert { index: usize, layer: LayerSpec },
    /// Remove the layer at `index`.
    Remove { index: usize },
}

impl Fix {
    /// Applies the fix to a layer list.
    pub fn apply(&self, layers: &mut Vec<LayerSpec>) {
        match self {
            Fix::Insert { index, layer } => layers.insert((*index).min(layers.len()), layer.clone()),
            Fix::Remove { index } => {
                if *index < layers.len() {
                    layers.remove(*index);
                }
            }
        }
    }
}

/// The result of shape inference for one layer. Shapes exclude the batch axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub index: usize,
    pub layer_type: String,
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
    /// Parameter names (PyTorch's) and shapes, in state-dict order.
    pub params: Vec<(String, Vec<usize>)>,
    pub param_count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
    pub layers: Vec<LayerInfo>,
    pub total_params: usize,
    /// The layer whose softmax makes the model's output probabilities (Keras's
    /// `from_logits=False`): a softmax followed only by Flatten or Reshape. The
    /// loss applies that softmax itself, to logits, so the model (CPU and GPU),
    /// the evaluation and both exporters leave it out; decided once, here.
    #[serde(default)]
    pub softmax_output: Option<usize>,
}

impl ModelSpec {
    /// Parses a spec, turning serde's errors into messages that name the layer.
    pub fn from_json(text: &str) -> Result<ModelSpec, Error> {
        let root: Value = serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
        let Value::Object(obj) = &root else {
            return Err(top_error("a model spec must be a JSON object with \"input\" and \"layers\"").into());
        };
        for key in obj.keys() {
            if !["name", "input", "layers", "training"].contains(&key.as_str()) {
                return Err(top_error(format!(
                    "unknown key {:?} in the model spec; expected name, input, layers, training",
                    crate::io::escape::shorten(key)
                ))
                .into());
            }
        }
        let name = match obj.get("name") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(top_error("\"name\" must be a string").into()),
        };
        let input = obj.get("input").ok_or_else(|| {
            top_error("the spec has no \"input\" (e.g. {\"dataset\": \"mnist\", \"shape\": [1, 28, 28]})")
        })?;
        let input: DatasetSpec = serde_json::from_value(input.clone())
            .map_err(|e| top_error(format!("input: {}", crate::io::escape::printable(&e.to_string()))))?;
        let layers_value = obj.get("layers").ok_or_else(|| top_error("the spec has no \"layers\" list"))?;
        let Value::Array(items) = layers_value else {
            return Err(top_error("\"layers\" must be a list of layers").into());
        };
        let layers = items.iter().enumerate().map(|(i, v)| parse_layer(i, v)).collect::<Result<Vec<_>, _>>()?;
        let training = match obj.get("training") {
            None => TrainingSpec::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| top_error(format!("training: {}", crate::io::escape::printable(&e.to_string()))))?,
        };
        Ok(ModelSpec { name, input, layers, training })
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a spec always serializes")
    }

    /// Every layer's output shape and parameters, from the input shape alone, or the
    /// first mistake. Cheap enough to run on every keystroke.
    pub fn infer(&self) -> Result<ModelInfo, SpecError> {
        let input_shape = self.input.validate()?;
        validate_training(&self.training)?;
        let (layers, error) = self.infer_layers(&input_shape);
        if let Some(e) = error {
            return Err(e);
        }
        let output_shape = layers.last().map_or(input_shape.clone(), |l| l.output_shape.clone());
        self.input.check_output(&output_shape, self.layers.len())?;
        let softmax_output = self.output_softmax(&layers)?;
        let total_params = layers.iter().map(|l| l.param_count).sum();
        Ok(ModelInfo { input_shape, output_shape, layers, total_params, softmax_output })
    }

    /// Which softmax, if any, makes the output probabilities: the last layer
    /// with a softmax when only Flatten or Reshape follow it (they move values,
    /// never change them, so its rows are the loss's rows). Stacks whose meaning
    /// would depend on reading probabilities as logits are refused instead of
    /// applying softmax twice: a Dropout after that softmax (in training it
    /// would drop probabilities), a softmax over another axis than the classes,
    /// and a Softmax layer right after another softmax.
    fn output_softmax(&self, infos: &[LayerInfo]) -> Result<Option<usize>, SpecError> {
        let passes =
            |l: &LayerSpec| matches!(l, LayerSpec::Flatten | LayerSpec::Reshape { .. } | LayerSpec::Dropout { .. });
        let before_passing = |end: usize| (0..end).rev().find(|&i| !passes(&self.layers[i]));
        let Some(s) = before_passing(self.layers.len()) else { return Ok(None) };
        let softmax = &self.layers[s];
        if softmax.activation() != Some(Activation::Softmax) {
            return Ok(None);
        }
        let ty = softmax.type_name();
        if let Some(d) = (s + 1..self.layers.len()).find(|&i| matches!(self.layers[i], LayerSpec::Dropout { .. })) {
            return Err(layer_error(
                d,
                "Dropout",
                format!("comes after the output softmax of layer {s} {ty}, so in training it would drop class probabilities, not features; put Dropout before layer {s} or remove it"),
                Some(Fix::Remove { index: d }),
            ));
        }
        let axis = infos[s].output_shape.last().copied().unwrap_or(0);
        let classes = self.input.classes();
        if axis != classes {
            let fix = matches!(softmax, LayerSpec::Softmax).then_some(Fix::Remove { index: s });
            let how = if fix.is_some() { "remove this layer" } else { "set its activation to linear" };
            return Err(layer_error(
                s,
                ty,
                format!("applies softmax over the last axis of {:?} ({axis} values), but the model's output is read as probabilities over the {classes} classes; {how}: the loss applies softmax itself", infos[s].output_shape),
                fix,
            ));
        }
        if matches!(softmax, LayerSpec::Softmax) {
            if let Some(p) = before_passing(s).filter(|&p| self.layers[p].activation() == Some(Activation::Softmax)) {
                return Err(layer_error(
                    s,
                    ty,
                    format!("its input is already probabilities, from the softmax of layer {p} {}; a second softmax would flatten them; remove this layer", self.layers[p].type_name()),
                    Some(Fix::Remove { index: s }),
                ));
            }
        }
        Ok(Some(s))
    }

    /// The layers that infer cleanly, up to the first invalid one, so an editor can
    /// show shapes above a mistake.
    pub fn partial_infos(&self) -> Vec<LayerInfo> {
        self.input.validate().map(|shape| self.infer_layers(&shape).0).unwrap_or_default()
    }

    fn infer_layers(&self, input_shape: &[usize]) -> (Vec<LayerInfo>, Option<SpecError>) {
        let mut shape = input_shape.to_vec();
        let mut layers = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let previous = index.checked_sub(1).map(|i| &self.layers[i]);
            let token_vocab = self.input.is_tokens().then(|| self.input.classes());
            let inferred = infer_layer(index, layer, &shape, previous, token_vocab)
                .and_then(|(out, params)| check_size(index, layer, &shape, &out, &params).map(|_| (out, params)));
            let (output_shape, params) = match inferred {
                Ok(x) => x,
                Err(e) => return (layers, Some(e)),
            };
            let param_count = params.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
            layers.push(LayerInfo {
                index,
                layer_type: layer.type_name().to_string(),
                input_shape: shape.clone(),
                output_shape: output_shape.clone(),
                params,
                param_count,
            });
            shape = output_shape;
        }
        (layers, None)
    }
}

fn top_error(message: impl Into<String>) -> SpecError {
    SpecError { layer: None, layer_type: String::new(), message: message.into(), fix: None }
}

fn layer_error(index: usize, layer: &str, message: impl Into<String>, fix: Option<Fix>) -> SpecError {
    SpecError { layer: Some(index), layer_type: layer.to_string(), message: message.into(), fix }
}

fn parse_layer(index: usize, value: &Value) -> Result<LayerSpec, SpecError> {
    let ty = match value.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(layer_error(index, "", "\"type\" must be a string such as \"Dense\"", None)),
        None => {
            return Err(layer_error(index, "", format!("has no \"type\"; use one of {}", LAYER_TYPES.join(", ")), None))
        }
    };
    if !LAYER_TYPES.contains(&ty.as_str()) {
        let hint = LAYER_TYPES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&ty))
            .map(|k| format!("did you mean {k}? "))
            .unwrap_or_default();
        // The type is user text: quoted and escaped (no control characters reach a terminal).
        let shown = format!("{:?}", crate::io::escape::shorten(&ty));
        return Err(layer_error(
            index,
            &shown[1..shown.len() - 1],
            format!("unknown layer type {shown}; {hint}known types: {}", LAYER_TYPES.join(", ")),
            None,
        ));
    }
    // serde quotes the user's text (an unknown variant or field): printable only.
    serde_json::from_value(value.clone())
        .map_err(|e| layer_error(index, &ty, crate::io::escape::printable(&e.to_string()), None))
}

impl TrainingSpec {
    /// The checks every spec's training section passes (from a file, a link, a
    /// page field or a CLI flag): batch size and epochs within their stated
    /// maxima, a positive finite learning rate, the optimizer's ranges. The
    /// message names the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_training(self)
    }
}

fn validate_training(t: &TrainingSpec) -> Result<(), SpecError> {
    let bad = |m: String| Err(top_error(format!("training: {m}")));
    if !(1..=MAX_BATCH_SIZE).contains(&t.batch_size) {
        return bad(format!("batch_size must be between 1 and {MAX_BATCH_SIZE}, got {}; 64 is usual", t.batch_size));
    }
    if !(1..=MAX_EPOCHS).contains(&t.epochs) {
        return bad(format!("epochs must be between 1 and {MAX_EPOCHS}, got {}", t.epochs));
    }
    let lr = t.optimizer.lr();
    if !(lr.is_finite() && lr > 0.0) {
        return bad(format!("the learning rate must be a positive number, got {lr}; 0.001 is a good start for Adam"));
    }
    match t.optimizer {
        OptimizerSpec::SGD { momentum, .. } if !(0.0..1.0).contains(&momentum) => bad(format!("SGD momentum must be in [0, 1), got {momentum}")),
        OptimizerSpec::Adam { beta_1, beta_2, epsilon, .. } if !((0.0..1.0).contains(&beta_1) && (0.0..1.0).contains(&beta_2) && epsilon > 0.0 && epsilon.is_finite()) => {
            bad(format!("Adam needs 0 <= beta_1, beta_2 < 1 and epsilon > 0, got beta_1 {beta_1}, beta_2 {beta_2}, epsilon {epsilon}"))
        }
        _ => Ok(()),
    }
}

/// Output shape and named parameter shapes of one layer, given its input shape.
/// Gate blocks of a recurrent layer's weight matrices (PyTorch's layout).
pub fn recurrent_gates(layer: &LayerSpec) -> usize {
    match layer {
        LayerSpec::LSTM { .. } => 4,
        LayerSpec::GRU { .. } => 3,
        _ => 1,
    }
}

fn infer_layer(
    index: usize,
    layer: &LayerSpec,
    input: &[usize],
    previous: Option<&LayerSpec>,
    token_vocab: Option<usize>,
) -> Result<(Vec<usize>, Vec<(String, Vec<usize>)>), SpecError> {
    let ty = layer.type_name();
    let err = |m: String, fix: Option<Fix>| Err(layer_error(index, ty, m, fix));
    check_limits(index, layer)?;
    match layer {
        LayerSpec::Dense { units, use_bias, .. } => {
            if *units == 0 {
                return err("units must be at least 1".into(), None);
            }
            if input.len() > 2 {
                return err(
                    format!("expects a flat input but gets {input:?}; insert Flatten before it"),
                    Some(Fix::Insert { index, layer: LayerSpec::Flatten }),
                );
            }
            let features = *input.last().unwrap();
            let mut out = input.to_vec();
            *out.last_mut().unwrap() = *units;
            let mut params = vec![("weight".to_string(), vec![*units, features])];
            if use_bias.unwrap_or(true) {
                params.push(("bias".into(), vec![*units]));
            }
            Ok((out, params))
        }
        LayerSpec::Conv2D { filters, kernel_size, strides, padding, use_bias, .. } => {
            let [c, h, w] = image_input(index, ty, input)?;
            let [kh, kw] = kernel_size.hw();
            let [sh, sw] = strides.map_or([1, 1], Size2::hw);
            if *filters == 0 {
                return err("filters must be at least 1".into(), None);
            }
            if kh == 0 || kw == 0 {
                return err(format!("kernel_size must be at least 1, got {kh}x{kw}"), None);
            }
            if sh == 0 || sw == 0 {
                return err(format!("strides must be at least 1, got {sh}x{sw}"), None);
            }
            let (oh, ow) = match padding.unwrap_or_default() {
                Padding::Same => (h.div_ceil(sh), w.div_ceil(sw)),
                Padding::Valid => {
                    if kh > h || kw > w {
                        return err(
                            format!("kernel {kh}x{kw} is larger than its input {h}x{w} (input shape {input:?}); use a smaller kernel_size or padding \"same\""),
                            None,
                        );
                    }
                    ((h - kh) / sh + 1, (w - kw) / sw + 1)
                }
            };
            let mut params = vec![("weight".to_string(), vec![*filters, c, kh, kw])];
            if use_bias.unwrap_or(true) {
                params.push(("bias".into(), vec![*filters]));
            }
            Ok((vec![*filters, oh, ow], params))
        }
        LayerSpec::MaxPool2D { pool_size, strides } | LayerSpec::AveragePool2D { pool_size, strides } => {
            let [c, h, w] = image_input(index, ty, input)?;
            let [ph, pw] = pool_size.hw();
            let [sh, sw] = strides.map_or([ph, pw], Size2::hw);
            if ph == 0 || pw == 0 || sh == 0 || sw == 0 {
                return err(
                    format!("pool_size and strides must be at least 1, got pool {ph}x{pw}, strides {sh}x{sw}"),
                    None,
                );
            }
            if ph > h || pw > w {
                return err(
                    format!("pool {ph}x{pw} is larger than its input {h}x{w} (input shape {input:?}); use a smaller pool_size or remove this layer"),
                    Some(Fix::Remove { index }),
                );
            }
            Ok((vec![c, (h - ph) / sh + 1, (w - pw) / sw + 1], vec![]))
        }
        LayerSpec::Flatten => Ok((vec![volume(input)], vec![])),
        LayerSpec::Dropout { rate } => {
            if !(0.0..1.0).contains(rate) {
                return err(format!("rate must be in [0, 1), got {rate}; 0.2 to 0.5 is usual"), None);
            }
            Ok((input.to_vec(), vec![]))
        }
        LayerSpec::Reshape { target_shape } => {
            let total: usize = input.iter().product();
            let out = resolve_reshape(target_shape, total).map_err(|m| {
                layer_error(
                    index,
                    ty,
                    format!("cannot reshape {input:?} ({total} values) to {target_shape:?}: {m}"),
                    None,
                )
            })?;
            Ok((out, vec![]))
        }
        LayerSpec::ReLU | LayerSpec::Tanh | LayerSpec::Sigmoid | LayerSpec::GELU | LayerSpec::Softmax => {
            Ok((input.to_vec(), vec![]))
        }
        LayerSpec::SimpleRNN { units, return_sequences }
        | LayerSpec::LSTM { units, return_sequences }
        | LayerSpec::GRU { units, return_sequences } => {
            let gates = recurrent_gates(layer);
            if *units == 0 {
                return err("units must be at least 1".into(), None);
            }
            let [steps, features] = sequence_input(index, ty, input, previous)?;
            let g = gates * units;
            let params = vec![
                ("weight_ih_l0".to_string(), vec![g, features]),
                ("weight_hh_l0".to_string(), vec![g, *units]),
                ("bias_ih_l0".to_string(), vec![g]),
                ("bias_hh_l0".to_string(), vec![g]),
            ];
            let out = if return_sequences.unwrap_or(false) { vec![steps, *units] } else { vec![*units] };
            Ok((out, params))
        }
        LayerSpec::LayerNormalization { epsilon } => {
            if epsilon.is_some_and(|e| !(e > 0.0 && e.is_finite())) {
                return err(
                    format!("epsilon must be a small positive number, got {}; 1e-5 is usual", epsilon.unwrap()),
                    None,
                );
            }
            let d = *input.last().unwrap();
            Ok((input.to_vec(), vec![("weight".into(), vec![d]), ("bias".into(), vec![d])]))
        }
        LayerSpec::PositionalEmbedding { kind } => {
            let [steps, d] = sequence_input(index, ty, input, previous)?;
            let params =
                if *kind == PositionKind::Learned { vec![("weight".to_string(), vec![steps, d])] } else { vec![] };
            Ok((input.to_vec(), params))
        }
        LayerSpec::MultiHeadAttention { num_heads, key_dim, .. } => {
            let [_, d] = sequence_input(index, ty, input, previous)?;
            check_heads(index, ty, d, *num_heads, *key_dim)?;
            Ok((input.to_vec(), attention_params("", d)))
        }
        LayerSpec::TransformerEncoder { num_heads, ff_dim, dropout, .. } => {
            let [_, d] = sequence_input(index, ty, input, previous)?;
            check_heads(index, ty, d, *num_heads, None)?;
            if *ff_dim == 0 {
                return err("ff_dim must be at least 1".into(), None);
            }
            if dropout.is_some_and(|r| !(0.0..1.0).contains(&r)) {
                return err(format!("dropout must be in [0, 1), got {}", dropout.unwrap()), None);
            }
            let mut params = attention_params("self_attn.", d);
            params.extend([
                ("linear1.weight".to_string(), vec![*ff_dim, d]),
                ("linear1.bias".into(), vec![*ff_dim]),
                ("linear2.weight".into(), vec![d, *ff_dim]),
                ("linear2.bias".into(), vec![d]),
                ("norm1.weight".into(), vec![d]),
                ("norm1.bias".into(), vec![d]),
                ("norm2.weight".into(), vec![d]),
                ("norm2.bias".into(), vec![d]),
            ]);
            Ok((input.to_vec(), params))
        }
        LayerSpec::Patchify { patch_size } => {
            let [c, h, w] = image_input(index, ty, input)?;
            let p = *patch_size;
            if p == 0 || h % p != 0 || w % p != 0 {
                let divisors: Vec<String> =
                    (1..=h.min(w)).filter(|d| h % d == 0 && w % d == 0).map(|d| d.to_string()).collect();
                return err(
                    format!("patch_size {p} does not divide the image {h}x{w}; use one of {}", divisors.join(", ")),
                    None,
                );
            }
            Ok((vec![(h / p) * (w / p), c * p * p], vec![]))
        }
        LayerSpec::GlobalAveragePooling1D => {
            let [_, d] = sequence_input(index, ty, input, previous)?;
            Ok((vec![d], vec![]))
        }
        LayerSpec::Embedding { input_dim, output_dim } => {
            let Some(vocab) = token_vocab.filter(|_| index == 0) else {
                return err("takes token ids, so it must be the first layer of a model on a sequence task (reverse, sort, copy)".into(), if index > 0 { Some(Fix::Remove { index }) } else { None });
            };
            if *output_dim == 0 {
                return err("output_dim must be at least 1".into(), None);
            }
            if *input_dim < vocab {
                return err(format!("input_dim {input_dim} is smaller than the task's vocabulary of {vocab} tokens; use input_dim {vocab}"), None);
            }
            Ok((vec![input[0], *output_dim], vec![("weight".into(), vec![*input_dim, *output_dim])]))
        }
    }
}

/// The most epochs a run may ask for (a stated maximum: steps are counted in
/// `usize` and `epochs * steps per epoch` must never wrap).
pub const MAX_EPOCHS: usize = 1000;
/// The most examples in one batch (the page's field allows the same).
pub const MAX_BATCH_SIZE: usize = 4096;
/// The most units, filters, heads, `ff_dim`, `key_dim`, `input_dim` or
/// `output_dim` one layer may have.
pub const MAX_WIDTH: usize = 65_536;
/// The largest kernel, pool, stride or patch size.
pub const MAX_WINDOW: usize = 1024;

/// Every count a layer takes, against its stated maximum, before any
/// arithmetic on it: the message names the field.
fn check_limits(index: usize, layer: &LayerSpec) -> Result<(), SpecError> {
    let ty = layer.type_name();
    let at_most = |field: &str, value: usize, max: usize| {
        if value > max {
            Err(layer_error(
                index,
                ty,
                format!("{field} {value} is more than the {max} layerlab allows; use at most {max}"),
                None,
            ))
        } else {
            Ok(())
        }
    };
    let window = |field: &str, size: Option<Size2>| {
        size.map_or(Ok(()), |s| s.hw().iter().try_for_each(|&v| at_most(field, v, MAX_WINDOW)))
    };
    match layer {
        LayerSpec::Dense { units, .. }
        | LayerSpec::SimpleRNN { units, .. }
        | LayerSpec::LSTM { units, .. }
        | LayerSpec::GRU { units, .. } => at_most("units", *units, MAX_WIDTH),
        LayerSpec::Conv2D { filters, kernel_size, strides, .. } => {
            at_most("filters", *filters, MAX_WIDTH)?;
            window("kernel_size", Some(*kernel_size))?;
            window("strides", *strides)
        }
        LayerSpec::MaxPool2D { pool_size, strides } | LayerSpec::AveragePool2D { pool_size, strides } => {
            window("pool_size", Some(*pool_size))?;
            window("strides", *strides)
        }
        LayerSpec::MultiHeadAttention { num_heads, key_dim, .. } => {
            at_most("num_heads", *num_heads, MAX_WIDTH)?;
            at_most("key_dim", key_dim.unwrap_or(0), MAX_WIDTH)
        }
        LayerSpec::TransformerEncoder { num_heads, ff_dim, .. } => {
            at_most("num_heads", *num_heads, MAX_WIDTH)?;
            at_most("ff_dim", *ff_dim, MAX_WIDTH)
        }
        LayerSpec::Patchify { patch_size } => at_most("patch_size", *patch_size, MAX_WINDOW),
        LayerSpec::Embedding { input_dim, output_dim } => {
            at_most("input_dim", *input_dim, MAX_WIDTH)?;
            at_most("output_dim", *output_dim, MAX_WIDTH)
        }
        _ => Ok(()),
    }
}

/// The most parameters one layer may have, and the most values one example may
/// occupy in a layer's output or unfolded patches: beyond these a model would not
/// fit in a browser tab (wasm32 has 4 GiB in all).
pub const MAX_LAYER_PARAMS: usize = 50_000_000;
pub const MAX_VALUES_PER_EXAMPLE: usize = 16_000_000;

fn volume(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// Keeps models within what a browser can hold, with a message instead of an
/// out-of-memory crash.
fn check_size(
    index: usize,
    layer: &LayerSpec,
    input: &[usize],
    output: &[usize],
    params: &[(String, Vec<usize>)],
) -> Result<(), SpecError> {
    let ty = layer.type_name();
    let count = params.iter().fold(0usize, |a, (_, s)| a.saturating_add(volume(s)));
    if count > MAX_LAYER_PARAMS {
        return Err(layer_error(index, ty, format!("would have {count} parameters, more than the {MAX_LAYER_PARAMS} a layer may have here; use fewer units or filters, or pool before it"), None));
    }
    if volume(output) > MAX_VALUES_PER_EXAMPLE {
        return Err(layer_error(index, ty, format!("outputs {output:?} = {} values per example, more than the {MAX_VALUES_PER_EXAMPLE} allowed; use fewer units or filters, or larger strides", volume(output)), None));
    }
    if let LayerSpec::Conv2D { kernel_size, .. } = layer {
        let [kh, kw] = kernel_size.hw();
        let patches = volume(&[input[0], kh, kw, output[1], output[2]]);
        if patches > MAX_VALUES_PER_EXAMPLE {
            return Err(layer_error(index, ty, format!("unfolds {patches} values per example (channels x kernel x output size), more than the {MAX_VALUES_PER_EXAMPLE} allowed; use a smaller kernel_size or larger strides"), None));
        }
    }
    Ok(())
}

/// Parameter names and shapes of a PyTorch `MultiheadAttention` under `prefix`.
fn attention_params(prefix: &str, d: usize) -> Vec<(String, Vec<usize>)> {
    vec![
        (format!("{prefix}in_proj_weight"), vec![3 * d, d]),
        (format!("{prefix}in_proj_bias"), vec![3 * d]),
        (format!("{prefix}out_proj.weight"), vec![d, d]),
        (format!("{prefix}out_proj.bias"), vec![d]),
    ]
}

fn check_heads(index: usize, ty: &str, d: usize, heads: usize, key_dim: Option<usize>) -> Result<(), SpecError> {
    if heads == 0 || d % heads != 0 {
        let options: Vec<String> = (1..=d).filter(|h| d % h == 0).map(|h| h.to_string()).collect();
        return Err(layer_error(
            index,
            ty,
            format!("num_heads {heads} must divide the feature size {d}; use one of {}", options.join(", ")),
            None,
        ));
    }
    if let Some(k) = key_dim.filter(|&k| k != d / heads) {
        return Err(layer_error(
            index,
            ty,
            format!("key_dim {k} must be features / num_heads = {} (as in PyTorch); leave it out", d / heads),
            None,
        ));
    }
    Ok(())
}

/// The input of a sequence layer must be [steps, features].
fn sequence_input(
    index: usize,
    ty: &str,
    input: &[usize],
    previous: Option<&LayerSpec>,
) -> Result<[usize; 2], SpecError> {
    if let [t, f] = *input {
        return Ok([t, f]);
    }
    let suggestion: Vec<i64> = match input {
        [1, h, w] => vec![*h as i64, *w as i64],
        [first, rest @ ..] if !rest.is_empty() => vec![*first as i64, volume(rest) as i64],
        _ => vec![],
    };
    let from = match previous {
        None => "the input".to_string(),
        Some(p) => format!("layer {} {}", index - 1, p.type_name()),
    };
    let message = if suggestion.is_empty() {
        format!("expects a sequence [steps, features] but gets {input:?} from {from}; reshape it to [steps, features] first")
    } else {
        format!("expects a sequence [steps, features] but gets {input:?} from {from}; insert Reshape {suggestion:?} before it")
    };
    let fix =
        (!suggestion.is_empty()).then(|| Fix::Insert { index, layer: LayerSpec::Reshape { target_shape: suggestion } });
    Err(layer_error(index, ty, message, fix))
}

/// The input of an image layer must be [channels, height, width].
fn image_input(index: usize, ty: &str, input: &[usize]) -> Result<[usize; 3], SpecError> {
    if let [c, h, w] = *input {
        return Ok([c, h, w]);
    }
    let total: usize = input.iter().product();
    let side = (total as f64).sqrt().round() as usize;
    let suggestion = match input {
        [h, w] => Some(vec![1, *h as i64, *w as i64]),
        [_] if side * side == total => Some(vec![1, side as i64, side as i64]),
        _ => None,
    };
    let message = match &suggestion {
        Some(s) => {
            format!("expects an image [channels, height, width] but gets {input:?}; insert Reshape {s:?} before it")
        }
        None => {
            format!("expects an image [channels, height, width] but gets {input:?}; reshape its input to 3 axes first")
        }
    };
    Err(layer_error(
        index,
        ty,
        message,
        suggestion.map(|target_shape| Fix::Insert { index, layer: LayerSpec::Reshape { target_shape } }),
    ))
}

fn resolve_reshape(target: &[i64], total: usize) -> Result<Vec<usize>, String> {
    if target.is_empty() {
        return Err("target_shape is empty".into());
    }
    let unknown = target.iter().filter(|&&d| d == -1).count();
    if unknown > 1 || target.iter().any(|&d| d == 0 || d < -1) {
        return Err("every size must be positive, with at most one -1 for \"the rest\"".into());
    }
    let known = target
        .iter()
        .filter(|&&d| d > 0)
        .fold(1usize, |a, &d| a.saturating_mul(usize::try_from(d).unwrap_or(usize::MAX)));
    let mut out: Vec<usize> = target.iter().map(|&d| usize::try_from(d.max(0)).unwrap_or(usize::MAX)).collect();
    if unknown == 1 {
        if total % known != 0 {
            return Err(format!("{total} is not divisible by {known}"));
        }
        *out.iter_mut().find(|d| **d == 0).unwrap() = total / known;
    } else if known != total {
        return Err(format!("the target holds {known} values"));
    }
    Ok(out)
}
