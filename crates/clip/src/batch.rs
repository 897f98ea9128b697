//! Embedding lists of image files in batches, with the files that cannot be read set aside
//! rather than failing the batch: shared by classification, evaluation and the CLI.
//! (Scans of the photo index use their own pipeline, which decodes one batch ahead while the
//! model embeds the previous one; see `photos::scan`.)

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::{Clip, ClipError};

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The file.
    pub path: String,
    /// The error.
    pub error: String,
}

/// Embeddings of the image files that could be read.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Image features (not normalized), one per readable file.
    pub features: Vec<Vec<f32>>,
    /// `kept[i]`: the index, in the list given, of the file of `features[i]`.
    pub kept: Vec<usize>,
    /// The files that could not be read or decoded.
    pub failed: Vec<Failure>,
}

impl Clip {
    /// Image features of files, in batches; each batch is decoded on all cores. A file that
    /// cannot be read or decoded is recorded in [`Embedded::failed`] and skipped. `progress`
    /// is called with the number of files done after each batch.
    pub fn encode_image_files(
        &self,
        paths: &[PathBuf],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Embedded, ClipError> {
        let mut out = Embedded {
            features: Vec::with_capacity(paths.len()),
            kept: Vec::with_capacity(paths.len()),
            failed: Vec::new(),
        };
        for (c, chunk) in paths.chunks(self.batch_size).enumerate() {
            let decoded: Vec<_> = chunk.par_iter().map(|p| self.load_image(p)).collect();
            let mut pixels = Vec::with_capacity(chunk.len());
            for (i, (result, path)) in decoded.into_iter().zip(chunk).enumerate() {
                match result {
                    Ok(p) => {
                        pixels.push(p);
                        out.kept.push(c * self.batch_size + i);
                    }
                    Err(e) => out.failed.push(Failure {
                        path: path.display().to_string(),
                        error: e.to_string(),
                    }),
                }
            }
            out.features.extend(self.encode_image(&pixels)?);
            progress(chunk.len());
        }
        Ok(out)
    }
}
