//! layerlab: a deep-learning playground. This crate is the engine (tensors,
//! autograd, layers, optimizers, data, training, weight files), which builds
//! natively and for wasm32; the page's UI and worker sit on top of it.

pub mod autograd;
pub mod backend;
pub mod data;
pub mod error;
pub mod escape;
pub mod io;
pub mod nn;
pub mod optim;
pub mod tensor;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod ui;
pub mod worker;

pub use error::{Error, Result, SpecError};
pub use nn::{Model, ModelSpec};
pub use tensor::Tensor;
pub use train::Trainer;

/// The built-in presets, by file name (without `.json`), as shipped in `assets/presets/`.
pub const PRESETS: &[(&str, &str)] = &[
    ("seed-cnn", include_str!("../assets/presets/seed-cnn.json")),
    ("mlp", include_str!("../assets/presets/mlp.json")),
    ("seed-lstm", include_str!("../assets/presets/seed-lstm.json")),
    ("tiny-vit", include_str!("../assets/presets/tiny-vit.json")),
    ("reverse-transformer", include_str!("../assets/presets/reverse-transformer.json")),
    ("reverse-lstm", include_str!("../assets/presets/reverse-lstm.json")),
];

/// A built-in preset's spec by name.
pub fn preset(name: &str) -> Option<ModelSpec> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, text)| ModelSpec::from_json(text).expect("presets are valid"))
}
