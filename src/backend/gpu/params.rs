//! The parameters of every kernel family as a `#[repr(C)]` struct: the Rust
//! side fills it and `Gpu::dispatch` copies its bytes into the kernel's
//! uniform block; the WGSL side reads field `f` as `p(P_F)` (`pf` for an
//! f32, `p(P_F + i)` for element `i` of an array field), with `P_F` its word
//! index, generated from the struct (`Params::wgsl_names`). The two sides
//! therefore agree by construction, not by comments.

use super::PARAM_BYTES;

/// A kernel family's parameters.
pub trait Params: bytemuck::Pod {
    /// WGSL constants `P_FIELD`, the word index of each field.
    fn wgsl_names() -> String;
    /// WGSL functions the family's kernels share (index arithmetic over the
    /// parameters), from `wgsl/<file>.wgsl`.
    fn wgsl_helpers() -> &'static str;
}

macro_rules! params {
    ($($(#[$doc:meta])* $name:ident $(+ $helpers:literal)? { $($(#[$fdoc:meta])* $field:ident: $ty:ty,)* })*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        const _: () = assert!(std::mem::size_of::<$name>() <= PARAM_BYTES, "kernel parameters over the uniform block");

        impl Params for $name {
            fn wgsl_names() -> String {
                let mut s = String::new();
                $(s.push_str(&format!(
                    "const P_{}: u32 = {}u;\n",
                    stringify!($field).to_uppercase(),
                    std::mem::offset_of!($name, $field) / 4
                ));)*
                s
            }
            fn wgsl_helpers() -> &'static str {
                concat!("" $(, include_str!(concat!("wgsl/", $helpers, ".wgsl")))?)
            }
        }
    )*};
}

/// Shapes and strides are right-aligned into 6 axes (size 1, stride 0 in front).
pub type Axes = [u32; 6];

params! {
    /// `COPY`: `dst[dst_offset + i·dst_strides] = src[src_offset + i·src_strides]`
    /// over an index `i` of `shape` (`count` elements).
    CopyParams {
        shape: Axes,
        src_strides: Axes,
        dst_strides: Axes,
        src_offset: u32,
        dst_offset: u32,
        count: u32,
        /// Axes in use (the last `ndims` of the six; `ops::collapse` merged the rest).
        ndims: u32,
    }

    /// `FILL`: `count` copies of `value`.
    FillParams {
        count: u32,
        value: f32,
    }

    /// `MAP`: op `op` of `a` and `b` (strides 0 where broadcast) over `shape`;
    /// `scalar` for `Scale` and `Offset`.
    MapParams {
        shape: Axes,
        a_strides: Axes,
        b_strides: Axes,
        a_offset: u32,
        b_offset: u32,
        count: u32,
        op: u32,
        scalar: f32,
        /// Axes in use (the last `ndims` of the six).
        ndims: u32,
    }

    /// `SUM`, `SUM_TREE`: output `i` (over `out_shape`, read through the
    /// input's `out_strides` from `offset`) adds `terms` terms over the
    /// reduced axes, merged where their strides allow and right-aligned:
    /// the last `nred` of `red_shape`/`red_strides`. `outputs` × `chunks`
    /// partial sums of at most `chunk` terms each.
    ReduceParams + "reduce_index" {
        out_shape: Axes,
        out_strides: Axes,
        red_shape: Axes,
        red_strides: Axes,
        offset: u32,
        outputs: u32,
        terms: u32,
        chunk: u32,
        chunks: u32,
        nred: u32,
    }

    /// `MAX_AXIS` and its gradient over the middle axis of `[outer, len, inner]`;
    /// `count` = outer × inner.
    AxisParams {
        count: u32,
        len: u32,
        inner: u32,
    }

    /// `GEMM`, `GEMM_SIMD`: `C = A @ B`, `[m, k] @ [k, n]` per batch;
    /// element (b, i, j) of A at `a_offset + b·a_batch + i·a_row + j·a_col`, B
    /// likewise; C contiguous `[batch, splits, m, n]`: split `s` sums terms
    /// `s·k_chunk..(s + 1)·k_chunk` of K (split-K: a product with a long K
    /// and a small `m × n` keeps many workgroups busy, each over a short loop).
    GemmParams {
        k_chunk: u32,
        splits: u32,
        m: u32,
        n: u32,
        k: u32,
        a_offset: u32,
        a_batch: u32,
        a_row: u32,
        a_col: u32,
        b_offset: u32,
        b_batch: u32,
        b_row: u32,
        b_col: u32,
    }

    /// Convolution and pooling kernels: a window over `[c, h, w]` planes,
    /// output `[oh, ow]`, images `first..first + images` (planes, for
    /// pooling), `count` elements.
    WindowParams + "window_range" {
        c: u32,
        h: u32,
        w: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        pad_top: u32,
        pad_left: u32,
        oh: u32,
        ow: u32,
        first: u32,
        images: u32,
        count: u32,
    }

    /// LSTM and GRU steps: `count` = rows × `units`.
    CellParams {
        count: u32,
        units: u32,
    }

    /// Row-wise kernels (softmax, cross-entropy): `rows` rows of `classes`.
    RowsParams {
        rows: u32,
        classes: u32,
    }

    /// `CROSS_ENTROPY_BACKWARD`: `count` = rows × classes.
    LossGradParams {
        count: u32,
        classes: u32,
        rows: u32,
    }

    /// `GATHER_ROWS`, `SCATTER_ROWS`: `count` outputs of rows `width` wide,
    /// `ids` ids; `SCATTER_ROWS` looks through `chunk` ids per invocation.
    LookupParams {
        count: u32,
        width: u32,
        ids: u32,
        chunk: u32,
    }

    /// `SGD`: Keras's momentum update over `count` values.
    SgdParams {
        count: u32,
        lr: f32,
        momentum: f32,
        /// The counter the gradient's non-finite entries are added to.
        slot: u32,
    }

    /// `ADAM`: Keras's update, `alpha` the bias-corrected learning rate.
    AdamParams {
        count: u32,
        alpha: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        /// The counter the gradient's non-finite entries are added to.
        slot: u32,
    }

    /// `COUNT_NONFINITE` (`count` values) and `COUNT_CORRECT` (`count` rows of
    /// `classes`) add to word `slot` of a counter buffer.
    CountParams {
        count: u32,
        classes: u32,
        slot: u32,
    }
}
