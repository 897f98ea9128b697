//! `clip tokenize`: CLIP's token ids for texts.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;

use crate::cli::TokenizeArgs;
use crate::output;

pub fn run(args: &TokenizeArgs) -> anyhow::Result<ExitCode> {
    let tokenizer = clip::Tokenizer::openai();
    let context = args.context_length as usize;
    let mut out = output::stdout();
    for text in &args.texts {
        let tokens = tokenizer.tokenize(text, context, args.truncate)?;
        let end = if args.pad { context } else { tokens.length };
        let ids = &tokens.ids[..end];
        if args.json {
            let strings: Vec<&str> = ids
                .iter()
                .map(|&id| tokenizer.token_str(id).unwrap_or(""))
                .collect();
            output::json_line(
                &mut out,
                &json!({
                    "text": text,
                    "ids": ids,
                    "tokens": strings,
                    "eot_position": tokens.eot_position,
                    "truncated": tokens.truncated,
                }),
            )?;
        } else {
            let line: Vec<String> = ids.iter().map(u32::to_string).collect();
            writeln!(out, "{}", line.join(" "))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
