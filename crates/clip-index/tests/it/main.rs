//! The index file: creation, model checks, changes, scans, locking, damage, search.

mod lock;
mod scan;
mod search;
mod store;

use clip_index::{content_hash, Change, IndexInfo};

fn info(model: &str, dim: usize) -> IndexInfo {
    IndexInfo {
        model: model.into(),
        fingerprint: format!("fp-{model}"),
        preprocess: "pre".into(),
        dim,
    }
}

fn embedded(path: &str, content: &[u8], v: Vec<f32>) -> Change {
    Change::Embedded {
        path: path.into(),
        size: content.len() as u64,
        mtime_ns: 7,
        hash: content_hash(content),
        embedding: v,
    }
}
