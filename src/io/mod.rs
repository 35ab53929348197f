//! Files in and out: weights (and batches, gradients) as safetensors, share
//! links, and export to PyTorch and Keras.

pub mod escape;
pub mod export;
pub mod keras;
pub mod share;
pub mod weights;
