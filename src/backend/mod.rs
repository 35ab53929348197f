//! Where kernels live. Kernels see arrays and layouts, never the autograd graph,
//! so a second backend (the GPU path) is an addition beside `cpu`, not a rewrite.

pub mod cpu;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm_gemm;
