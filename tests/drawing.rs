//! Drawings become MNIST-like digits: cropped, scaled into 20x20, mass-centred.

use layerlab::data::drawing::mnist_from_drawing;

#[test]
fn an_empty_canvas_is_blank() {
    assert!(mnist_from_drawing(&[0.0; 100 * 100], 100, 100).iter().all(|&v| v == 0.0));
    assert!(mnist_from_drawing(&[1.0; 3], 100, 100).iter().all(|&v| v == 0.0), "a wrong size is blank, not a panic");
}

#[test]
fn a_bar_in_a_corner_is_scaled_and_centred() {
    // A vertical bar 10 px wide, 80 px tall, in the top-left corner of 200x200.
    let (w, h) = (200, 200);
    let mut ink = vec![0.0; w * h];
    for y in 5..85 {
        for x in 3..13 {
            ink[y * w + x] = 1.0;
        }
    }
    let img = mnist_from_drawing(&ink, w, h);
    let rows: Vec<usize> = (0..28).filter(|y| (0..28).any(|x| img[y * 28 + x] > 0.5)).collect();
    let cols: Vec<usize> = (0..28).filter(|x| (0..28).any(|y| img[y * 28 + x] > 0.5)).collect();
    assert_eq!(rows.len(), 20, "the long side fills 20 pixels");
    assert!((2..=3).contains(&cols.len()), "the aspect is kept: {cols:?}");
    let mass: f32 = img.iter().sum();
    let cy: f32 = (0..28 * 28).map(|i| img[i] * (i / 28) as f32).sum::<f32>() / mass;
    let cx: f32 = (0..28 * 28).map(|i| img[i] * (i % 28) as f32).sum::<f32>() / mass;
    assert!((cx - 14.0).abs() <= 1.0 && (cy - 14.0).abs() <= 1.0, "centre of mass ({cx}, {cy})");
}
