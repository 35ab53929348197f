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
pub mod text;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod ui;
pub mod worker;

pub use error::{Error, Result, SpecError};
pub use nn::{Model, ModelSpec};
pub use tensor::Tensor;
pub use train::Trainer;

/// A built-in model: its id (the file name in `assets/presets/`, without
/// `.json`), the name and one-line description the page shows, and its spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The spec as JSON (`ModelSpec::from_json`).
    pub json: &'static str,
}

/// The built-in presets, in the order the page offers them.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "seed-cnn",
        title: "Seed CNN",
        description: "Three 3x3 convolutions with max pooling, then two Dense layers: the classic digit classifier.",
        json: include_str!("../assets/presets/seed-cnn.json"),
    },
    Preset {
        id: "mlp",
        title: "MLP",
        description: "The pixels into one hidden Dense layer of 128 with Dropout: the simplest digit classifier.",
        json: include_str!("../assets/presets/mlp.json"),
    },
    Preset {
        id: "seed-lstm",
        title: "Row LSTM",
        description: "An LSTM of 128 units reads each digit row by row: 28 time steps of 28 pixels.",
        json: include_str!("../assets/presets/seed-lstm.json"),
    },
    Preset {
        id: "tiny-vit",
        title: "Tiny ViT",
        description: "A vision transformer: 7x7 patches, learned positions, two encoder layers of 4 heads.",
        json: include_str!("../assets/presets/tiny-vit.json"),
    },
    Preset {
        id: "reverse-transformer",
        title: "Reverse a sequence (Transformer)",
        description: "Two encoder layers learn to reverse 8 tokens; the attention maps show the mirror.",
        json: include_str!("../assets/presets/reverse-transformer.json"),
    },
    Preset {
        id: "reverse-lstm",
        title: "Reverse a sequence (LSTM)",
        description: "An LSTM learns the same task, reading the tokens one by one: compare it with attention.",
        json: include_str!("../assets/presets/reverse-lstm.json"),
    },
];

/// A built-in preset's spec by id.
pub fn preset(id: &str) -> Option<ModelSpec> {
    PRESETS.iter().find(|p| p.id == id).map(Preset::spec)
}

impl Preset {
    /// The preset's spec.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec::from_json(self.json).expect("presets are valid")
    }

    /// The preset whose model (data and layers) `spec` is, if any: its
    /// training settings may differ, they are no part of the model.
    pub fn of(spec: &ModelSpec) -> Option<&'static Preset> {
        PRESETS.iter().find(|p| p.spec().same_model(spec))
    }
}
