//! Command-line interface definition. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Zero-shot image classification and image/text embeddings with CLIP.
///
/// Models are named as in OpenAI's `clip.load` (ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px),
/// as Hugging Face repo ids (openai/clip-vit-base-patch32, org/name@revision), or as a local
/// checkpoint directory (config.json, model.safetensors, preprocessor_config.json).
/// Hub models are read from the Hugging Face cache, so models downloaded with Python are found
/// offline, and are downloaded into it when missing.
#[derive(Debug, Parser)]
#[command(name = "clip", version, propagate_version = true)]
#[command(after_help = "Environment:
  CLIP_MODEL       default for --model
  CLIP_DEVICE      default for --device
  CLIP_LOG         log filter for stderr, e.g. debug (default: warn)
  HF_HOME          Hugging Face home; the cache is $HF_HOME/hub (default ~/.cache/huggingface)
  HF_HUB_CACHE     the cache folder itself, overriding HF_HOME
  HF_ENDPOINT      hub address (default https://huggingface.co)
  HF_HUB_OFFLINE   set to 1 to never download
  HF_TOKEN         access token for gated or private models (else $HF_HOME/token)
  NO_COLOR         disable colours")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify images among labels given in plain language.
    ///
    /// Prints each label's probability (softmax over the labels of logit_scale times the
    /// cosine similarity), most likely first.
    #[command(after_help = "Examples:
  clip classify cat.jpg --labels \"cat,dog,car,tree,house\"
  clip classify photos/*.jpg --labels labels.txt --top-k 3 --json")]
    Classify(ClassifyArgs),
    /// Print embeddings of images and texts.
    ///
    /// Writes one JSON object per input, in command-line order:
    /// {"input": ..., "kind": "image"|"text", "embedding": [...]}; or, with --format npy, a
    /// float32 array of shape [inputs, dim] to --output.
    #[command(after_help = "Examples:
  clip embed --image a.jpg --image b.png --text \"a photo of a dog\"
  clip embed --image a.jpg --format npy --output a.npy")]
    Embed(EmbedArgs),
    /// Print the token ids CLIP's tokenizer gives a text (no model needed).
    #[command(after_help = "Examples:
  clip tokenize \"a photo of a dog\"
  clip tokenize --pad --context-length 16 --truncate \"a very long caption ...\"")]
    Tokenize(TokenizeArgs),
    /// List the known model names and the CLIP models in the Hugging Face cache.
    Models(ModelsArgs),
}

/// Options shared by the commands that run a model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px, a Hugging Face repo id
    /// (org/name[@revision]) or a checkpoint directory.
    #[arg(long, short, env = "CLIP_MODEL", default_value = "ViT-B/32")]
    pub model: String,
    /// Where to run the model: cpu, cuda[:N] or metal[:N] (GPUs need a build with the
    /// `cuda` or `metal` feature).
    #[arg(long, env = "CLIP_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Images or texts per model call.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Never download; use only the Hugging Face cache or a local directory
    /// (same as HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Do not draw progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, WebP, GIF, BMP, TIFF; the format is read from the content).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Labels: comma-separated ("cat,dog,car"), or a text file with one label per line.
    #[arg(long, short, value_name = "LABELS")]
    pub labels: String,
    /// Show only the K most likely labels.
    #[arg(long, short = 'k', value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub top_k: Option<u64>,
    /// Print one JSON object per image instead of text.
    #[arg(long)]
    pub json: bool,
    /// Cut labels longer than the model's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedFormat {
    /// One JSON object per line on stdout.
    Jsonl,
    /// A NumPy .npy file (float32, [inputs, dim]) written to --output.
    Npy,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("inputs").args(["image", "text"]).required(true).multiple(true)))]
pub struct EmbedArgs {
    /// An image file to embed (repeatable).
    #[arg(long, value_name = "PATH")]
    pub image: Vec<PathBuf>,
    /// A text to embed (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub text: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EmbedFormat::Jsonl)]
    pub format: EmbedFormat,
    /// File to write (required for npy; jsonl goes to stdout without it).
    #[arg(long, short, value_name = "FILE", required_if_eq("format", "npy"))]
    pub output: Option<PathBuf>,
    /// Print the raw projected features instead of L2-normalized embeddings.
    #[arg(long)]
    pub raw: bool,
    /// Cut texts longer than the model's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// Texts to tokenize.
    #[arg(required = true, value_name = "TEXT")]
    pub texts: Vec<String>,
    /// Context length in tokens, start and end markers included.
    #[arg(long, default_value_t = 77, value_parser = clap::value_parser!(u32).range(2..=65536))]
    pub context_length: u32,
    /// Cut texts that do not fit (the last token becomes <end_of_text>) instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Pad each sequence with zeros to the context length, as the model receives it.
    #[arg(long)]
    pub pad: bool,
    /// Print one JSON object per text, with the token strings.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
