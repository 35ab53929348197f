//! Files in and out: model specs as JSON text, weights (and batches, gradients)
//! as safetensors, share links, and export to PyTorch and Keras.

pub mod export;
#[cfg(target_arch = "wasm32")]
pub mod fetch;
pub mod share;
pub mod spec_file;
pub mod weights;

/// The Keras exporter, also under its old path.
pub use export::keras;
