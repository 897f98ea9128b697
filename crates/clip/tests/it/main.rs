//! End-to-end tests of the library: image files and texts through `Clip` against the Python
//! reference's goldens, and model resolution through a loopback hub.

mod duplicates;
mod encode;
mod eval;
mod folders;
mod hub;
mod library;
mod model_use;
mod zeroshot;

use std::path::Path;

use clip::ResolveOptions;

/// Resolution from the cache at `cache` only; the endpoint is a closed port.
fn offline_options(cache: &Path) -> ResolveOptions {
    ResolveOptions {
        cache: cache.to_path_buf(),
        endpoint: "http://127.0.0.1:9".into(),
        offline: true,
        token: None,
    }
}
