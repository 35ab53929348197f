//! Files in and out: weights (and batches, gradients) as safetensors, and share
//! links.

pub mod share;
pub mod weights;
