//! Output helpers: stdout for data, stderr for progress; loading a model with a download bar.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{EngineArgs, ModelArgs};

/// Whether the error is a write to a closed pipe (`clip ... | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Buffered stdout.
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// Writes one line of JSON.
pub fn json_line(out: &mut impl Write, value: &serde_json::Value) -> anyhow::Result<()> {
    // As an io::Error, so a closed pipe is recognised as one (`is_broken_pipe`).
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A progress bar on stderr, hidden with `--quiet` or when stderr is not a terminal.
pub fn bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
    styled_bar(
        len,
        quiet,
        "{msg} [{bar:30}] {pos}/{len} ({rate}, eta {eta})",
        what,
    )
}

/// A spinner on stderr for work without a count, hidden like [`bar`].
pub fn spinner(quiet: bool, what: &str) -> ProgressBar {
    let bar = styled_bar(0, quiet, "{spinner} {msg} ({elapsed})", what);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Runs a scan with its progress shown: a spinner (`walking`) while the folders are walked,
/// then a bar (`reading`) over the files to read, both cleared when it is done.
pub fn with_scan_progress<R>(
    quiet: bool,
    walking: &str,
    reading: &str,
    run: impl FnOnce(&mut dyn FnMut(clip::photos::ScanProgress)) -> R,
) -> R {
    use clip::photos::ScanProgress;
    let walk = spinner(quiet, walking);
    // Drawn only once there is something to read (a bar at 0/0 would flash by).
    let bar = bar(0, true, reading);
    let result = run(&mut |p| match p {
        ScanProgress::Planned { to_read, .. } => {
            walk.finish_and_clear();
            if !quiet && to_read > 0 {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_length(to_read as u64);
        }
        ScanProgress::Done(n) => bar.inc(n as u64),
    });
    walk.finish_and_clear();
    bar.finish_and_clear();
    result
}

fn styled_bar(len: u64, quiet: bool, template: &str, message: &str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate(state.per_sec()));
                },
            )
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// Items per second with the digits that mean something: "12/s", "3.4/s", "0.52/s".
fn rate(per_sec: f64) -> String {
    match per_sec {
        r if !r.is_finite() || r <= 0.0 => "-/s".to_string(),
        r if r >= 9.95 => format!("{r:.0}/s"),
        r if r >= 0.995 => format!("{r:.1}/s"),
        r => format!("{r:.2}/s"),
    }
}

/// Download progress as an indicatif bar, one per file.
struct DownloadBar {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl clip::DownloadProgress for DownloadBar {
    fn start(&mut self, file: &str, size: u64) {
        self.bar = Some(styled_bar(
            size,
            self.quiet,
            "downloading {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
            file,
        ));
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// The exit code of a search or duplicates run that found nothing.
pub const NO_RESULTS: ExitCode = ExitCode::FAILURE;

/// The exit code of every failure, as for a usage error (clap's): 0 means done, 1 a search
/// that found nothing ([`NO_RESULTS`]), 2 that something went wrong.
pub const ERROR: u8 = 2;

/// The exit code of a run stopped by Ctrl-C (128 + SIGINT, what a shell shows for it).
pub const INTERRUPTED: u8 = 130;

/// `n` and the noun, singular for one: "1 image", "2 images", "3 classes".
pub fn count(n: usize, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        (_, false) => format!("{n} {noun}s"),
    }
}

/// Lets Ctrl-C stop a computation between two steps instead of killing the program: while
/// the returned guard lives, the first Ctrl-C sets the flag (for the library to see, which
/// keeps what was done and returns); a second one, or one at any other time, ends the program
/// at once with [`INTERRUPTED`], as the signal would. `None` if no handler can be set.
pub fn stop_on_ctrl_c() -> Option<CtrlCGuard> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    static ARMED: AtomicBool = AtomicBool::new(false);
    static FLAG: OnceLock<Option<Arc<AtomicBool>>> = OnceLock::new();
    let flag = FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&flag);
        ctrlc::set_handler(move || {
            if !ARMED.load(Ordering::SeqCst) || seen.swap(true, Ordering::SeqCst) {
                std::process::exit(i32::from(INTERRUPTED));
            }
        })
        .map_err(|e| tracing::debug!("no Ctrl-C handler: {e}"))
        .ok()?;
        Some(flag)
    });
    let flag = Arc::clone(flag.as_ref()?);
    ARMED.store(true, Ordering::SeqCst);
    Some(CtrlCGuard {
        flag,
        armed: &ARMED,
    })
}

/// While it lives, Ctrl-C sets [`CtrlCGuard::flag`] (see [`stop_on_ctrl_c`]).
#[derive(Debug)]
pub struct CtrlCGuard {
    /// Set by the first Ctrl-C.
    pub flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    armed: &'static std::sync::atomic::AtomicBool,
}

impl Drop for CtrlCGuard {
    fn drop(&mut self) {
        self.armed.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Loads the model the arguments name (`--model`, else [`clip::DEFAULT_MODEL`]).
pub fn load_model(args: &ModelArgs) -> Result<clip::Clip, clip::ClipError> {
    load_named(args, args.model.as_deref().unwrap_or(clip::DEFAULT_MODEL))
}

/// Loads the model `name` with the arguments' device and engine options, downloading it with
/// a progress bar when needed.
pub fn load_named(args: &ModelArgs, name: &str) -> Result<clip::Clip, clip::ClipError> {
    let device = engine_options(&args.device, &args.engine)?;
    let mut progress = DownloadBar {
        quiet: args.quiet,
        bar: None,
    };
    let mut options = clip::ResolveOptions::from_env();
    options.offline |= args.offline;
    let model = clip::Clip::load_with(name, device, &options, &mut progress)?;
    tracing::info!("loaded {} from {}", model.name(), model.dir().display());
    let model = match args.max_image_megapixels {
        Some(mp) => {
            let limits = clip::DecodeLimits::default().with_max_megapixels(mp);
            model.with_decode_limits(limits)
        }
        None => model,
    };
    Ok(model.with_batch_size(args.batch_size as usize))
}

/// Engine options from the command line; sets the thread count first.
pub fn engine_options(
    device: &clip::Device,
    args: &EngineArgs,
) -> Result<clip::EngineOptions, clip::ClipError> {
    if let Some(n) = args.threads {
        clip::set_threads(n as usize)?;
    }
    Ok(clip::EngineOptions {
        device: *device,
        precision: args.precision,
        backend: if args.reference {
            clip::Backend::Candle
        } else {
            clip::Backend::Fast
        },
    })
}

/// Writes `rows` as a little-endian float32 NumPy array of shape `[rows, dim]`.
pub fn write_npy(path: &std::path::Path, rows: &[Vec<f32>]) -> anyhow::Result<()> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        rows.len(),
        dim
    );
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + rows.len() * dim * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for row in rows {
        for v in row {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_have_few_digits() {
        let shown: Vec<String> = [1234.5678, 12.3456, 9.96, 3.456, 0.5234, 0.0, f64::INFINITY]
            .map(super::rate)
            .to_vec();
        assert_eq!(
            shown,
            ["1235/s", "12/s", "10/s", "3.5/s", "0.52/s", "-/s", "-/s"]
        );
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(super::count(1, "image"), "1 image");
        assert_eq!(super::count(0, "caption"), "0 captions");
        assert_eq!(super::count(1, "class"), "1 class");
        assert_eq!(super::count(3, "class"), "3 classes");
        assert_eq!(super::count(2, "cached classifier"), "2 cached classifiers");
    }
}
