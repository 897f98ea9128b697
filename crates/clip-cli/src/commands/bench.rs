//! `clip bench`: throughput of the model, the preprocessing and the tokenizer.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use crate::cli::{BenchArgs, BenchTask};

use crate::output;

/// The short prompt of the text rows: start, six words, end (what "a photo of a dog." gives).
const SHORT_PROMPT: usize = 8;
/// The default photo of the preprocess row (public domain, NASA), so that an installed binary
/// measures the same file as a checkout.
const PHOTO: &[u8] = include_bytes!("../../../../fixtures/photos/hubble_deep_field.jpg");
const PHOTO_NAME: &str = "hubble_deep_field.jpg (built in)";
/// Items per timed repeat at least, so that batch 1 is not timed on a single call.
const MIN_ITEMS: usize = 32;

struct Row {
    task: &'static str,
    batch: usize,
    tokens: Option<usize>,
    /// Vectors searched (search rows), or images indexed (index rows).
    items: Option<usize>,
    unit: &'static str,
    /// Items per second (or milliseconds, for latencies) of each repeat.
    rates: Vec<f64>,
}

impl Row {
    fn label(&self) -> String {
        match (self.task, self.tokens) {
            ("image", _) => format!("images/s, batch {}", self.batch),
            ("text", Some(t)) => format!("texts/s, {t} tokens, batch {}", self.batch),
            ("preprocess", _) => "preprocess images/s (1 thread)".into(),
            ("tokenize", _) => "tokenizer texts/s (1 thread)".into(),
            ("search", _) => format!("search ms, top-10 of {}", self.items.unwrap_or(0)),
            ("index", _) => format!("index images/s, {} photos", self.items.unwrap_or(0)),
            ("index-model", _) => format!("  model only, same {} photos", self.items.unwrap_or(0)),
            _ => self.task.into(),
        }
    }

    fn stats(&self) -> (f64, f64, f64) {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        let median = if r.len() % 2 == 1 {
            r[r.len() / 2]
        } else {
            (r[r.len() / 2 - 1] + r[r.len() / 2]) / 2.0
        };
        (median, r[0], r[r.len() - 1])
    }
}

/// Runs `work` (which processes `items` items) once to warm up, then `repeats` times timed.
fn time(
    repeats: u32,
    items: usize,
    mut work: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    work()?;
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            work()?;
            Ok(items as f64 / start.elapsed().as_secs_f64())
        })
        .collect()
}

/// [`time`] for a model row at batch `b`: a repeat makes enough calls to process at least
/// [`MIN_ITEMS`] items.
fn time_batches(
    repeats: u32,
    b: usize,
    mut call: impl FnMut() -> anyhow::Result<Vec<Vec<f32>>>,
) -> anyhow::Result<Vec<f64>> {
    let calls = MIN_ITEMS.div_ceil(b);
    time(repeats, calls * b, || {
        for _ in 0..calls {
            call()?;
        }
        Ok(())
    })
}

/// Deterministic pseudo-random numbers (xorshift), so runs see the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let engine = output::engine_options(&args.device, &args.engine)?;
    let needs_model = args
        .only
        .iter()
        .any(|t| matches!(t, BenchTask::Image | BenchTask::Text | BenchTask::Index));
    let (model, name) = if let Some(m) = &args.model {
        let mut options = clip::ResolveOptions::from_env();
        options.offline |= args.offline;
        let model = clip::Clip::load_with(m, engine, &options, &mut clip::NoProgress)?;
        (Some(model), m.clone())
    } else if needs_model {
        let start = Instant::now();
        let model = clip::Clip::random(&args.arch, engine)?;
        tracing::info!("built {} in {:.1?}", args.arch, start.elapsed());
        (Some(model), format!("{} (random weights)", args.arch))
    } else {
        clip::architecture(&args.arch)?;
        (None, args.arch.clone())
    };
    let preprocess = model.as_ref().map_or_else(
        || clip::PreprocessConfig::openai(224),
        |m| m.preprocess_config().clone(),
    );
    let threads = clip::threads();
    let mut rows = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // A status line on a terminal (rewritten in place); nothing in logs or with --json.
    let live = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = |what: String| {
        if live {
            eprint!("\r\x1b[2K{what} ...");
        }
    };

    if let (true, Some(model)) = (args.only.contains(&BenchTask::Image), &model) {
        let size = model.config().vision_config.image_size;
        for &b in &args.batch_sizes {
            let b = b as usize;
            progress(format!("images, batch {b}"));
            let images: Vec<clip::Pixels> = (0..b)
                .map(|_| clip::Pixels {
                    height: size,
                    width: size,
                    data: (0..3 * size * size)
                        .map(|_| rng.unit() * 4.0 - 2.0)
                        .collect(),
                })
                .collect();
            let model = model.clone().with_batch_size(b);
            let rates = time_batches(args.repeats, b, || Ok(model.encode_image(&images)?))?;
            rows.push(Row {
                task: "image",
                batch: b,
                tokens: None,
                items: None,
                unit: "images/s",
                rates,
            });
        }
    }

    if let (true, Some(model)) = (args.only.contains(&BenchTask::Text), &model) {
        let context = model.context_length();
        // CLIP's start and end tokens are the last two of the vocabulary; the words are drawn
        // from the rest, so a checkpoint with a small vocabulary works too.
        let vocab = model.config().text_config.vocab_size as u64;
        if vocab < 3 {
            anyhow::bail!("a vocabulary of {vocab} tokens has no room for text between the start and end tokens");
        }
        let (start, end) = ((vocab - 2) as u32, (vocab - 1) as u32);
        for tokens in [context, SHORT_PROMPT.min(context)] {
            for &b in &args.batch_sizes {
                let b = b as usize;
                progress(format!("texts, {tokens} tokens, batch {b}"));
                let texts: Vec<clip::Tokens> = (0..b)
                    .map(|_| {
                        let mut ids = vec![0u32; context];
                        ids[0] = start;
                        for id in &mut ids[1..tokens - 1] {
                            *id = (rng.next() % (vocab - 2)) as u32;
                        }
                        ids[tokens - 1] = end;
                        clip::Tokens {
                            ids,
                            eot_position: tokens - 1,
                            length: tokens,
                            truncated: false,
                        }
                    })
                    .collect();
                let model = model.clone().with_batch_size(b);
                let rates = time_batches(args.repeats, b, || Ok(model.encode_text(&texts)?))?;
                rows.push(Row {
                    task: "text",
                    batch: b,
                    tokens: Some(tokens),
                    items: None,
                    unit: "texts/s",
                    rates,
                });
            }
        }
    }

    if args.only.contains(&BenchTask::Preprocess) {
        progress("preprocess".into());
        let n = 20;
        let limits = clip::DecodeLimits::default();
        // One thread: the preprocessing of one image is sequential code.
        let rates = match &args.photo {
            Some(path) => {
                std::fs::metadata(path)
                    .with_context(|| format!("cannot read the photo {}", path.display()))?;
                time(args.repeats, n, || {
                    for _ in 0..n {
                        clip::load_image(path, &preprocess, &limits)?;
                    }
                    Ok(())
                })?
            }
            None => time(args.repeats, n, || {
                for _ in 0..n {
                    clip::load_image_bytes(PHOTO, PHOTO_NAME, &preprocess, &limits)?;
                }
                Ok(())
            })?,
        };
        rows.push(Row {
            task: "preprocess",
            batch: 1,
            tokens: None,
            items: None,
            unit: "images/s",
            rates,
        });
    }

    if args.only.contains(&BenchTask::Tokenize) {
        progress("tokenizer".into());
        let animals = [
            "dog",
            "cat",
            "horse",
            "rocket",
            "cup of coffee",
            "galaxy",
            "coin",
            "camera",
        ];
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("a photo of a {} number {i}.", animals[i % animals.len()]))
            .collect();
        let tokenizer = clip::Tokenizer::openai();
        let rates = time(args.repeats, texts.len(), || {
            for t in &texts {
                tokenizer.tokenize(t, 77, true)?;
            }
            Ok(())
        })?;
        rows.push(Row {
            task: "tokenize",
            batch: texts.len(),
            tokens: None,
            items: None,
            unit: "texts/s",
            rates,
        });
    }
    if args.only.contains(&BenchTask::Search) {
        for &n in &args.search_sizes {
            progress(format!("search over {n} vectors"));
            rows.push(search_row(n as usize, args.repeats, &mut rng));
        }
    }

    if let (true, Some(model)) = (args.only.contains(&BenchTask::Index), &model) {
        progress("indexing".into());
        rows.extend(index_rows(model, args)?);
    }
    if live {
        eprint!("\r\x1b[2K");
    }

    let precision = if args.engine.reference {
        format!("{} (reference kernels)", args.engine.precision)
    } else {
        args.engine.precision.to_string()
    };
    let mut out = output::stdout();
    if args.json {
        let results: Vec<_> = rows
            .iter()
            .map(|r| {
                let (median, min, max) = r.stats();
                json!({"task": r.task, "batch": r.batch, "tokens": r.tokens, "items": r.items,
                       "unit": r.unit, "median": median, "min": min, "max": max})
            })
            .collect();
        output::json_line(
            &mut out,
            &json!({"arch": args.model.clone().unwrap_or_else(|| args.arch.clone()),
                    "precision": precision, "threads": threads,
                    "decode_threads": args.decode_threads, "repeats": args.repeats,
                    "cpu": cpu_name(), "results": results}),
        )?;
    } else {
        let decode = match args.decode_threads {
            Some(n) => format!(" (+{n} decoding)"),
            None => String::new(),
        };
        writeln!(
            out,
            "{name}, {precision}, {threads} threads{decode}, {}",
            cpu_name()
        )?;
        writeln!(
            out,
            "{:<34} {:>10} {:>10} {:>10}",
            "", "median", "min", "max"
        )?;
        for r in &rows {
            let (median, min, max) = r.stats();
            writeln!(
                out,
                "{:<34} {median:>10.1} {min:>10.1} {max:>10.1}",
                r.label()
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Dimension of the search rows' vectors (ViT-B's embeddings).
const SEARCH_DIM: usize = 512;

/// Latency of exact top-10 search over `n` random vectors, one random query per repeat.
fn search_row(n: usize, repeats: u32, rng: &mut Rng) -> Row {
    let data: Vec<f32> = (0..n * SEARCH_DIM).map(|_| rng.unit() - 0.5).collect();
    let vectors =
        clip::photos::Vectors::from_flat((0..n).map(|i| i.to_string()).collect(), SEARCH_DIM, data);
    let mut query = || -> Vec<f32> { (0..SEARCH_DIM).map(|_| rng.unit() - 0.5).collect() };
    let q = query();
    vectors.top_k(&q, 10); // warm-up
    let rates = (0..repeats.max(1))
        .map(|_| {
            let q = query();
            let start = Instant::now();
            let hits = vectors.top_k(&q, 10);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            assert_eq!(hits.len(), 10.min(n));
            ms
        })
        .collect();
    Row {
        task: "search",
        batch: 1,
        tokens: None,
        items: Some(n),
        unit: "ms",
        rates,
    }
}

/// Indexing throughput: a fresh index of the folder per repeat (the whole scan: walk, read,
/// hash, decode on worker threads, model, commits), and the model alone on the same photos
/// decoded beforehand.
fn index_rows(model: &clip::Clip, args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let scratch = std::env::temp_dir().join(format!("clip-bench-index-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let folder = match &args.index_dir {
        Some(d) => d.clone(),
        None => {
            let d = scratch.join("photos");
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            for i in 0..64 {
                // Bytes after the JPEG's end make each copy distinct content, same pixels.
                let mut bytes = PHOTO.to_vec();
                bytes.extend_from_slice(format!("copy {i}").as_bytes());
                let p = d.join(format!("photo{i:02}.jpg"));
                std::fs::write(&p, bytes)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            d
        }
    };
    let files = clip::dataset::image_files(&folder)?;
    anyhow::ensure!(!files.is_empty(), "no images in {}", folder.display());
    let index_path = scratch.join("bench.sqlite");
    let info = model.index_info();
    let result = (|| -> anyhow::Result<Vec<Row>> {
        let mut scan = || -> anyhow::Result<()> {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", index_path.display()));
            }
            let mut index = clip::photos::Index::open(&index_path, &info)?;
            let report = model.update_index(
                &mut index,
                std::slice::from_ref(&folder),
                &clip::photos::ScanOptions {
                    decode_threads: args.decode_threads.map(|n| n as usize),
                    ..Default::default()
                },
                &mut |_| {},
            )?;
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} photos could not be indexed, e.g. {}",
                report.failed.len(),
                report.failed[0].error
            );
            Ok(())
        };
        let n = files.len();
        let whole = time(args.repeats, n, &mut scan)?;
        let pixels = files
            .iter()
            .map(|p| model.load_image(p))
            .collect::<Result<Vec<_>, _>>()?;
        let model_only = time(args.repeats, n, || {
            model.encode_image(&pixels)?;
            Ok(())
        })?;
        Ok(vec![
            Row {
                task: "index",
                batch: model.batch_size(),
                tokens: None,
                items: Some(n),
                unit: "images/s",
                rates: whole,
            },
            Row {
                task: "index-model",
                batch: model.batch_size(),
                tokens: None,
                items: Some(n),
                unit: "images/s",
                rates: model_only,
            },
        ])
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
