//! The `clip` command. `run` does the work and returns errors; `main` owns exit codes:
//! 0 success (a closed stdout pipe counts as success), 1 failure, 2 bad usage.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    init_logging();
    let matches = Cli::command().get_matches();
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
            eprintln!("error: {err:#}");
            if let Some(hint) = hint(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
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
        Command::Lists(args) => commands::lists::lists(&args),
        Command::Index(args) => commands::index::index(&args, model_given(matches, "index")),
        Command::Search(args) => commands::index::search(&args, model_given(matches, "search")),
        Command::Duplicates(args) => {
            commands::index::duplicates(&args, model_given(matches, "duplicates"))
        }
        Command::Cache(args) => commands::lists::cache(&args),
    }
}

/// Whether `--model` (or `CLIP_MODEL`) was given to the subcommand, rather than defaulted.
fn model_given(matches: &clap::ArgMatches, sub: &str) -> bool {
    matches
        .subcommand_matches(sub)
        .and_then(|m| m.value_source("model"))
        .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue)
}

/// Logs go to stderr, filtered by `CLIP_LOG` (default: warnings and errors).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLIP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .without_time()
        .try_init();
}

/// A next step for errors whose fix is not obvious from the message.
fn hint(err: &anyhow::Error) -> Option<&'static str> {
    use clip::error::{ClipError, ModelError, TokenizeError};
    if let Some(TokenizeError::TooLong { .. }) = err.downcast_ref::<TokenizeError>() {
        return Some("pass --truncate to cut long texts to the context");
    }
    match err.downcast_ref::<ClipError>()? {
        ClipError::ModelNotFound { .. } => {
            Some("`clip models` lists the known names and the models already in the cache")
        }
        ClipError::Model(ModelError::Device { .. }) => {
            Some("use --device cpu, or build with `--features cuda` / `--features metal`")
        }
        ClipError::Tokenize(_) => Some("pass --truncate to cut long texts to the context"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_valid() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
