//! The `clip` command. `run` does the work and returns errors; `main` owns exit codes:
//! 0 success (a closed stdout pipe counts as success), 1 a search or duplicates run that found
//! nothing, 2 any error, bad usage included, 130 a run stopped by Ctrl-C.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    unset_empty_variables();
    init_logging();
    let matches = Cli::command()
        .after_help(format!(
            "{}\n\nExit status: 0 done, 1 nothing found (search, duplicates), 2 an error, 130 \
             stopped by Ctrl-C.",
            clip::env::help_section()
        ))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(code) => code,
        Err(err) => {
            if output::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if let Some(e @ clip::ClipError::Interrupted { kept_in, .. }) = err.downcast_ref() {
                // Asked for, so no `error:`; the message starts with `interrupted`.
                eprintln!("{e}");
                if kept_in.is_some() {
                    eprintln!("hint: run the same command again to continue where it stopped");
                }
                return ExitCode::from(output::INTERRUPTED);
            }
            eprintln!("error: {err:#}");
            if let Some(hint) = hint(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(output::ERROR)
        }
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Classify(args) => commands::classify::run(&args),
        Command::Embed(args) => {
            let sub = matches
                .subcommand_matches("embed")
                .expect("embed arguments are present for the embed command");
            commands::embed::run(&args, sub)
        }
        Command::Tokenize(args) => commands::tokenize::run(&args),
        Command::Models(args) => commands::models::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Eval(command) => commands::eval::run(&command),
        Command::Lists(args) => commands::lists::run(&args),
        Command::Index(args) => commands::index::run(&args),
        Command::Search(args) => commands::search::run(&args),
        Command::Duplicates(args) => commands::duplicates::run(&args),
        Command::Cache(args) => commands::cache::run(&args),
    }
}

/// An empty variable counts as unset (README, Environment): clap would otherwise take
/// `CLIP_MODEL=` as the model "" and `CLIP_INDEX=` as a missing value.
fn unset_empty_variables() {
    for v in clip::env::VARS {
        if std::env::var_os(v.name).is_some_and(|value| value.is_empty()) {
            // First thing in `main`, before any thread reads the environment.
            std::env::remove_var(v.name);
        }
    }
}

/// Logs go to stderr, filtered by `CLIP_LOG` (default: warnings and errors), written as the
/// program's other messages are ([`LogLine`]).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(clip::env::CLIP_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(LogLine)
        .try_init();
}

/// A log event as one line like the program's own messages: `warning: …`, `error: …`,
/// `info: …`; debug and trace lines name where they come from.
struct LogLine;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LogLine
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let level = *meta.level();
        let name = match level {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(writer, "{name}: ")?;
        if level > tracing::Level::INFO {
            write!(writer, "{}: ", meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// A next step for errors whose fix is not obvious from the message: the one place hints are
/// made, from the library's typed errors (the messages stay free of CLI advice).
fn hint(err: &anyhow::Error) -> Option<String> {
    use clip::error::{ClipError, ModelError, TokenizeError};
    use clip::photos::{IndexError, Refusal};
    if let Some(TokenizeError::TooLong { .. }) = err.downcast_ref::<TokenizeError>() {
        return Some("pass --truncate to cut long texts to the context".into());
    }
    Some(match err.downcast_ref::<ClipError>()? {
        ClipError::ModelNotFound { .. } => {
            "`clip models` lists the known names and the models already in the cache; a folder \
             holding a checkpoint's files can be passed as --model"
                .into()
        }
        ClipError::Model(ModelError::Device { .. }) => {
            "use --device cpu, or build with `--features cuda` / `--features metal`".into()
        }
        ClipError::Tokenize(_) => "pass --truncate to cut long texts to the context".into(),
        ClipError::NoIndex { path } if std::path::Path::new(path).is_dir() => format!(
            "--index (or CLIP_INDEX) names the index file itself{}; to index the photos in this \
             folder, run `clip index {path:?}`",
            clip::photos::default_index_path()
                .map(|p| format!(", by default {}", p.display()))
                .unwrap_or_default()
        ),
        ClipError::NoIndex { .. } => "build one with `clip index FOLDER` (or pass --index)".into(),
        ClipError::NoFolders { .. } => "name one, e.g. `clip index ~/Pictures`".into(),
        ClipError::NotIndexed {
            left_out_by: Some(_),
            ..
        } => "leave out --no-scan to embed it for this run only".into(),
        ClipError::NotIndexed { folder, .. } => format!(
            "leave out --no-scan to embed it for this run only, or add it with \
             `clip index {folder:?}`"
        ),
        ClipError::IndexDamaged { .. } => "delete it and run `clip index` with its folders \
             again; the photos are untouched"
            .into(),
        ClipError::Image(e @ clip::error::ImageError::TooLarge { width, height, .. })
            if *width > 0 && *height > 0 && e.budget_helps() =>
        {
            let mp = (u64::from(*width) * u64::from(*height)).div_ceil(1_000_000);
            format!(
                "--max-image-megapixels {mp} accepts it (it has {:.1} megapixels); sizes are \
                 still checked before decoding",
                u64::from(*width) as f64 * f64::from(*height) / 1e6
            )
        }
        ClipError::Exclude { .. } | ClipError::NotExcluded { .. } => {
            "`clip index --status` lists the index's exclusions".into()
        }
        ClipError::DefaultExclusion { .. } => {
            "--no-default-excludes turns the defaults off (--default-excludes on again)".into()
        }
        ClipError::ExcludeRoot { root, .. } => {
            format!("`clip index --forget {root:?}` drops a folder from the index")
        }
        ClipError::ExcludedFolder {
            folder,
            default: true,
            ..
        } => format!(
            "`clip index {folder:?} --no-default-excludes` indexes it, the default exclusions \
             off for the whole index; `clip duplicates {folder:?}` compares it without indexing it"
        ),
        ClipError::ExcludedFolder {
            folder, pattern, ..
        } => format!(
            "`clip index {folder:?} --no-exclude {pattern:?}` takes the exclusion out and \
             indexes it"
        ),
        ClipError::RootUnavailable { path, .. } => {
            format!(
                "if it is gone for good, `clip index --forget {path:?}` drops it from the index"
            )
        }
        ClipError::Index(e) => {
            match e.as_ref() {
                IndexError::ModelMismatch {
                    path,
                    index_model,
                    model,
                    ..
                } if index_model == model => format!(
                    "the model's files changed since the index was built (weights fine-tuned or \
                 updated in place, or its configuration or preprocessing): put the old ones \
                 back, or rebuild the index for this model: delete {path} and run clip index \
                 again (or use another --index)"
                ),
                IndexError::ModelMismatch {
                    path, index_model, ..
                } => format!(
                "use the index's model (--model {index_model:?}), or rebuild the index for this \
                 model: delete {path} and run clip index again (or use another --index)"
            ),
                IndexError::NewerSchema { .. } => {
                    "a newer clip made it: use that version, or another --index for this one".into()
                }
                IndexError::Blank { path } => {
                    format!("index a folder into it to build it afresh: clip index FOLDER --index {path:?}")
                }
                IndexError::Refused {
                    reason: Refusal::Excluded { .. },
                } => format!(
                    "`clip index --status` lists the exclusions; if they are meant, run again \
                     with --allow-mass-delete (the vectors are kept {} days for files that come \
                     back)",
                    clip::photos::KEEP_REMOVED_DAYS
                ),
                IndexError::Refused { reason } if reason.can_override() => {
                    "if they are really gone, run again with --allow-mass-delete".into()
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_valid() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    /// `clip index --help` names every extension the walker takes and every default
    /// exclusion, as the library has them.
    #[test]
    fn index_help_lists_the_extensions_and_default_exclusions() {
        let cmd = <super::Cli as clap::CommandFactory>::command();
        let index = cmd.find_subcommand("index").unwrap();
        let help = index
            .get_long_about()
            .unwrap()
            .to_string()
            .replace('\n', " ");
        for ext in clip::walk::IMAGE_EXTENSIONS {
            assert!(
                help.contains(&format!(" .{ext}")),
                ".{ext} is not in the help"
            );
        }
        for name in clip::walk::DEFAULT_EXCLUDES {
            let shown = if name.contains(' ') {
                format!("{name:?}")
            } else {
                name.to_string()
            };
            assert!(help.contains(&shown), "{name} is not in the help");
        }
    }

    /// The README's environment table lists the variables of `clip::env::VARS`, in order.
    #[test]
    fn readme_lists_every_environment_variable() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Environment\n")
            .nth(1)
            .expect("README has an Environment section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let documented: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let names: Vec<&str> = clip::env::VARS.iter().map(|v| v.name).collect();
        assert_eq!(documented, names, "update README.md's Environment table");
    }
}
