//! `Tensor`: an f32 n-d array that remembers how it was made, so gradients can flow back.
//!
//! A tensor is a cheap handle (`Rc`) to a node: its value, the gradient that
//! `backward()` leaves on leaves, and (for results of ops) the rule that sends an
//! output gradient to the op's inputs. The value lives in the CPU backend's storage
//! (an `ndarray::ArrayD<f32>`); kernels in `backend` see only arrays and layouts.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};
use rand::Rng;

use crate::autograd::{self, BackwardFn};
use crate::backend::{Device, Storage};

pub use crate::backend::Array;

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) value: RefCell<Storage>,
    pub(crate) grad: RefCell<Option<Storage>>,
    pub(crate) requires_grad: bool,
    /// Inputs of the op that made this tensor and the rule that maps the output
    /// gradient to theirs; `None` for leaves and for results made without grad.
    pub(crate) backward: Option<(Vec<Tensor>, BackwardFn)>,
}

/// A handle to a value in the autograd graph. Cloning is cheap and shares the node.
#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<Node>);

const ON_GPU: &str = "this tensor is on the GPU: read it with to_array() (or move the model to the CPU)";

impl Tensor {
    fn with_node(value: Storage, requires_grad: bool, backward: Option<(Vec<Tensor>, BackwardFn)>) -> Self {
        Tensor(Rc::new(Node {
            id: autograd::next_id(),
            value: RefCell::new(value),
            grad: RefCell::new(None),
            requires_grad,
            backward,
        }))
    }

    /// A constant: no gradient is computed for it.
    pub fn new(value: Array) -> Self {
        Self::with_node(Storage::Cpu(value), false, None)
    }

    /// A constant on any device.
    pub fn from_storage(value: Storage) -> Self {
        Self::with_node(value, false, None)
    }

    /// A trainable leaf (a parameter): `backward()` accumulates its gradient.
    pub fn parameter(value: Array) -> Self {
        Self::with_node(Storage::Cpu(value), true, None)
    }

    /// Whether an op on `inputs` records its backward pass (`from_op`): grad
    /// mode is on and an input needs a gradient.
    pub(crate) fn records_backward(inputs: &[&Tensor]) -> bool {
        autograd::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())
    }

    /// The result of an op. Records `backward` only if an input needs a gradient
    /// and grad mode is on, so inference builds no graph.
    pub(crate) fn from_op(
        value: Storage,
        inputs: &[&Tensor],
        backward: impl Fn(&Storage, &[bool]) -> Vec<Option<Storage>> + 'static,
    ) -> Self {
        if Self::records_backward(inputs) {
            let parents = inputs.iter().map(|t| (*t).clone()).collect();
            Self::with_node(value, true, Some((parents, Box::new(backward))))
        } else {
            Self::from_storage(value)
        }
    }

    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Self {
        let value = Array::from_shape_vec(IxDyn(shape), data)
            .expect("Tensor::from_vec: data length must equal the product of the shape");
        Self::new(value)
    }

    pub fn zeros(shape: &[usize]) -> Self {
        Self::new(Array::zeros(IxDyn(shape)))
    }

    pub fn scalar(v: f32) -> Self {
        Self::new(ArrayD::from_elem(IxDyn(&[]), v))
    }

    /// Uniform in `[-limit, limit)`, from a seeded generator.
    pub fn uniform(shape: &[usize], limit: f32, rng: &mut impl Rng) -> Self {
        Self::new(random_uniform(shape, limit, rng))
    }

    /// Standard normal values scaled by `std`, from a seeded generator (Box-Muller).
    pub fn normal(shape: &[usize], std: f32, rng: &mut impl Rng) -> Self {
        Self::new(random_normal(shape, std, rng))
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    pub fn shape(&self) -> Vec<usize> {
        self.0.value.borrow().shape().to_vec()
    }
    pub fn ndim(&self) -> usize {
        self.0.value.borrow().shape().len()
    }
    pub fn len(&self) -> usize {
        self.0.value.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn device(&self) -> Device {
        self.0.value.borrow().device()
    }

    /// The value on whichever device it lives.
    pub fn storage(&self) -> Ref<'_, Storage> {
        self.0.value.borrow()
    }
    /// Replaces the value (same shape; optimizers, weight loading, undoing a step).
    pub fn set_storage(&self, value: Storage) {
        debug_assert_eq!(value.shape(), self.shape().as_slice());
        *self.0.value.borrow_mut() = value;
    }
    /// Overwrites the value with `values`, keeping the tensor on its device.
    /// The storage is replaced, not written over: a clone of the old one (a
    /// trainer's snapshot) keeps the old values.
    pub fn set_value(&self, values: &Array) {
        let device = self.device();
        let value = Storage::Cpu(values.clone()).upload_to(&device);
        assert_eq!(value.shape(), self.shape().as_slice(), "set_value: shapes differ");
        self.set_storage(value);
    }
    /// Moves the value to `device` in place (a parameter stays the same tensor).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn move_to(&self, device: &Device) -> Result<(), crate::backend::GpuError> {
        let moved = self.storage().to_device(device)?;
        self.set_storage(moved);
        Ok(())
    }
    /// Moves the value to `device` in place, where that needs no readback.
    pub fn upload_to(&self, device: &Device) {
        // Already on the CPU: nothing to move (and no copy of the values).
        if !device.is_gpu() && !self.device().is_gpu() {
            return;
        }
        let moved = self.storage().upload_to(device);
        self.set_storage(moved);
    }

    /// Borrow the value of a tensor on the CPU. Do not hold it across an in-place
    /// update of the same tensor. Panics for a tensor on the GPU (see `to_array`).
    pub fn value(&self) -> Ref<'_, Array> {
        Ref::map(self.0.value.borrow(), |s| match s {
            Storage::Cpu(a) => a,
            Storage::Gpu(_) => panic!("{ON_GPU}"),
        })
    }
    /// Mutable access to a CPU value for optimizers and weight loading. The shape
    /// must not change.
    pub fn value_mut(&self) -> RefMut<'_, Array> {
        RefMut::map(self.0.value.borrow_mut(), |s| match s {
            Storage::Cpu(a) => a,
            Storage::Gpu(_) => panic!("{ON_GPU}"),
        })
    }
    /// The value as an ndarray, from any device. Natively a GPU readback waits
    /// for the GPU; in the browser it cannot wait, so GPU values are read with
    /// `Storage::to_array_async` instead (this panics for them there).
    pub fn to_array(&self) -> Array {
        #[cfg(not(target_arch = "wasm32"))]
        return self.storage().to_array().unwrap_or_else(|e| panic!("reading a tensor back from the GPU failed: {e}"));
        #[cfg(target_arch = "wasm32")]
        return self.value().clone();
    }
    pub fn to_vec(&self) -> Vec<f32> {
        self.to_array().iter().copied().collect()
    }
    /// The single value of a one-element tensor (a loss, say).
    pub fn item(&self) -> f32 {
        let v = self.to_array();
        assert_eq!(v.len(), 1, "item() needs a one-element tensor, got shape {:?}", v.shape());
        *v.iter().next().unwrap()
    }

    /// The gradient `backward()` left on this leaf, if any (CPU tensors).
    pub fn grad(&self) -> Option<Ref<'_, Array>> {
        let g = self.0.grad.borrow();
        if g.is_some() {
            Some(Ref::map(g, |g| match g.as_ref().unwrap() {
                Storage::Cpu(a) => a,
                Storage::Gpu(_) => panic!("{ON_GPU}"),
            }))
        } else {
            None
        }
    }
    /// The gradient on whichever device it lives.
    pub fn grad_storage(&self) -> Option<Ref<'_, Storage>> {
        let g = self.0.grad.borrow();
        if g.is_some() {
            Some(Ref::map(g, |g| g.as_ref().unwrap()))
        } else {
            None
        }
    }
    /// The gradient as an ndarray, from any device.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn grad_array(&self) -> Option<Array> {
        self.grad_storage()
            .map(|g| g.to_array().unwrap_or_else(|e| panic!("reading a gradient back from the GPU failed: {e}")))
    }
    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }
    /// Replaces the gradient (data-parallel training sums its parts' here).
    pub(crate) fn set_grad(&self, g: Storage) {
        debug_assert_eq!(g.shape(), self.shape().as_slice());
        *self.0.grad.borrow_mut() = Some(g);
    }
    pub(crate) fn accumulate_grad(&self, g: Storage) {
        let mut slot = self.0.grad.borrow_mut();
        match slot.as_mut() {
            Some(acc) => acc.add_assign(&g),
            None => *slot = Some(g),
        }
    }

    /// Same value, cut off from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::from_storage(self.storage().clone())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor(shape={:?}, requires_grad={}, {:?})", self.shape(), self.requires_grad(), &*self.storage())
    }
}

pub fn random_uniform(shape: &[usize], limit: f32, rng: &mut impl Rng) -> Array {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * limit).collect();
    Array::from_shape_vec(IxDyn(shape), data).unwrap()
}

pub fn random_normal(shape: &[usize], std: f32, rng: &mut impl Rng) -> Array {
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n);
    while data.len() < n {
        // Box-Muller: two uniforms in (0, 1] give two independent normals.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        data.push((r * t.cos()) as f32 * std);
        if data.len() < n {
            data.push((r * t.sin()) as f32 * std);
        }
    }
    Array::from_shape_vec(IxDyn(shape), data).unwrap()
}
