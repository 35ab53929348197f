//! Finite-difference gradient checks for every primitive, over several shapes.

// `&[x.clone()]` is the list of a check's inputs, written alike for one input
// and for several (`&[a.clone(), b.clone()]`).
#![allow(clippy::cloned_ref_to_slice_refs)]

mod common;

use common::{gradcheck, gradcheck_with, positive, randn, spaced};
use layerlab::Tensor;

#[test]
fn add_sub_mul_div_with_broadcasting() {
    let shapes: [(&[usize], &[usize]); 4] =
        [(&[3, 4], &[3, 4]), (&[2, 3, 4], &[4]), (&[2, 1, 4], &[3, 1]), (&[5], &[1])];
    for (i, (sa, sb)) in shapes.iter().enumerate() {
        let (a, b) = (randn(sa, i as u64), randn(sb, 100 + i as u64));
        gradcheck("add", &[a.clone(), b.clone()], |t| t[0].add(&t[1]));
        gradcheck("sub", &[a.clone(), b.clone()], |t| t[0].sub(&t[1]));
        gradcheck("mul", &[a.clone(), b.clone()], |t| t[0].mul(&t[1]));
        gradcheck("div", &[a.clone(), positive(sb, 7)], |t| t[0].div(&t[1]));
    }
}

#[test]
fn scalar_ops() {
    let a = randn(&[3, 5], 1);
    gradcheck("mul_scalar", &[a.clone()], |t| t[0].mul_scalar(-2.5));
    gradcheck("add_scalar", &[a.clone()], |t| t[0].add_scalar(3.0).mul(&t[0]));
    gradcheck("neg", &[a], |t| t[0].neg());
}

#[test]
fn unary_ops() {
    for (i, shape) in [vec![7], vec![3, 4], vec![2, 3, 5]].iter().enumerate() {
        let x = randn(shape, 10 + i as u64);
        gradcheck("exp", &[x.clone()], |t| t[0].exp());
        gradcheck("log", &[positive(shape, 3)], |t| t[0].log());
        gradcheck("sqrt", &[positive(shape, 4)], |t| t[0].sqrt());
        gradcheck("relu", &[spaced(shape, 5)], |t| t[0].relu());
        gradcheck("tanh", &[x.clone()], |t| t[0].tanh());
        gradcheck("sigmoid", &[x.clone()], |t| t[0].sigmoid());
        gradcheck("gelu", &[x.clone()], |t| t[0].gelu());
    }
}

#[test]
fn gelu_is_the_tanh_form() {
    let y = Tensor::from_vec(&[3], vec![-1.0, 0.5, 2.0]).gelu().to_vec();
    let expected = [-1.0f32, 0.5, 2.0]
        .map(|x: f32| 0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh()));
    for (a, b) in y.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn reductions() {
    let x = randn(&[2, 3, 4], 20);
    gradcheck("sum all", &[x.clone()], |t| t[0].sum(&[], false));
    gradcheck("sum axis 1", &[x.clone()], |t| t[0].sum(&[1], false));
    gradcheck("sum axes 0,2 keepdim", &[x.clone()], |t| t[0].sum(&[0, 2], true));
    gradcheck("mean axis 2", &[x.clone()], |t| t[0].mean(&[2], false));
    gradcheck("mean all keepdim", &[x], |t| t[0].mean(&[], true));
    let s = spaced(&[2, 3, 4], 21);
    for axis in 0..3 {
        gradcheck("max", &[s.clone()], |t| t[0].max(axis, false));
        gradcheck("max keepdim", &[s.clone()], |t| t[0].max(axis, true));
    }
}

#[test]
fn shape_ops() {
    let x = randn(&[2, 3, 4], 30);
    gradcheck("reshape", &[x.clone()], |t| t[0].reshape(&[6, 4]));
    gradcheck("transpose", &[x.clone()], |t| t[0].transpose(0, 2));
    gradcheck("permute", &[x.clone()], |t| t[0].permute(&[1, 2, 0]));
    gradcheck("permute then reshape", &[x.clone()], |t| t[0].permute(&[2, 0, 1]).reshape(&[4, 6]));
    gradcheck("slice", &[x.clone()], |t| t[0].slice(2, 1, 3));
    let y = randn(&[2, 5, 4], 31);
    gradcheck("concat", &[x.clone(), y], |t| Tensor::concat(&[t[0].clone(), t[1].clone()], 1));
    gradcheck("concat self", &[x], |t| Tensor::concat(&[t[0].clone(), t[0].clone()], 0));
}

#[test]
fn matmul_plain_batched_and_transposed() {
    gradcheck("matmul 2d", &[randn(&[3, 4], 40), randn(&[4, 5], 41)], |t| t[0].matmul(&t[1]));
    gradcheck("matmul nd @ 2d", &[randn(&[2, 3, 4], 42), randn(&[4, 2], 43)], |t| t[0].matmul(&t[1]));
    gradcheck("matmul batched", &[randn(&[2, 3, 4], 44), randn(&[2, 4, 5], 45)], |t| t[0].matmul(&t[1]));
    gradcheck("matmul batched 4d", &[randn(&[2, 2, 3, 4], 46), randn(&[2, 2, 4, 3], 47)], |t| t[0].matmul(&t[1]));
    gradcheck("matmul with transposed weight", &[randn(&[3, 4], 48), randn(&[5, 4], 49)], |t| {
        t[0].matmul(&t[1].transpose(0, 1))
    });
    gradcheck("batched matmul with transposed operand", &[randn(&[2, 3, 4], 50), randn(&[2, 5, 4], 51)], |t| {
        t[0].matmul(&t[1].transpose(1, 2))
    });
}

#[test]
fn matmul_matches_naive_product() {
    let (a, b) = (randn(&[3, 4], 1), randn(&[4, 2], 2));
    let c = Tensor::new(a.clone()).matmul(&Tensor::new(b.clone())).to_vec();
    for i in 0..3 {
        for j in 0..2 {
            let expected: f32 = (0..4).map(|k| a[[i, k]] * b[[k, j]]).sum();
            assert!((c[i * 2 + j] - expected).abs() < 1e-5);
        }
    }
}

#[test]
fn conv2d_valid_same_strided() {
    // (input shape, weight shape, stride, padding top/bottom/left/right)
    type Case = (&'static [usize], &'static [usize], [usize; 2], [usize; 4]);
    let cases: [Case; 5] = [
        (&[2, 1, 5, 5], &[3, 1, 3, 3], [1, 1], [0; 4]),
        (&[1, 2, 6, 5], &[2, 2, 3, 2], [2, 1], [0; 4]),
        (&[2, 2, 4, 4], &[3, 2, 3, 3], [1, 1], [1, 1, 1, 1]),
        (&[1, 1, 5, 6], &[2, 1, 2, 3], [2, 2], [0, 1, 1, 1]),
        (&[1, 3, 3, 3], &[2, 3, 3, 3], [1, 1], [0; 4]),
    ];
    for (i, (xs, ws, stride, pad)) in cases.iter().enumerate() {
        let (x, w, b) = (randn(xs, 60 + i as u64), randn(ws, 70 + i as u64), randn(&[ws[0]], 80 + i as u64));
        gradcheck("conv2d", &[x.clone(), w.clone(), b], |t| t[0].conv2d(&t[1], Some(&t[2]), *stride, *pad));
        gradcheck("conv2d no bias", &[x, w], |t| t[0].conv2d(&t[1], None, *stride, *pad));
    }
}

#[test]
fn conv2d_matches_direct_convolution() {
    let (x, w) = (randn(&[2, 2, 5, 4], 90), randn(&[3, 2, 3, 2], 91));
    let pad = [1usize, 0, 0, 1];
    let y = Tensor::new(x.clone()).conv2d(&Tensor::new(w.clone()), None, [2, 1], pad);
    let ys = y.shape();
    assert_eq!(ys, vec![2, 3, 2, 4]);
    let yv = y.value();
    for n in 0..2 {
        for f in 0..3 {
            for oy in 0..ys[2] {
                for ox in 0..ys[3] {
                    let mut s = 0.0;
                    for c in 0..2 {
                        for i in 0..3 {
                            for j in 0..2 {
                                let iy = (oy * 2 + i) as isize - pad[0] as isize;
                                let ix = (ox + j) as isize - pad[2] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < 5 && (ix as usize) < 4 {
                                    s += x[[n, c, iy as usize, ix as usize]] * w[[f, c, i, j]];
                                }
                            }
                        }
                    }
                    assert!((yv[[n, f, oy, ox]] - s).abs() < 1e-4, "conv output ({n},{f},{oy},{ox})");
                }
            }
        }
    }
}

#[test]
fn conv2d_in_chunks_matches_direct_convolution() {
    common::conv2d_in_chunks_matches_direct_convolution();
}

#[test]
fn max_pool_matches_its_definition() {
    common::max_pool_matches_its_definition();
}

#[test]
fn pooling() {
    for (i, (shape, size, stride)) in
        [(vec![2, 2, 4, 4], [2, 2], [2, 2]), (vec![1, 3, 5, 5], [2, 2], [2, 2]), (vec![1, 1, 5, 6], [3, 2], [1, 2])]
            .into_iter()
            .enumerate()
    {
        gradcheck("max_pool2d", &[spaced(&shape, 100 + i as u64)], |t| t[0].max_pool2d(size, stride));
        gradcheck("avg_pool2d", &[randn(&shape, 110 + i as u64)], |t| t[0].avg_pool2d(size, stride));
    }
}

#[test]
fn dropout_with_a_fixed_mask() {
    let x = randn(&[4, 6], 120);
    // The same seed gives the same mask on every evaluation.
    gradcheck("dropout", &[x.clone()], |t| t[0].dropout(0.4, &mut common::rng(7)));
    let y = Tensor::new(x.clone()).dropout(0.5, &mut common::rng(8)).to_vec();
    let kept = y.iter().zip(x.iter()).filter(|(a, b)| (**a - **b * 2.0).abs() < 1e-6 && **a != 0.0).count();
    let dropped = y.iter().filter(|a| **a == 0.0).count();
    assert_eq!(kept + dropped, 24, "every element is either dropped or scaled by 1/(1-rate)");
    assert!(dropped > 0 && kept > 0);
}

#[test]
fn fused_lstm_cell() {
    gradcheck("lstm_cell", &[randn(&[3, 8], 150), randn(&[3, 2], 151)], |t| t[0].lstm_cell(&t[1]));
    // The same values as the LSTM written out gate by gate.
    let (a, c) = (randn(&[4, 12], 152), randn(&[4, 3], 153));
    let (ta, tc) = (Tensor::new(a), Tensor::new(c));
    let gate = |k: usize| ta.slice(1, 3 * k, 3 * k + 3);
    let c2 = gate(1).sigmoid().mul(&tc).add(&gate(0).sigmoid().mul(&gate(2).tanh()));
    let h = gate(3).sigmoid().mul(&c2.tanh());
    assert_eq!(ta.lstm_cell(&tc).to_array(), Tensor::concat(&[h, c2], 1).to_array());
}

#[test]
fn fused_gru_cell() {
    gradcheck("gru_cell", &[randn(&[3, 6], 154), randn(&[3, 6], 155), randn(&[3, 2], 156)], |t| {
        t[0].gru_cell(&t[1], &t[2])
    });
    let (a, b, h) =
        (Tensor::new(randn(&[4, 9], 157)), Tensor::new(randn(&[4, 9], 158)), Tensor::new(randn(&[4, 3], 159)));
    let gate = |t: &Tensor, k: usize| t.slice(1, 3 * k, 3 * k + 3);
    let r = gate(&a, 0).add(&gate(&b, 0)).sigmoid();
    let z = gate(&a, 1).add(&gate(&b, 1)).sigmoid();
    let n = gate(&a, 2).add(&r.mul(&gate(&b, 2))).tanh();
    assert_eq!(a.gru_cell(&b, &h).to_array(), n.add(&z.mul(&h.sub(&n))).to_array());
}

#[test]
fn softmax_and_cross_entropy() {
    for (i, shape) in [vec![3, 5], vec![2, 3, 4]].iter().enumerate() {
        gradcheck("softmax", &[randn(shape, 130 + i as u64)], |t| t[0].softmax());
    }
    let labels = [1usize, 0, 4];
    gradcheck("softmax_cross_entropy", &[randn(&[3, 5], 140)], |t| t[0].softmax_cross_entropy(&labels));
    let seq_labels = [0usize, 3, 2, 1, 1, 0];
    gradcheck("softmax_cross_entropy per position", &[randn(&[2, 3, 4], 141)], |t| {
        t[0].softmax_cross_entropy(&seq_labels)
    });
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let logits = Tensor::parameter(
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3]), vec![1000.0, 0.0, -1000.0, -5e4, 5e4, 0.0]).unwrap(),
    );
    let loss = logits.softmax_cross_entropy(&[0, 1]);
    assert!(loss.item().is_finite() && loss.item().abs() < 1e-6, "loss {}", loss.item());
    loss.backward();
    assert!(logits.grad().unwrap().iter().all(|g| g.is_finite()));
    // Uniform logits give ln(classes).
    let l = Tensor::from_vec(&[1, 4], vec![3.0; 4]).softmax_cross_entropy(&[2]).item();
    assert!((l - 4f32.ln()).abs() < 1e-6);
}

#[test]
fn composite_of_primitives_gets_the_sum_of_paths() {
    // y = x * x + exp(x): gradient 2x + exp(x), reached through two paths.
    gradcheck_with("composite", &[randn(&[5], 150)], 1e-2, 2e-2, |t| t[0].mul(&t[0]).add(&t[0].exp()));
    let x = Tensor::parameter(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1]), 1.5));
    x.mul(&x).add(&x.exp()).sum(&[], false).backward();
    let g = x.grad().unwrap()[[0]];
    assert!((g - (3.0 + 1.5f32.exp())).abs() < 1e-4);
}

#[test]
fn no_grad_records_nothing() {
    let w = Tensor::parameter(randn(&[3], 1));
    let y = layerlab::autograd::no_grad(|| w.mul_scalar(2.0));
    assert!(!y.requires_grad());
    y.sum(&[], false).backward();
    assert!(w.grad().is_none());
}

#[test]
fn fast_tanh_matches_tanh() {
    let mut worst = 0.0f64;
    for i in -200_000..=200_000 {
        let x = i as f32 * 5e-5; // -10 .. 10
        let err = (layerlab::autograd::ops::fast_tanh(x) as f64 - (x as f64).tanh()).abs();
        worst = worst.max(err);
    }
    assert!(worst < 1e-6, "max abs error {worst}");
}

/// The fused recurrence (the recurrent layers: every step and its
/// backpropagation through time in one op) by finite differences, for each
/// cell, with respect to the input projection, `weight_hh` and the GRU's
/// `bias_hh`; and equal, in training and in inference (which keeps no
/// tape), to the same recurrence composed step by step from the primitives.
#[test]
fn the_fused_recurrence() {
    use layerlab::autograd::ops::Recurrence;
    for (cell, g) in [(Recurrence::Rnn, 1), (Recurrence::Lstm, 4), (Recurrence::Gru, 3)] {
        let (t, n, h) = (4, 3, 2);
        let xp = randn(&[t, n, g * h], 70 + g as u64);
        let w = randn(&[g * h, h], 80 + g as u64);
        let b = randn(&[g * h], 90 + g as u64);
        let name = format!("recurrence {cell:?}");
        if cell == Recurrence::Gru {
            gradcheck(&name, &[xp.clone(), w.clone(), b.clone()], move |v| v[0].recurrence(cell, &v[1], Some(&v[2])));
        } else {
            gradcheck(&name, &[xp.clone(), w.clone()], move |v| v[0].recurrence(cell, &v[1], None));
        }
    }
    for (cell, g) in [(Recurrence::Rnn, 1), (Recurrence::Lstm, 4), (Recurrence::Gru, 3)] {
        for (t, n, h) in [(4, 3, 2), (7, 5, 9), (1, 2, 3)] {
            let name = format!("recurrence {cell:?} T={t} N={n} H={h}");
            let xp = randn(&[t, n, g * h], 70 + g as u64);
            let w = randn(&[g * h, h], 80 + g as u64).mapv(|v| v * 0.5);
            let b = randn(&[g * h], 90 + g as u64);
            // Step by step from the primitives.
            let stepwise = |xp: &Tensor, w: &Tensor, b: &Tensor| -> Tensor {
                let w_t = w.transpose(0, 1);
                let (mut hs, mut hh, mut c) = (Vec::new(), Tensor::zeros(&[n, h]), Tensor::zeros(&[n, h]));
                for s in 0..t {
                    let x_t = xp.slice(0, s, s + 1).reshape(&[n, g * h]);
                    hh = match cell {
                        Recurrence::Rnn => x_t.add(&hh.matmul(&w_t)).tanh(),
                        Recurrence::Lstm => {
                            let hc = x_t.add(&hh.matmul(&w_t)).lstm_cell(&c);
                            c = hc.slice(1, h, 2 * h);
                            hc.slice(1, 0, h)
                        }
                        Recurrence::Gru => x_t.gru_cell(&hh.matmul(&w_t).add(b), &hh),
                    };
                    hs.push(hh.reshape(&[1, n, h]));
                }
                Tensor::concat(&hs, 0)
            };
            let (xp, w, b) = (Tensor::parameter(xp), Tensor::parameter(w), Tensor::parameter(b));
            let b_hh = (cell == Recurrence::Gru).then_some(&b);
            let trained = xp.recurrence(cell, &w, b_hh).to_vec();
            let inferred = layerlab::autograd::no_grad(|| xp.recurrence(cell, &w, b_hh).to_vec());
            let composed = stepwise(&xp, &w, &b).to_vec();
            assert_eq!(trained.len(), t * n * h, "{name}");
            for ((a, i), e) in trained.iter().zip(&inferred).zip(&composed) {
                assert!((a - e).abs() < 1e-5, "{name}: fused {a} vs step by step {e}");
                assert_eq!(a, i, "{name}: training and inference differ");
            }
        }
    }
}

/// A whole recurrent layer as one op (`Tensor::recurrent`, the CPU's: the
/// input projection inside) by finite differences with respect to the input
/// and all four parameters, for each cell; and equal, in training and in
/// inference (projected step by step), to the input projection composed
/// from primitives followed by `recurrence` (the GPU's way).
#[test]
fn the_recurrent_layer_op() {
    use layerlab::autograd::ops::Recurrence;
    for (cell, g) in [(Recurrence::Rnn, 1), (Recurrence::Lstm, 4), (Recurrence::Gru, 3)] {
        for (n, t, i, h) in [(2, 3, 4, 2), (1, 1, 2, 3)] {
            let inputs = [
                randn(&[n, t, i], 10 + g as u64),
                randn(&[g * h, i], 20 + g as u64),
                randn(&[g * h, h], 30 + g as u64),
                randn(&[g * h], 40 + g as u64),
                randn(&[g * h], 50 + g as u64),
            ];
            gradcheck(&format!("recurrent {cell:?} N={n} T={t}"), &inputs, move |v| {
                v[0].recurrent(cell, &v[1], &v[2], &v[3], &v[4])
            });
        }
        for (n, t, i, h) in [(2, 3, 4, 2), (5, 6, 7, 9)] {
            let name = format!("recurrent {cell:?} N={n} T={t} I={i} H={h}");
            let p: Vec<Tensor> = [
                randn(&[n, t, i], 10 + g as u64),
                randn(&[g * h, i], 20 + g as u64).mapv(|v| v * 0.5),
                randn(&[g * h, h], 30 + g as u64).mapv(|v| v * 0.5),
                randn(&[g * h], 40 + g as u64),
                randn(&[g * h], 50 + g as u64),
            ]
            .into_iter()
            .map(Tensor::parameter)
            .collect();
            let layer = p[0].recurrent(cell, &p[1], &p[2], &p[3], &p[4]).to_vec();
            let inferred = layerlab::autograd::no_grad(|| p[0].recurrent(cell, &p[1], &p[2], &p[3], &p[4]).to_vec());
            let xp = p[0].permute(&[1, 0, 2]).reshape(&[t * n, i]).matmul(&p[1].transpose(0, 1));
            let composed = if cell == Recurrence::Gru {
                xp.add(&p[3]).reshape(&[t, n, g * h]).recurrence(cell, &p[2], Some(&p[4]))
            } else {
                xp.add(&p[3]).add(&p[4]).reshape(&[t, n, g * h]).recurrence(cell, &p[2], None)
            }
            .to_vec();
            assert_eq!(layer.len(), t * n * h, "{name}");
            for ((a, b), e) in layer.iter().zip(&inferred).zip(&composed) {
                assert!((a - e).abs() < 1e-5, "{name}: one op {a} vs composed {e}");
                assert!((a - b).abs() < 1e-6, "{name}: training {a} vs inference {b}");
            }
        }
    }
}

/// Inference beyond `PROJECT_ALL_MAX` gate pre-activations projects the
/// input step by step into one step's buffer: the same hidden states as
/// training's one projection for all steps.
#[test]
fn a_large_inference_batch_projects_step_by_step() {
    use layerlab::autograd::ops::Recurrence;
    use layerlab::backend::cpu::recurrent::PROJECT_ALL_MAX;
    let (t, i, h) = (17, 4, 64);
    // A batch within the limit, and the smallest past it.
    for n in [8, PROJECT_ALL_MAX / (t * 4 * h) + 1] {
        let p: Vec<Tensor> = [
            randn(&[n, t, i], 1),
            randn(&[4 * h, i], 2).mapv(|v| v * 0.3),
            randn(&[4 * h, h], 3).mapv(|v| v * 0.1),
            randn(&[4 * h], 4),
            randn(&[4 * h], 5),
        ]
        .into_iter()
        .map(Tensor::parameter)
        .collect();
        let trained = p[0].recurrent(Recurrence::Lstm, &p[1], &p[2], &p[3], &p[4]).to_vec();
        let inferred =
            layerlab::autograd::no_grad(|| p[0].recurrent(Recurrence::Lstm, &p[1], &p[2], &p[3], &p[4]).to_vec());
        let worst = trained.iter().zip(&inferred).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "N={n}: training and inference differ by {worst}");
    }
}

/// The CPU's fused transformer ops by finite differences, and equal to the
/// same arithmetic composed from primitives (the GPU's way): `linear` with
/// and without a bias (and over a 3-d input), `layer_norm`, and
/// `attention`, plain and causal.
#[test]
fn the_fused_dense_norm_and_attention_ops() {
    let close = |name: &str, a: &Tensor, b: &Tensor| {
        assert_eq!(a.shape(), b.shape(), "{name}");
        for (x, y) in a.to_vec().iter().zip(b.to_vec()) {
            assert!((x - y).abs() < 1e-5, "{name}: fused {x} vs composed {y}");
        }
    };
    let (x, w, b) = (randn(&[2, 3, 5], 1), randn(&[4, 5], 2), randn(&[4], 3));
    gradcheck("linear", &[x.clone(), w.clone(), b.clone()], |v| v[0].linear(&v[1], Some(&v[2])));
    gradcheck("linear without bias", &[x.clone(), w.clone()], |v| v[0].linear(&v[1], None));
    // A transposed (strided) input, as a permuted sequence would be.
    gradcheck("linear of a transposed input", &[randn(&[5, 3], 7), w.clone()], |v| {
        v[0].transpose(0, 1).linear(&v[1], None)
    });
    let (xt, wt, bt) = (Tensor::new(x.clone()), Tensor::new(w.clone()), Tensor::new(b.clone()));
    close("linear", &xt.linear(&wt, Some(&bt)), &xt.matmul(&wt.transpose(0, 1)).add(&bt));

    let (g, beta) = (randn(&[5], 4), randn(&[5], 5));
    gradcheck("layer_norm", &[x.clone(), g.clone(), beta.clone()], |v| v[0].layer_norm(&v[1], &v[2], 1e-5));
    let (gt, betat) = (Tensor::new(g), Tensor::new(beta));
    let centred = xt.sub(&xt.mean(&[2], true));
    let composed = centred.div(&centred.mul(&centred).mean(&[2], true).add_scalar(1e-5).sqrt()).mul(&gt).add(&betat);
    close("layer_norm", &xt.layer_norm(&gt, &betat, 1e-5), &composed);

    for causal in [false, true] {
        let name = format!("attention causal={causal}");
        let qkv = randn(&[2, 4, 3 * 6], 6 + causal as u64);
        gradcheck(&name, &[qkv.clone()], move |v| v[0].attention(3, causal));
        let qkv = Tensor::new(qkv);
        close(&name, &qkv.attention(3, causal), &qkv.attention_composed(3, causal).0);
    }
}
