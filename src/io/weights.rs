//! safetensors files with PyTorch state-dict names (`"0.weight"`, `"6.bias"`), so
//! `torch.nn.Sequential.load_state_dict(safetensors.torch.load_file(..))` takes them.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::tensor::{Array, Tensor};

/// Serializes named f32 arrays to safetensors bytes.
pub fn to_bytes(tensors: &[(String, Array)]) -> Result<Vec<u8>> {
    to_bytes_with(tensors, None)
}

/// `to_bytes` with string metadata in the header (`__metadata__`).
pub fn to_bytes_with(tensors: &[(String, Array)], metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, a)| {
            (name.clone(), a.as_standard_layout().iter().flat_map(|v| v.to_le_bytes()).collect(), a.shape().to_vec())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, data, shape)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| Error::Weights(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize(views, metadata).map_err(|e| Error::Weights(e.to_string()))
}

/// The parameters' current values as safetensors bytes.
pub fn save_parameters(params: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let arrays: Vec<(String, Array)> = params.iter().map(|(n, t)| (n.clone(), t.to_array())).collect();
    to_bytes(&arrays)
}

/// An IEEE half-precision float (binary16) as f32, exactly.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// Reads every tensor of a safetensors file as f32: F32 as it is; F16, BF16
/// and F64 (what PyTorch saves from a half-precision or double model) converted;
/// I64 widened (labels, token ids). The header's `__metadata__` (PyTorch writes
/// `{"format": "pt"}`) is allowed and ignored here (`read_metadata` reads it).
pub fn read_all(bytes: &[u8]) -> Result<HashMap<String, ArrayD<f32>>> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::F64 => {
                view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
            }
            Dtype::F16 => view.data().chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            Dtype::BF16 => view
                .data()
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            Dtype::I64 => {
                view.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
            }
            other => {
                return Err(Error::Weights(format!(
                    "tensor \"{}\" has dtype {other:?}; layerlab reads F32, F16, BF16 and F64 weights (and I64 labels)",
                    crate::escape::printable(&name)
                )))
            }
        };
        out.insert(name.clone(), ArrayD::from_shape_vec(IxDyn(view.shape()), data).unwrap());
    }
    Ok(out)
}

/// The header's string metadata (empty if it has none).
pub fn read_metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// The tensor `name` of a file read by `read_all`, checked against the shape
/// the model needs and for values a diverged run leaves.
/// The message says what is wrong, for the caller's error.
pub fn checked<'a>(
    loaded: &'a HashMap<String, ArrayD<f32>>,
    name: &str,
    shape: &[usize],
) -> std::result::Result<&'a ArrayD<f32>, String> {
    let Some(a) = loaded.get(name) else {
        return Err(format!(
            "the file has no tensor \"{name}\" (shape {shape:?}); it was saved from a different model"
        ));
    };
    if a.shape() != shape {
        return Err(format!("tensor \"{name}\" has shape {:?} but the model needs {shape:?}", a.shape()));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(format!("tensor \"{name}\" holds NaN or infinite values; these weights come from a diverged run"));
    }
    Ok(a)
}

/// Reads one integer tensor exactly (labels, token ids): I64 as PyTorch's
/// `long`, or I32, I16, I8, U8 (`torch.int`, a NumPy `uint8` label file) widened.
pub fn read_i64(bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
    let view = st.tensor(name).map_err(|_| Error::Weights(format!("the file has no tensor \"{name}\"")))?;
    let data = view.data();
    let values: Vec<i64> = match view.dtype() {
        Dtype::I64 => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
        Dtype::I32 => data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64).collect(),
        Dtype::I16 => data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as i64).collect(),
        Dtype::I8 => data.iter().map(|&b| b as i8 as i64).collect(),
        Dtype::U8 => data.iter().map(|&b| b as i64).collect(),
        other => {
            return Err(Error::Weights(format!(
                "tensor \"{name}\" must hold integers (I64, I32, I16, I8 or U8), found {other:?}"
            )))
        }
    };
    Ok((view.shape().to_vec(), values))
}

/// Loads weights into `params`, checking that names and shapes match exactly
/// before changing anything, so a bad file leaves the model as it was.
pub fn load_parameters(params: &[(String, Tensor)], bytes: &[u8]) -> Result<()> {
    let mut loaded = read_all(bytes)?;
    for (name, p) in params {
        checked(&loaded, name, &p.shape()).map_err(Error::Weights)?;
    }
    let expected: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let mut extra: Vec<&String> = loaded.keys().filter(|k| !expected.contains(&k.as_str())).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(Error::Weights(format!(
            "the file has a tensor \"{}\" that this model does not have; it was saved from a different model",
            crate::escape::printable(name)
        )));
    }
    for (name, p) in params {
        p.set_value(&loaded.remove(name).unwrap());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24), "the smallest subnormal");
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24), "the largest subnormal");
        assert_eq!(f16_to_f32(0x7bff), 65504.0, "the largest normal");
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }
}
