//! Layers and models: the spec (`spec`, the ground floor: what a model is,
//! checked by shape inference), the layers (`layers`, one file per type), and
//! the `Model` built from a spec, which owns its parameters.

pub mod layers;
pub mod model;
pub mod spec;

pub use layers::{Activation, LayerSpec, Mode};
pub use model::Model;
pub use spec::{ModelInfo, ModelSpec};
