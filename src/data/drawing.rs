//! A hand-drawn digit made to look like an MNIST digit: MNIST's own recipe is to
//! fit the ink into a 20x20 box (keeping its aspect) and centre its mass in 28x28.

use super::mnist::SIDE;

/// `ink`: grey values in [0, 1] (1 = ink), row-major `width` x `height`.
/// Returns 28x28 values in [0, 1]; all zeros when nothing is drawn.
pub fn mnist_from_drawing(ink: &[f32], width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; SIDE * SIDE];
    if ink.len() != width * height {
        return out;
    }
    let lit = |x: usize, y: usize| ink[y * width + x] > 0.05;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..height {
        for x in 0..width {
            if lit(x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    if x0 == usize::MAX {
        return out;
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let scale = 20.0 / bw.max(bh) as f32;
    let (nw, nh) =
        (((bw as f32 * scale).round() as usize).clamp(1, 20), ((bh as f32 * scale).round() as usize).clamp(1, 20));
    // Area averaging: each target pixel is the mean of the source pixels it covers.
    let mut patch = vec![0.0f32; nw * nh];
    for ty in 0..nh {
        let sy0 = y0 + ty * bh / nh;
        let sy1 = (y0 + ((ty + 1) * bh).div_ceil(nh)).max(sy0 + 1).min(y1 + 1);
        for tx in 0..nw {
            let sx0 = x0 + tx * bw / nw;
            let sx1 = (x0 + ((tx + 1) * bw).div_ceil(nw)).max(sx0 + 1).min(x1 + 1);
            let mut sum = 0.0;
            for sy in sy0..sy1 {
                sum += ink[sy * width + sx0..sy * width + sx1].iter().sum::<f32>();
            }
            patch[ty * nw + tx] = (sum / ((sy1 - sy0) * (sx1 - sx0)) as f32).clamp(0.0, 1.0);
        }
    }
    let total: f32 = patch.iter().sum();
    let (mut cx, mut cy) = (0.0f32, 0.0f32);
    for ty in 0..nh {
        for tx in 0..nw {
            cx += patch[ty * nw + tx] * tx as f32;
            cy += patch[ty * nw + tx] * ty as f32;
        }
    }
    let (cx, cy) = if total > 0.0 { (cx / total, cy / total) } else { (nw as f32 / 2.0, nh as f32 / 2.0) };
    let ox = (SIDE as f32 / 2.0 - cx).round() as isize;
    let oy = (SIDE as f32 / 2.0 - cy).round() as isize;
    for ty in 0..nh {
        for tx in 0..nw {
            let (x, y) = (tx as isize + ox, ty as isize + oy);
            if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
                out[y as usize * SIDE + x as usize] = patch[ty * nw + tx];
            }
        }
    }
    out
}
