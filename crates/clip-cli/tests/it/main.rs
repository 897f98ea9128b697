//! The `clip` binary as a user runs it: output snapshots, exit codes, error messages, and a
//! model downloaded from a loopback hub then used offline. One module per command, plus
//! `errors` for what cuts across them.

mod bench;
mod classify;
mod duplicates;
mod embed;
mod errors;
mod eval;
mod help;
mod hub;
mod index;
mod lists;
mod models;
mod search;
mod tokenize;

use std::path::Path;
use std::process::{Command, Output};

use clip_test_support::{distinct_png, fixtures, temp_dir, TempDir};

const OPENAI: &str = "models/tiny-openai";

/// The environment of one test's `clip` runs: a Hugging Face home and a label cache of its
/// own, removed when the test ends.
struct TestContext {
    home: TempDir,
}

impl TestContext {
    fn new() -> TestContext {
        let home = temp_dir();
        std::fs::create_dir(home.path().join("hf-home")).unwrap();
        TestContext { home }
    }

    /// The binary with a clean environment: no user cache or home, no network, fixtures as cwd.
    fn clip(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip"));
        // Every variable the program reads, then the few the tests set.
        for v in clip::env::VARS {
            cmd.env_remove(v.name);
        }
        cmd.env_remove(clip::env::HUGGINGFACE_HUB_CACHE)
            .env_remove(clip::env::HUGGING_FACE_HUB_TOKEN);
        cmd.args(args)
            .current_dir(fixtures())
            .env("HOME", self.home.path())
            .env("CLIP_CACHE_DIR", self.home.path().join("clip-cache"))
            .env("HF_HOME", self.home.path().join("hf-home"))
            .env("HF_HUB_OFFLINE", "1")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100");
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = run(&mut self.clip(args));
        assert!(o.status.success(), "clip {args:?} failed:\n{}", stderr(&o));
        stdout(&o)
    }

    /// Runs `clip args`, which must exit with `code` and say `needle` on stderr.
    fn fails_with(&self, args: &[&str], code: i32, needle: &str) {
        let o = run(&mut self.clip(args));
        assert_eq!(o.status.code(), Some(code), "clip {args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "clip {args:?}: {}", stderr(&o));
    }

    /// `clip` with its index at `index`.
    fn clip_index(&self, index: &Path, args: &[&str]) -> Command {
        let mut cmd = self.clip(args);
        cmd.env("CLIP_INDEX", index);
        cmd
    }

    fn index_ok(&self, index: &Path, args: &[&str]) -> String {
        let o = run(&mut self.clip_index(index, args));
        assert!(o.status.success(), "clip {args:?} failed:\n{}", stderr(&o));
        stdout(&o)
    }

    fn scan_json(&self, index: &Path, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--json", "-q"]);
        let out = self.index_ok(index, &all);
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["scan"].clone()
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run clip")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}
