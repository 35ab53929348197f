//! Files in and out: model specs as JSON text, weights (and batches, gradients)
//! as safetensors, share links, and export to PyTorch and Keras.

pub mod export;
pub mod share;
pub mod spec_file;
pub mod weights;

/// The Keras exporter, also under its old path.
pub use export::keras;
