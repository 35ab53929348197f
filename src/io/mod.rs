//! Files in and out: weights (and batches, gradients) as safetensors.

pub mod weights;
