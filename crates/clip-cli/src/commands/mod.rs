//! One module per subcommand.
pub mod bench;
pub mod classify;
pub mod embed;
pub mod eval;
pub mod index;
pub mod lists;
pub mod models;
pub mod tokenize;
