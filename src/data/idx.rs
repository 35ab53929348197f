//! The IDX format of MNIST (big-endian header, then u8 data), gzipped or not,
//! with errors that say which file is wrong and how.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A parsed IDX u8 array.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// The most bytes an IDX file may hold once un-gzipped (MNIST's largest is
/// 47 MB): more is refused rather than filling the memory (a gzip bomb).
pub const MAX_IDX_BYTES: u64 = 512 << 20;

/// Un-gzips `bytes` if they start with the gzip magic, every member of a
/// multi-member gzip (what `cat a.gz b.gz`, bgzip and chunked writers make, RFC
/// 1952 section 2.2) in turn; plain IDX passes through.
pub fn maybe_gunzip(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(MAX_IDX_BYTES as usize));
        MultiGzDecoder::new(bytes).take(MAX_IDX_BYTES + 1).read_to_end(&mut out).map_err(|e| {
            Error::data(name, format!("the gzip data is damaged or truncated ({e}); download the file again"))
        })?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(Error::data(
                name,
                format!(
                    "un-gzipped it is larger than {} MB, more than layerlab reads; is it the right file?",
                    MAX_IDX_BYTES >> 20
                ),
            ));
        }
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses an IDX file and checks that its magic is `expected` (images or labels).
pub fn parse(name: &str, bytes: &[u8], expected: u32) -> Result<IdxArray> {
    let bytes = maybe_gunzip(name, bytes)?;
    if bytes.len() < 4 {
        return Err(Error::data(name, format!("the file is truncated: {} bytes, not even an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    if magic != expected {
        let what = |m: u32| match m {
            IMAGES_MAGIC => "an image file (magic 2051)".to_string(),
            LABELS_MAGIC => "a label file (magic 2049)".to_string(),
            other => format!("not an IDX u8 file (magic {other})"),
        };
        return Err(Error::data(
            name,
            format!("this is {} but {} was expected; check which file goes where", what(magic), what(expected)),
        ));
    }
    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(Error::data(
            name,
            format!("the file is truncated inside its header ({} of {header} bytes)", bytes.len()),
        ));
    }
    let dims: Vec<usize> =
        (0..ndim).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let expected_len = dims.iter().fold(1usize, |a, &d| a.saturating_mul(d));
    let data = &bytes[header..];
    if data.len() < expected_len {
        return Err(Error::data(name, format!("the file is truncated: the header promises {dims:?} = {expected_len} bytes of data but only {} are there", data.len())));
    }
    if data.len() > expected_len {
        return Err(Error::data(
            name,
            format!(
                "the file has {} bytes of data after the {dims:?} its header declares; it is not a valid IDX file",
                data.len() - expected_len
            ),
        ));
    }
    Ok(IdxArray { dims, data: data.to_vec() })
}
