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

pub type Array = ArrayD<f32>;

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) value: RefCell<Array>,
    pub(crate) grad: RefCell<Option<Array>>,
    pub(crate) requires_grad: bool,
    /// Inputs of the op that made this tensor and the rule that maps the output
    /// gradient to theirs; `None` for leaves and for results made without grad.
    pub(crate) backward: Option<(Vec<Tensor>, BackwardFn)>,
}

/// A handle to a value in the autograd graph. Cloning is cheap and shares the node.
#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<Node>);

impl Tensor {
    fn with_node(value: Array, requires_grad: bool, backward: Option<(Vec<Tensor>, BackwardFn)>) -> Self {
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
        Self::with_node(value, false, None)
    }

    /// A trainable leaf (a parameter): `backward()` accumulates its gradient.
    pub fn parameter(value: Array) -> Self {
        Self::with_node(value, true, None)
    }

    /// The result of an op. Records `backward` only if an input needs a gradient
    /// and grad mode is on, so inference builds no graph.
    pub(crate) fn from_op(value: Array, inputs: &[&Tensor], backward: impl Fn(&Array, &[bool]) -> Vec<Option<Array>> + 'static) -> Self {
        let needs = autograd::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        if needs {
            let parents = inputs.iter().map(|t| (*t).clone()).collect();
            Self::with_node(value, true, Some((parents, Box::new(backward))))
        } else {
            Self::new(value)
        }
    }

    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Self {
        let value = Array::from_shape_vec(IxDyn(shape), data).expect("Tensor::from_vec: data length must equal the product of the shape");
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
        self.0.value.borrow().ndim()
    }
    pub fn len(&self) -> usize {
        self.0.value.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Borrow the value. Do not hold it across an in-place update of the same tensor.
    pub fn value(&self) -> Ref<'_, Array> {
        self.0.value.borrow()
    }
    /// Mutable access for optimizers and weight loading. The shape must not change.
    pub fn value_mut(&self) -> RefMut<'_, Array> {
        self.0.value.borrow_mut()
    }
    pub fn to_vec(&self) -> Vec<f32> {
        self.value().iter().copied().collect()
    }
    /// The single value of a one-element tensor (a loss, say).
    pub fn item(&self) -> f32 {
        let v = self.value();
        assert_eq!(v.len(), 1, "item() needs a one-element tensor, got shape {:?}", v.shape());
        *v.iter().next().unwrap()
    }

    /// The gradient `backward()` left on this leaf, if any.
    pub fn grad(&self) -> Option<Ref<'_, Array>> {
        let g = self.0.grad.borrow();
        if g.is_some() {
            Some(Ref::map(g, |g| g.as_ref().unwrap()))
        } else {
            None
        }
    }
    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }
    pub(crate) fn accumulate_grad(&self, g: Array) {
        let mut slot = self.0.grad.borrow_mut();
        match slot.as_mut() {
            Some(acc) => *acc += &g,
            None => *slot = Some(g),
        }
    }

    /// Same value, cut off from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::new(self.value().clone())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor(shape={:?}, requires_grad={}, {:?})", self.shape(), self.requires_grad(), self.value())
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
