//! Files in and out: weights (and batches, gradients) as safetensors, share
//! links, and export to PyTorch.

pub mod export;
pub mod share;
pub mod weights;
