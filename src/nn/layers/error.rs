//! `SpecError`, a mistake in a model spec pinned to its layer (found by a
//! layer's inference or by the whole spec's checks), and `Fix`, the mechanical
//! repair the page can offer for it. Here, with the layers, because a `Fix`
//! holds a layer: the layers import nothing from the rest of the spec.

use serde::{Deserialize, Serialize};

use super::LayerSpec;

/// A mistake in a model spec, pinned to the layer that causes it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", location(*.layer, .layer_type))]
pub struct SpecError {
    /// 0-based index into `layers`, or `None` for the input or training sections.
    pub layer: Option<usize>,
    /// The layer's type name as written in the spec (`"Dense"`), empty when unknown.
    pub layer_type: String,
    /// What is wrong, with the shapes involved and how to fix it.
    pub message: String,
    /// A mechanical fix the UI can offer as a button, when there is one.
    pub fix: Option<Fix>,
}

impl SpecError {
    /// A mistake in layer `index` of type `layer_type`.
    pub fn layer(index: usize, layer_type: &str, message: impl Into<String>, fix: Option<Fix>) -> SpecError {
        SpecError { layer: Some(index), layer_type: layer_type.to_string(), message: message.into(), fix }
    }

    /// A mistake outside the layers (the spec's top level, `input`, `training`).
    pub fn top(message: impl Into<String>) -> SpecError {
        SpecError { layer: None, layer_type: String::new(), message: message.into(), fix: None }
    }
}

fn location(layer: Option<usize>, layer_type: &str) -> String {
    match (layer, layer_type.is_empty()) {
        (Some(i), false) => format!("layer {i} {layer_type}: "),
        (Some(i), true) => format!("layer {i}: "),
        (None, _) => String::new(),
    }
}

/// A mechanical fix for a `SpecError`, which the page can offer as a button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Fix {
    /// Insert `layer` at `index` (before the offending layer).
    Insert { index: usize, layer: LayerSpec },
    /// Insert `layers`, in order, at `index`.
    InsertAll { index: usize, layers: Vec<LayerSpec> },
    /// Remove the layer at `index`.
    Remove { index: usize },
}

impl Fix {
    /// Applies the fix to a layer list.
    pub fn apply(&self, layers: &mut Vec<LayerSpec>) {
        match self {
            Fix::Insert { index, layer } => layers.insert((*index).min(layers.len()), layer.clone()),
            Fix::InsertAll { index, layers: new } => {
                let at = (*index).min(layers.len());
                layers.splice(at..at, new.iter().cloned());
            }
            Fix::Remove { index } => {
                if *index < layers.len() {
                    layers.remove(*index);
                }
            }
        }
    }
}
