//! MNIST in memory: u8 pixels (scaled to [0, 1] when batched) and labels.

use super::idx::{self, IMAGES_MAGIC, LABELS_MAGIC};
use super::Batch;
use crate::error::{Error, Result};

pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;
pub const CLASSES: usize = 10;

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";

/// One split of MNIST (train or test).
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Parses an image and a label file (gzipped or plain IDX), checking that they
    /// agree: 28x28 images, one label in 0..=9 per image.
    pub fn from_idx(images_name: &str, images: &[u8], labels_name: &str, labels: &[u8]) -> Result<Mnist> {
        let img = idx::parse(images_name, images, IMAGES_MAGIC)?;
        let lab = idx::parse(labels_name, labels, LABELS_MAGIC)?;
        if img.dims.len() != 3 || img.dims[1] != SIDE || img.dims[2] != SIDE {
            return Err(Error::data(
                images_name,
                format!("expected images of 28x28 pixels, the header says {:?}", img.dims),
            ));
        }
        if lab.dims.len() != 1 || lab.dims[0] != img.dims[0] {
            return Err(Error::data(
                labels_name,
                format!(
                    "{} labels for {} images in {images_name}; the two files do not belong together",
                    lab.dims.first().copied().unwrap_or(0),
                    img.dims[0]
                ),
            ));
        }
        if img.dims[0] == 0 {
            return Err(Error::data(
                images_name,
                "the file holds no images (its header says 0); it is empty or was cut short when written",
            ));
        }
        if let Some((i, &bad)) = lab.data.iter().enumerate().find(|(_, &l)| l as usize >= CLASSES) {
            return Err(Error::data(
                labels_name,
                format!("label {bad} at position {i} is not a digit 0-9; the file is damaged or mislabelled"),
            ));
        }
        Ok(Mnist { images: img.data, labels: lab.data })
    }

    /// Reads a split from `dir` (`train` or `test`), with the standard file names.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(dir: &std::path::Path, train: bool) -> Result<Mnist> {
        let (i, l) = if train { (TRAIN_IMAGES, TRAIN_LABELS) } else { (TEST_IMAGES, TEST_LABELS) };
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| Error::io(path.display().to_string(), e))
        };
        Mnist::from_idx(i, &read(i)?, l, &read(l)?)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps only the first `n` examples.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.images.truncate(n * PIXELS);
        self.labels.truncate(n);
    }

    /// The 28x28 pixels of example `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The examples at `indices`, pixels / 255, shaped `[batch, ..example_shape]`.
    pub fn batch(&self, indices: &[u32], example_shape: &[usize]) -> Batch {
        let mut x = Vec::with_capacity(indices.len() * PIXELS);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let i = i as usize;
            x.extend(self.image(i).iter().map(|&p| p as f32 / 255.0));
            labels.push(self.labels[i] as usize);
        }
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(example_shape);
        Batch { x, shape, labels }
    }
}
