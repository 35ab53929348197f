//! Reverse-mode automatic differentiation: the graph walk, grad mode, and the primitives.
//!
//! Only primitives (in `ops`) carry a backward rule; everything else is composed
//! from them. `Tensor::backward` sorts the graph topologically and hands each node's
//! gradient to its rule. Intermediate gradients live in a map for the duration of
//! the walk and are dropped as soon as they have been passed on; leaves keep theirs.

pub mod ops;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use crate::backend::Storage;
use crate::tensor::{Array, Tensor};

/// Maps the output gradient to one gradient per input (`None` where the input needs
/// none). The `&[bool]` says which inputs need one, so rules can skip work.
pub type BackwardFn = Box<dyn Fn(&Storage, &[bool]) -> Vec<Option<Storage>>>;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn next_id() -> u64 {
    NEXT_ID.with(|c| {
        let id = c.get();
        c.set(id + 1);
        id
    })
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|c| c.get())
}

/// Runs `f` without recording a graph (evaluation, inference, optimizer updates).
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|c| c.replace(false)));
    f()
}

impl Tensor {
    /// Backpropagates from this tensor, seeding with ones (d self / d self).
    /// Leaves that require grad accumulate their gradient (see `Tensor::grad`).
    pub fn backward(&self) {
        let seed = Storage::full(&self.shape(), 1.0, &self.device());
        self.backward_from(seed);
    }

    /// Backpropagates a given output gradient (same shape as `self`).
    pub fn backward_with(&self, seed: Array) {
        self.backward_from(Storage::Cpu(seed).upload_to(&self.device()));
    }

    fn backward_from(&self, seed: Storage) {
        assert_eq!(seed.shape(), self.shape().as_slice(), "backward_with: seed shape must equal the tensor's shape");
        if !self.requires_grad() {
            return;
        }
        let order = topological_order(self);
        let mut grads: HashMap<u64, Storage> = HashMap::new();
        grads.insert(self.id(), seed);
        for node in order.iter().rev() {
            let Some(g) = grads.remove(&node.id()) else { continue };
            match &node.0.backward {
                None => node.accumulate_grad(g),
                Some((parents, rule)) => {
                    let needs: Vec<bool> = parents.iter().map(|p| p.requires_grad()).collect();
                    let parent_grads = rule(&g, &needs);
                    debug_assert_eq!(parent_grads.len(), parents.len());
                    for ((p, pg), need) in parents.iter().zip(parent_grads).zip(needs) {
                        let (Some(pg), true) = (pg, need) else { continue };
                        debug_assert_eq!(
                            pg.shape(),
                            p.shape().as_slice(),
                            "gradient shape of an input must equal its shape"
                        );
                        match grads.get_mut(&p.id()) {
                            Some(acc) => acc.add_assign(&pg),
                            None => {
                                grads.insert(p.id(), pg);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Nodes that need a gradient, each after all of its inputs (iterative DFS: deep
/// recurrent graphs would overflow the stack with recursion).
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, children_done)) = stack.pop() {
        if children_done {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some((parents, _)) = &t.0.backward {
            for p in parents.iter().filter(|p| p.requires_grad() && !visited.contains(&p.id())) {
                stack.push((p.clone(), false));
            }
        }
    }
    order
}
