//! Every environment variable the library and the `clip` program read, in one place.
//!
//! The names are constants, so a typo is a compile error; [`VARS`] lists each with what it
//! does, in the order the help text and the README's table show them (a test in the CLI checks
//! both against this list). Library code reads the environment only through [`get`], [`text`],
//! [`path`] and [`flag`], and only in functions whose documentation says so (`default_*`,
//! `*_from_env`, the hub's `cache_dir`, `token`, `endpoint`); everything else takes its paths
//! and switches as arguments. (uv keeps its variables in one crate the
//! same way, `uv-static`.)

use std::ffi::OsString;
use std::path::PathBuf;

/// The model of every command that runs one (`--model`).
pub const CLIP_MODEL: &str = "CLIP_MODEL";
/// Where models run (`--device`).
pub const CLIP_DEVICE: &str = "CLIP_DEVICE";
/// Number format of the CPU's matrix products (`--precision`).
pub const CLIP_PRECISION: &str = "CLIP_PRECISION";
/// Compute threads (`--threads`).
pub const CLIP_THREADS: &str = "CLIP_THREADS";
/// Where label embeddings are cached.
pub const CLIP_CACHE_DIR: &str = "CLIP_CACHE_DIR";
/// The photo index file (`--index`).
pub const CLIP_INDEX: &str = "CLIP_INDEX";
/// The log filter of stderr.
pub const CLIP_LOG: &str = "CLIP_LOG";
/// The Hugging Face home.
pub const HF_HOME: &str = "HF_HOME";
/// The Hugging Face hub cache folder.
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";
/// The older name of [`HF_HUB_CACHE`], still read by `huggingface_hub`.
pub const HUGGINGFACE_HUB_CACHE: &str = "HUGGINGFACE_HUB_CACHE";
/// The hub's address.
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
/// Never download when true.
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";
/// The hub access token.
pub const HF_TOKEN: &str = "HF_TOKEN";
/// The older name of [`HF_TOKEN`].
pub const HUGGING_FACE_HUB_TOKEN: &str = "HUGGING_FACE_HUB_TOKEN";
/// A file holding the access token.
pub const HF_TOKEN_PATH: &str = "HF_TOKEN_PATH";
/// The XDG cache base folder.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// The XDG data base folder.
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// The home folder.
pub const HOME: &str = "HOME";
/// Rayon's thread count, honoured when `--threads` is not given.
pub const RAYON_NUM_THREADS: &str = "RAYON_NUM_THREADS";
/// Turns colours off when set.
pub const NO_COLOR: &str = "NO_COLOR";

/// An environment variable and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// Its name.
    pub name: &'static str,
    /// One line saying what it does and its default.
    pub help: &'static str,
}

/// Every variable read, with its help line, in the order the documentation shows them. The
/// older aliases of the hub's variables are named in their successors' lines.
pub const VARS: &[Var] = &[
    Var {
        name: CLIP_MODEL,
        help: "default for --model (else ViT-B/32, or the model an index was built with)",
    },
    Var {
        name: CLIP_DEVICE,
        help: "default for --device: cpu, cuda[:N], metal[:N]",
    },
    Var {
        name: CLIP_PRECISION,
        help: "default for --precision (f32 or bf16)",
    },
    Var {
        name: CLIP_THREADS,
        help: "default for --threads",
    },
    Var {
        name: CLIP_CACHE_DIR,
        help: "the label embeddings cache (default $XDG_CACHE_HOME/clip or ~/.cache/clip)",
    },
    Var {
        name: CLIP_INDEX,
        help: "the index file (default ~/.local/share/clip/index.sqlite; see XDG_DATA_HOME)",
    },
    Var {
        name: CLIP_LOG,
        help: "log filter for stderr, e.g. info or debug (default warn)",
    },
    Var {
        name: HF_HOME,
        help: "Hugging Face home, with the cache in hub/ (default ~/.cache/huggingface)",
    },
    Var {
        name: HF_HUB_CACHE,
        help: "the hub cache itself, overriding HF_HOME (also HUGGINGFACE_HUB_CACHE)",
    },
    Var {
        name: HF_ENDPOINT,
        help: "hub address (default https://huggingface.co; mirrors work)",
    },
    Var {
        name: HF_HUB_OFFLINE,
        help: "1 to never download (also --offline)",
    },
    Var {
        name: HF_TOKEN,
        help: "access token for gated or private models (also HUGGING_FACE_HUB_TOKEN)",
    },
    Var {
        name: HF_TOKEN_PATH,
        help: "a file holding the token (default $HF_HOME/token)",
    },
    Var {
        name: XDG_CACHE_HOME,
        help: "base of the label cache and the Hugging Face home when theirs are unset",
    },
    Var {
        name: XDG_DATA_HOME,
        help: "base of the default index file when CLIP_INDEX is unset",
    },
    Var {
        name: HOME,
        help: "base of the defaults above when the XDG variables are unset",
    },
    Var {
        name: RAYON_NUM_THREADS,
        help: "compute threads when --threads and CLIP_THREADS are unset",
    },
    Var {
        name: NO_COLOR,
        help: "set to disable colours",
    },
];

/// The value of `name`; an empty variable counts as unset (as XDG says), never as "".
pub fn get(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The value of `name` as text, trimmed, when it is set, not blank and valid UTF-8.
pub fn text(name: &str) -> Option<String> {
    let v = get(name)?.into_string().ok()?;
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The value of `name` as a path, with a leading `~` expanded to `$HOME` as Python's
/// `os.path.expanduser` does (the hub's variables are read that way).
pub fn path(name: &str) -> Option<PathBuf> {
    let value = get(name)?;
    let text = value.to_string_lossy();
    match (text.strip_prefix("~/"), get(HOME)) {
        (Some(rest), Some(home)) => Some(PathBuf::from(home).join(rest)),
        _ if text == "~" => get(HOME).map(PathBuf::from),
        _ => Some(PathBuf::from(value)),
    }
}

/// Where clip keeps what it can compute again: `$CLIP_CACHE_DIR`, else `$XDG_CACHE_HOME/clip`,
/// else `~/.cache/clip`. An empty variable counts as unset (as XDG says), never as the current
/// folder.
pub fn cache_home() -> Option<PathBuf> {
    get(CLIP_CACHE_DIR)
        .map(PathBuf::from)
        .or_else(|| get(XDG_CACHE_HOME).map(|d| PathBuf::from(d).join("clip")))
        .or_else(|| get(HOME).map(|h| PathBuf::from(h).join(".cache/clip")))
}

/// Whether `name` holds a true value (`1`, `true`, `yes`, `on`, in any case).
pub fn flag(name: &str) -> bool {
    text(name)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The "Environment:" section of `clip --help`: every variable of [`VARS`] with its line.
pub fn help_section() -> String {
    let width = VARS.iter().map(|v| v.name.len()).max().unwrap_or(0) + 2;
    let mut out = String::from("Environment:");
    for v in VARS {
        out.push_str(&format!("\n  {:<width$}{}", v.name, v.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for v in VARS {
            assert!(seen.insert(v.name), "{} listed twice", v.name);
            assert!(!v.help.is_empty() && !v.help.ends_with('.'), "{}", v.name);
        }
        let section = help_section();
        assert!(
            section.starts_with("Environment:\n  CLIP_MODEL"),
            "{section}"
        );
        assert_eq!(section.lines().count(), VARS.len() + 1);
        // Lines of `clip --help` stay unwrapped in 100 columns.
        for line in section.lines() {
            assert!(line.chars().count() <= 100, "too long for the help: {line}");
        }
    }
}
