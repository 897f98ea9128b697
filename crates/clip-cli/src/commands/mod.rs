//! One module per subcommand, each with `pub fn run`: parse what clap gave, call the library,
//! print.
pub mod bench;
pub mod cache;
pub mod classify;
pub mod duplicates;
pub mod embed;
pub mod eval;
pub mod index;
pub mod lists;
pub mod models;
pub mod search;
pub mod tokenize;
