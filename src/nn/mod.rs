//! Layers and models: a `Model` is built from a `ModelSpec` and owns its parameters.

pub mod model;
pub mod spec;

pub use model::{Mode, Model};
pub use spec::{Activation, LayerSpec, ModelInfo, ModelSpec};
