//! Files in and out: weights (and batches, gradients) as safetensors, share
//! links, and export to PyTorch and Keras.

pub mod escape;
pub mod export;
pub mod share;
pub mod weights;

/// The Keras exporter, also under its old path.
pub use export::keras;
