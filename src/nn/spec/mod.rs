//! `ModelSpec`: the one description of a model (JSON, serde) that the CLI, the page,
//! export and tests share, and shape inference over it, which turns every invalid
//! stack into a `SpecError` that names the layer, the shapes and the fix.
//!
//! The spec is the engine's ground floor: it imports neither `data` nor `error`
//! (`crate::error::Error` wraps a `SpecError`; `data` loads what a
//! `DatasetSpec` names). Each layer's config and inference is in its file under
//! `nn/layers/`; this module runs them in order and checks the whole.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod dataset;

pub use super::layers::{
    Activation, Fix, LayerSpec, Padding, PositionKind, Size2, SpecError, LAYER_GROUPS, LAYER_TYPES, MAX_LAYER_PARAMS,
    MAX_VALUES_PER_EXAMPLE, MAX_WIDTH, MAX_WINDOW,
};
pub use dataset::DatasetSpec;

use super::layers::{volume, Context, LayerConfig, Param};

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

impl LayerSpec {
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
            .map_err(|e| format!("{name}: {}", crate::text::value_error(&e.to_string())))
    }

    /// The values of parameter `name` when they are a few words, for a list
    /// to choose from instead of a text field: the activations, the padding,
    /// the kind of positions, and the switches (`true`, `false`). `None` for
    /// numbers and shapes. Whether the parameter may be left unset (its
    /// default) is `with_param(name, "")`.
    pub fn param_choices(&self, name: &str) -> Option<&'static [&'static str]> {
        match name {
            // PyTorch's TransformerEncoderLayer takes these two only.
            "activation" if matches!(self, LayerSpec::TransformerEncoder(_)) => Some(&["relu", "gelu"]),
            "activation" => Some(&["linear", "relu", "tanh", "sigmoid", "gelu", "softmax"]),
            "padding" => Some(&["valid", "same"]),
            "kind" => Some(&["learned", "sinusoidal"]),
            "use_bias" | "return_sequences" | "causal" | "norm_first" => Some(&["true", "false"]),
            _ => None,
        }
    }

    /// What parameter `name` means, in one line (the editor's tooltip). A
    /// name means the same in every layer that takes it, as in Keras; empty
    /// for a name no layer takes.
    pub fn param_help(name: &str) -> &'static str {
        match name {
            "units" => "How many outputs (Dense), or values in the hidden state (an RNN).",
            "activation" => "The function applied to the outputs: relu, tanh, sigmoid, gelu, softmax, or linear (none).",
            "use_bias" => "Whether a trained bias is added (default true).",
            "filters" => "How many kernels, so how many feature maps come out.",
            "kernel_size" => "The window each kernel sees: 3 for 3x3, or [height, width].",
            "strides" => "The step between windows: 2 halves the output. Default 1 (pooling: the pool size).",
            "padding" => "valid: no padding, the output shrinks; same: zero padding keeps the size (with strides 1).",
            "pool_size" => "The window: 2 keeps one value of each 2x2.",
            "rate" => "The fraction of values dropped while training, from 0 to below 1; 0.2 to 0.5 is usual.",
            "target_shape" => "The new shape, e.g. [28, 28]; -1 for one axis to infer.",
            "return_sequences" => "true: the state at every step, [T, units] (for another RNN or attention); false: the last, [units].",
            "input_dim" => "How many token ids there are (the vocabulary).",
            "output_dim" => "The length of each token's vector.",
            "patch_size" => "The side of each square patch; the image's side must divide by it.",
            "kind" => "learned: trained position vectors; sinusoidal: fixed sines and cosines (Vaswani et al. 2017).",
            "num_heads" => "How many attention heads look in parallel; the features must divide by it.",
            "key_dim" => "The length of each head's queries and keys (default: features / num_heads).",
            "causal" => "true: each position sees only itself and the positions before it.",
            "ff_dim" => "The width of the feed-forward block.",
            "dropout" => "The dropout rate inside the block while training.",
            "norm_first" => "true: normalize before attention and the feed-forward block (pre-LN, steadier); false: after (the original).",
            "epsilon" => "Added to the variance before dividing by it, for stability.",
            _ => "",
        }
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
    /// Whether `other` is the same model: the same data and layers (the
    /// training settings and the name aside).
    pub fn same_model(&self, other: &ModelSpec) -> bool {
        self.input == other.input && self.layers == other.layers
    }

    /// The spec in a parsed JSON value, with serde's errors turned into messages
    /// that name the layer or section (`ModelSpec::from_json`, in `io`, also
    /// parses the text).
    pub fn from_value(root: &Value) -> Result<ModelSpec, SpecError> {
        let Value::Object(obj) = root else {
            return Err(SpecError::top("a model spec must be a JSON object with \"input\" and \"layers\""));
        };
        for key in obj.keys() {
            if !["name", "input", "layers", "training"].contains(&key.as_str()) {
                return Err(SpecError::top(format!(
                    "unknown key {:?} in the model spec; expected name, input, layers, training",
                    crate::escape::shorten(key)
                )));
            }
        }
        let name = match obj.get("name") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(SpecError::top("\"name\" must be a string")),
        };
        let input = obj.get("input").ok_or_else(|| {
            SpecError::top("the spec has no \"input\" (e.g. {\"dataset\": \"mnist\", \"shape\": [1, 28, 28]})")
        })?;
        let input: DatasetSpec = serde_json::from_value(input.clone())
            .map_err(|e| SpecError::top(format!("input: {}", crate::text::value_error(&e.to_string()))))?;
        let layers_value = obj.get("layers").ok_or_else(|| SpecError::top("the spec has no \"layers\" list"))?;
        let Value::Array(items) = layers_value else {
            return Err(SpecError::top("\"layers\" must be a list of layers"));
        };
        let layers = items.iter().enumerate().map(|(i, v)| parse_layer(i, v)).collect::<Result<Vec<_>, _>>()?;
        let training = match obj.get("training") {
            None => TrainingSpec::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| SpecError::top(format!("training: {}", crate::text::value_error(&e.to_string()))))?,
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
        let passes = |l: &LayerSpec| matches!(l, LayerSpec::Flatten(_) | LayerSpec::Reshape(_) | LayerSpec::Dropout(_));
        let before_passing = |end: usize| (0..end).rev().find(|&i| !passes(&self.layers[i]));
        let Some(s) = before_passing(self.layers.len()) else { return Ok(None) };
        let softmax = &self.layers[s];
        if softmax.activation() != Some(Activation::Softmax) {
            return Ok(None);
        }
        let ty = softmax.type_name();
        if let Some(d) = (s + 1..self.layers.len()).find(|&i| matches!(self.layers[i], LayerSpec::Dropout(_))) {
            return Err(SpecError::layer(
                d,
                "Dropout",
                format!("comes after the output softmax of layer {s} {ty}, so in training it would drop class probabilities, not features; put Dropout before layer {s} or remove it"),
                Some(Fix::Remove { index: d }),
            ));
        }
        let axis = infos[s].output_shape.last().copied().unwrap_or(0);
        let classes = self.input.classes();
        if axis != classes {
            let fix = matches!(softmax, LayerSpec::Softmax(_)).then_some(Fix::Remove { index: s });
            let how = if fix.is_some() { "remove this layer" } else { "set its activation to linear" };
            return Err(SpecError::layer(
                s,
                ty,
                format!("applies softmax over the last axis of {:?} ({axis} values), but the model's output is read as probabilities over the {classes} classes; {how}: the loss applies softmax itself", infos[s].output_shape),
                fix,
            ));
        }
        if matches!(softmax, LayerSpec::Softmax(_)) {
            if let Some(p) = before_passing(s).filter(|&p| self.layers[p].activation() == Some(Activation::Softmax)) {
                return Err(SpecError::layer(
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
        let token_vocab = self.input.is_tokens().then(|| self.input.classes());
        for (index, layer) in self.layers.iter().enumerate() {
            let cx = Context {
                index,
                type_name: layer.type_name(),
                input: &shape,
                previous: index.checked_sub(1).map(|i| &self.layers[i]),
                token_vocab,
            };
            let (output_shape, params) = match infer_layer(&cx, layer.config()) {
                Ok(x) => x,
                Err(e) => return (layers, Some(e)),
            };
            let param_count = params.iter().map(|p| p.shape.iter().product::<usize>()).sum();
            layers.push(LayerInfo {
                index,
                layer_type: layer.type_name().to_string(),
                input_shape: shape.clone(),
                output_shape: output_shape.clone(),
                params: params.into_iter().map(|p| (p.name, p.shape)).collect(),
                param_count,
            });
            shape = output_shape;
        }
        (layers, None)
    }
}

/// One layer's output shape and parameters: its counts against their maxima,
/// its own inference, then the sizes a browser can hold.
fn infer_layer(cx: &Context, layer: &dyn LayerConfig) -> Result<(Vec<usize>, Vec<Param>), SpecError> {
    for limit in layer.limits() {
        if limit.value > limit.max {
            let (field, value, max) = (limit.field, limit.value, limit.max);
            let (value, max) = (crate::text::format_count(value as u64), crate::text::format_count(max as u64));
            return cx.fail(format!("{field} {value} is more than the {max} layerlab allows; use at most {max}"), None);
        }
    }
    let output = layer.infer(cx)?;
    let params = layer.params(cx.input, &output);
    check_size(cx, layer, &output, &params)?;
    Ok((output, params))
}

fn parse_layer(index: usize, value: &Value) -> Result<LayerSpec, SpecError> {
    let ty = match value.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(SpecError::layer(index, "", "\"type\" must be a string such as \"Dense\"", None)),
        None => {
            return Err(SpecError::layer(
                index,
                "",
                format!("has no \"type\"; use one of {}", LAYER_TYPES.join(", ")),
                None,
            ))
        }
    };
    if !LAYER_TYPES.contains(&ty.as_str()) {
        let hint = LAYER_TYPES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&ty))
            .map(|k| format!("did you mean {k}? "))
            .unwrap_or_default();
        // The type is user text: quoted and escaped (no control characters reach a terminal).
        let shown = format!("{:?}", crate::escape::shorten(&ty));
        return Err(SpecError::layer(
            index,
            &shown[1..shown.len() - 1],
            format!("unknown layer type {shown}; {hint}known types: {}", LAYER_TYPES.join(", ")),
            None,
        ));
    }
    // serde quotes the user's text (an unknown variant or field): in words, printable only.
    serde_json::from_value(value.clone())
        .map_err(|e| SpecError::layer(index, &ty, crate::text::value_error(&e.to_string()), None))
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
    let bad = |m: String| Err(SpecError::top(format!("training: {m}")));
    if !(1..=MAX_BATCH_SIZE).contains(&t.batch_size) {
        return bad(format!(
            "batch_size must be between 1 and {}, got {}; 64 is usual",
            crate::text::format_count(MAX_BATCH_SIZE as u64),
            crate::text::format_count(t.batch_size as u64)
        ));
    }
    if !(1..=MAX_EPOCHS).contains(&t.epochs) {
        return bad(format!(
            "epochs must be between 1 and {}, got {}",
            crate::text::format_count(MAX_EPOCHS as u64),
            crate::text::format_count(t.epochs as u64)
        ));
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

/// The most epochs a run may ask for (a stated maximum: steps are counted in
/// `usize` and `epochs * steps per epoch` must never wrap).
pub const MAX_EPOCHS: usize = 1000;
/// The most examples in one batch (the page's field allows the same).
pub const MAX_BATCH_SIZE: usize = 4096;
/// Keeps models within what a browser can hold, with a message instead of an
/// out-of-memory crash.
fn check_size(cx: &Context, layer: &dyn LayerConfig, output: &[usize], params: &[Param]) -> Result<(), SpecError> {
    let count = params.iter().fold(0usize, |a, p| a.saturating_add(volume(&p.shape)));
    if count > MAX_LAYER_PARAMS {
        return cx.fail(format!("would have {} parameters, more than the {} a layer may have here; use fewer units or filters, or pool before it", crate::text::format_count(count as u64), crate::text::format_count(MAX_LAYER_PARAMS as u64)), None);
    }
    if volume(output) > MAX_VALUES_PER_EXAMPLE {
        return cx.fail(format!("outputs {output:?} = {} values per example, more than the {} allowed; use fewer units or filters, or larger strides", crate::text::format_count(volume(output) as u64), crate::text::format_count(MAX_VALUES_PER_EXAMPLE as u64)), None);
    }
    layer.check_working_memory(cx.input, output).map_err(|m| cx.error(m, None))
}
