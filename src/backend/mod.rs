//! Where kernels live. Kernels see arrays and layouts, never the autograd graph,
//! so a second backend (the GPU path) is an addition beside `cpu`, not a rewrite.

pub mod cpu;
