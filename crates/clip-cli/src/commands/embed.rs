//! `clip embed`: embeddings of images and texts as JSON lines or a NumPy file.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{EmbedArgs, EmbedFormat};
use crate::output;

/// One input, in command-line order.
enum Input<'a> {
    Image(&'a std::path::Path),
    Text(&'a str),
}

pub fn run(args: &EmbedArgs, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    // Keep the order the inputs were given in.
    let mut inputs: Vec<(usize, Input)> = Vec::new();
    let positions = |id: &str| -> Vec<usize> {
        matches
            .indices_of(id)
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    for (i, p) in positions("image").into_iter().zip(&args.image) {
        inputs.push((i, Input::Image(p)));
    }
    for (i, t) in positions("text").into_iter().zip(&args.text) {
        inputs.push((i, Input::Text(t)));
    }
    inputs.sort_by_key(|(i, _)| *i);

    let model = output::load_model(&args.model)?;
    let mut pixels = Vec::new();
    let mut tokens = Vec::new();
    for (_, input) in &inputs {
        match input {
            Input::Image(p) => pixels.push(model.load_image(p)?),
            Input::Text(t) => tokens.push(model.tokenize(t, args.truncate)?),
        }
    }
    let mut image_rows = model.encode_image(&pixels)?.into_iter();
    let mut text_rows = model.encode_text(&tokens)?.into_iter();
    let mut rows = Vec::with_capacity(inputs.len());
    for (_, input) in &inputs {
        let row = match input {
            Input::Image(_) => image_rows.next(),
            Input::Text(_) => text_rows.next(),
        }
        .expect("one embedding per input");
        rows.push(if args.raw {
            row
        } else {
            clip::normalized(&row)
        });
    }
    let describe = |input: &Input| match input {
        Input::Image(p) => (p.display().to_string(), "image"),
        Input::Text(t) => (t.to_string(), "text"),
    };
    match args.format {
        EmbedFormat::Jsonl => {
            let mut file;
            let mut stdout;
            let out: &mut dyn std::io::Write = match &args.output {
                Some(path) => {
                    file =
                        std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
                            anyhow::anyhow!("cannot create {}: {e}", path.display())
                        })?);
                    &mut file
                }
                None => {
                    stdout = output::stdout();
                    &mut stdout
                }
            };
            for ((_, input), row) in inputs.iter().zip(&rows) {
                let (name, kind) = describe(input);
                serde_json::to_writer(
                    &mut *out,
                    &json!({"input": name, "kind": kind, "embedding": row}),
                )?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        EmbedFormat::Npy => {
            let path = args
                .output
                .as_ref()
                .expect("clap requires --output with npy");
            output::write_npy(path, &rows)?;
            let listing: Vec<_> = inputs
                .iter()
                .map(|(_, input)| {
                    let (name, kind) = describe(input);
                    json!({"input": name, "kind": kind})
                })
                .collect();
            let mut out = output::stdout();
            output::json_line(
                &mut out,
                &json!({
                    "file": path.display().to_string(),
                    "shape": [rows.len(), model.embedding_dim()],
                    "normalized": !args.raw,
                    "rows": listing,
                }),
            )?;
            std::io::Write::flush(&mut out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
