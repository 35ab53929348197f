//! The zip archive of a download or an export, and reading one back (the
//! page's Open), also when another tool made it.

use super::File;
use crate::error::Result;

/// The files in one zip archive (stored, not compressed: weights do not shrink
/// and code is small), each under `folder/`.
pub fn zip(folder: &str, files: &[File]) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail =
        |e: &dyn std::fmt::Display| crate::error::Error::Input(format!("the zip archive could not be written: {e}"));
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Stored)
        .large_file(false);
    for (name, bytes) in files {
        w.start_file(format!("{folder}/{name}"), options).map_err(|e| fail(&e))?;
        w.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(w.finish().map_err(|e| fail(&e))?.into_inner())
}

/// The files of a zip archive (the page's Download, an export, or the same files
/// zipped again by the user's own tool): name and contents, folders and
/// macOS's `__MACOSX/` and `._` entries left out.
/// Entries may be stored or deflated, with or without data descriptors; names
/// may use `/` or `\`. At most `max_bytes` in all are read, whatever sizes
/// the archive declares (a zip bomb stops there).
pub fn unzip(bytes: &[u8], max_bytes: usize) -> Result<Vec<File>> {
    use std::io::Read;
    let fail = |m: String| crate::error::Error::Input(m);
    let too_large = || fail(format!("its files add up to more than {} MB, more than layerlab opens", max_bytes >> 20));
    let mut archive =
        ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| fail(format!("not a zip archive ({e})")))?;
    let mut out = Vec::new();
    let mut total = 0usize;
    for i in 0..archive.len() {
        let f = archive.by_index(i).map_err(|e| fail(format!("a damaged zip archive ({e})")))?;
        // Folders, and what macOS's Finder adds to a zip it makes (`__MACOSX/`,
        // `._name` resource forks), are not the user's files.
        let path = f.name().to_string();
        let name = path.rsplit(['/', '\\']).next().unwrap_or_default().to_string();
        if f.is_dir()
            || name.is_empty()
            || name.starts_with("._")
            || path.split(['/', '\\']).any(|part| part == "__MACOSX")
        {
            continue;
        }
        if f.size() as usize > max_bytes - total {
            return Err(too_large());
        }
        let mut data = Vec::with_capacity(f.size() as usize);
        f.take((max_bytes - total) as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| fail(format!("{name} in it cannot be read ({e}); unzip it and open its files")))?;
        total += data.len();
        if total > max_bytes {
            return Err(too_large());
        }
        out.push((name, data));
    }
    Ok(out)
}
