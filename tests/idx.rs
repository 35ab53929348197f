//! The MNIST IDX reader: the real files, and clear errors on broken ones.

use std::io::Write;

use flate2::write::GzEncoder;
use layerlab::data::Mnist;

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn images(n: u32) -> Vec<u8> {
    idx(0x803, &[n, 28, 28], &vec![7u8; n as usize * 784])
}

fn labels(l: &[u8]) -> Vec<u8> {
    idx(0x801, &[l.len() as u32], l)
}

fn err(img: &[u8], lab: &[u8]) -> String {
    Mnist::from_idx("images.gz", img, "labels.gz", lab).unwrap_err().to_string()
}

#[test]
fn reads_the_shipped_mnist_with_published_counts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    let train = Mnist::load_dir(&dir, true).unwrap();
    let test = Mnist::load_dir(&dir, false).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    let mut counts = [0usize; 10];
    for &l in &test.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    let b = train.batch(&[0, 1], &[1, 28, 28]);
    assert_eq!(b.shape, vec![2, 1, 28, 28]);
    assert!(b.x.iter().all(|&p| (0.0..=1.0).contains(&p)) && b.x.contains(&1.0));
    assert_eq!(b.labels, vec![5, 0], "the first training digits are 5 and 0");
}

#[test]
fn plain_and_gzipped_files_both_parse() {
    let m = Mnist::from_idx("i", &gz(&images(2)), "l", &labels(&[3, 4])).unwrap();
    assert_eq!(m.len(), 2);
    let m2 = Mnist::from_idx("i", &images(2), "l", &gz(&labels(&[3, 4]))).unwrap();
    assert_eq!(m, m2);
}

#[test]
fn wrong_magic_says_which_file_is_which() {
    assert_eq!(err(&labels(&[1]), &labels(&[1])), "images.gz: this is a label file (magic 2049) but an image file (magic 2051) was expected; check which file goes where");
    assert!(err(&images(1), &images(1))
        .starts_with("labels.gz: this is an image file (magic 2051) but a label file (magic 2049) was expected"));
    assert!(err(&idx(0x1234, &[], &[]), &labels(&[1])).contains("not an IDX u8 file (magic 4660)"));
}

#[test]
fn truncated_files() {
    let full = images(3);
    assert_eq!(err(&full[..full.len() - 10], &labels(&[1, 2, 3])), "images.gz: the file is truncated: the header promises [3, 28, 28] = 2352 bytes of data but only 2342 are there");
    assert!(err(&full[..2], &labels(&[1])).contains("truncated: 2 bytes, not even an IDX header"));
    assert!(err(&full[..9], &labels(&[1])).contains("truncated inside its header"));
    let zipped = gz(&full);
    assert!(err(&zipped[..zipped.len() / 2], &labels(&[1, 2, 3])).contains("the gzip data is damaged or truncated"));
}

#[test]
fn mismatched_and_mislabelled_files() {
    assert_eq!(
        err(&images(3), &labels(&[1, 2])),
        "labels.gz: 2 labels for 3 images in images.gz; the two files do not belong together"
    );
    assert_eq!(
        err(&images(2), &labels(&[1, 12])),
        "labels.gz: label 12 at position 1 is not a digit 0-9; the file is damaged or mislabelled"
    );
    assert!(err(&idx(0x803, &[1, 28, 27], &[0; 756]), &labels(&[1])).contains("expected images of 28x28 pixels"));
    assert!(err(&idx(0x803, &[u32::MAX, u32::MAX, 28], &[0; 10]), &labels(&[1]))
        .contains("the file is truncated: the header promises"));
    let mut extra = images(1);
    extra.push(0);
    assert!(err(&extra, &labels(&[1])).contains("1 bytes of data after"));
}

/// A multi-member gzip (`cat a.gz b.gz`, bgzip, chunked writers) is one valid
/// file: every member is read, not only the first.
#[test]
fn multi_member_gzip_is_read_whole() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    let raw = layerlab::data::idx::maybe_gunzip(
        "t10k-labels",
        &std::fs::read(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap(),
    )
    .unwrap();
    let raw_images = layerlab::data::idx::maybe_gunzip(
        "t10k-images",
        &std::fs::read(dir.join("t10k-images-idx3-ubyte.gz")).unwrap(),
    )
    .unwrap();
    for cut in [1, 8, 5000, raw.len() - 1] {
        let mut members = gz(&raw[..cut]);
        members.extend(gz(&raw[cut..]));
        let mut three = gz(&raw_images[..100_000]);
        three.extend(gz(&raw_images[100_000..4_000_000]));
        three.extend(gz(&raw_images[4_000_000..]));
        let m = Mnist::from_idx("images.gz", &three, "labels.gz", &members).unwrap();
        assert_eq!(m, Mnist::load_dir(&dir, false).unwrap(), "cut at {cut}");
    }
    // A member cut short is still an error.
    let mut cut_short = gz(&raw[..100]);
    let second = gz(&raw[100..]);
    cut_short.extend(&second[..second.len() / 2]);
    assert!(err(&gz(&images(1)), &cut_short).contains("damaged or truncated"));
}

/// An empty file is refused with its name: accuracy over no example is no figure.
#[test]
fn a_file_with_no_examples_is_refused() {
    let e = err(&images(0), &labels(&[]));
    assert!(e.starts_with("images.gz: the file holds no images"), "{e}");
}
