//! Command-line interface definition. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// CLIP in one program: zero-shot classification, image and text embeddings, a photo index
/// searched by text or example image, near-duplicates, evaluation and benchmarks.
///
/// Models are named as in OpenAI's `clip.load` (ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px),
/// as Hugging Face repo ids (openai/clip-vit-base-patch32, org/name@revision), or as a local
/// checkpoint directory (config.json, model.safetensors, preprocessor_config.json).
/// Hub models are read from the Hugging Face cache, so models downloaded with Python are found
/// offline, and are downloaded into it when missing.
#[derive(Debug, Parser)]
#[command(name = "clip", version, propagate_version = true)]
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
  clip classify cat.jpg --labels \"cat,dog\" --template \"a photo of a {}.\"
  clip classify photos/*.jpg --labels imagenet --templates imagenet --top-k 5
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
    /// Measure speed: images/s and texts/s of the model, preprocessing and tokenizer.
    ///
    /// By default the model is a named architecture with random weights (the compute is that
    /// of the real model, so no download is needed). Each row is timed --repeats times after
    /// one warm-up and reports the median, min and max throughput. A repeat processes
    /// max(batch, 32) items, so batch 1 is 32 calls.
    #[command(after_help = "Examples:
  clip bench
  clip bench --arch ViT-L/14 --batch-sizes 1,8 --precision bf16
  clip bench --threads 2 --json > ours.json
  python3 bench/peers.py --threads 2   # the same rows for PyTorch and ONNX Runtime")]
    Bench(BenchArgs),
    /// Evaluate a model: zero-shot accuracy on a labelled image folder, image-text retrieval.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Show the built-in class lists and prompt templates (ImageNet and the datasets of the
    /// CLIP paper), or the entries of one.
    #[command(after_help = "Examples:
  clip lists
  clip lists food101
  clip lists imagenet --templates")]
    Lists(ListsArgs),
    /// Index the images under folders into one file, for search; later runs embed only new or
    /// changed files.
    ///
    /// The index (default: $CLIP_INDEX, else ~/.local/share/clip/index.sqlite) records each
    /// image's path, size, modification time, content hash and embedding, and the model that
    /// made them; another model is refused. Renamed, moved or copied files reuse their
    /// vectors (a renamed folder counts as moved, not removed), and so do files moved out of
    /// the folders and back within 30 days; files that cannot be decoded are recorded with the
    /// reason and retried when they change; files gone from the folders are dropped after a
    /// complete scan, unless that looks like a missing disk (more than half of them, a root
    /// missing or empty, a link to a missing folder, ten or more from a folder now empty):
    /// then the scan stops and --allow-mass-delete is needed. A folder or file that cannot be
    /// read is reported, and what is indexed there is kept. Each batch is committed as it is
    /// done, so an interrupted run loses at most one batch and the next run goes on from
    /// there.
    ///
    /// Image files are those named .jpg .jpeg .jfif .png .apng .webp .gif .bmp .tif .tiff
    /// .ppm .pgm .pbm .pnm .pam; other files are counted by extension (HEIC and videos are
    /// not read). Hidden files and folders are left out, and so are NAS thumbnail and recycle
    /// folders, system and software folders (the default exclusions: @eaDir #recycle
    /// #snapshot @Recycle @Recently-Snapshot $RECYCLE.BIN "System Volume Information"
    /// lost+found __MACOSX node_modules site-packages) and what --exclude names; the index
    /// keeps its exclusions for later scans, and --status lists them. A folder the
    /// exclusions leave out is refused as a FOLDER to index (take its exclusion out with
    /// --no-exclude in the same command), and exclusions that would drop more than half of
    /// the indexed files need --allow-mass-delete, as deletions do.
    #[command(after_help = "Examples:
  clip index ~/Pictures              # first run embeds everything, later runs what changed
  clip index                         # rescan the folders indexed before
  clip index --status                # what is indexed, with which model, what failed
  clip index --exclude '*.tmp.jpg' --exclude 'Scans/raw'   # kept for later scans
  clip index --forget ~/Pictures/junk   # drop a subfolder; later scans leave it out
  clip index --no-exclude ~/Pictures/junk   # bring it back
  clip index --forget /mnt/old-disk  # drop a folder that is gone for good
  clip index --max-image-megapixels 200   # panoramas wider than 16384 pixels
  clip index ~/Pictures --index photos.sqlite --json")]
    Index(IndexArgs),
    /// Search the index by text, by example image, or both.
    ///
    /// Prints the best matches, best first: score and path. The score is the cosine
    /// similarity of the image to the query. Several terms are combined: each term's embedding
    /// times its weight (--weights, in the order texts then images; default 1 each), summed.
    /// In a text, words starting with '-' are subtracted: "beach -people" finds beaches without
    /// people. A subtracted word lowers the score of the images that match it more than the
    /// index's average image does (and raises the others'), so scores keep the scale of the
    /// plain query and one --min-score serves both. Options go before `--`: after it, every
    /// argument is query words, and one that is exactly one of this command's options (`-k`,
    /// `--json`) is refused as a likely mistake (inside a quoted text it is a word: -- "-k
    /// dog"). Exits with 1 when nothing scores at least --min-score, and
    /// says the best score on stderr.
    #[command(after_help = "Examples:
  clip search \"a dog playing in the snow\"
  clip search --image query.jpg
  clip search \"beach\" --image sunset.jpg --weights 1,0.5 --top-k 20 --json
  clip search \"cat\" --min-score 0.25 --paths | xargs open")]
    Search(SearchArgs),
    /// Find groups of near-duplicate photos under folders.
    ///
    /// In a group, every two photos have embeddings at least --threshold similar (cosine;
    /// complete linkage): a burst of shots, each like the next, is not chained into one group
    /// whose first and last shots differ. A group starts with its representative, the photo
    /// most similar to the others; each line gives a photo's similarity to it ("ref" for
    /// itself), size, resolution, modification time (UTC) and path, and marks a photo whose
    /// bytes are those of one above it ("identical to ..."). Names of one file (symbolic or
    /// hard links) are one photo, its other names listed below it, never a copy.
    ///
    /// Folders at or under the index's folders are brought up to date in the index first (as
    /// `clip index` does, incrementally, with the index's exclusions; the index's list of
    /// folders is not changed). Other folders, and those the index's exclusions leave out
    /// (@eaDir, a folder dropped with --forget), are embedded for this run only, in memory
    /// (what the index holds there is reused), and the index is not changed: `clip index
    /// FOLDER` first keeps their vectors for later runs. Compares every pair: fine for tens of thousands of photos. Exits with 1
    /// when there are no groups.
    #[command(after_help = "Examples:
  clip duplicates                          # every folder of the index, rescanned
  clip duplicates ~/Pictures/2024 --threshold 0.97
  clip duplicates ~/Downloads              # not indexed: embedded for this run only
  clip duplicates ~/Pictures --exclude Screenshots   # this run only
  clip duplicates --no-scan --json         # the index as it is, no model loaded")]
    Duplicates(DuplicatesArgs),
    /// Show or clear the cache of label embeddings (zero-shot classifiers).
    ///
    /// classify and eval keep the label embeddings of each model, label list and template set
    /// in $CLIP_CACHE_DIR (else $XDG_CACHE_HOME/clip, else ~/.cache/clip), so a second run does
    /// not run the text tower again. Label embeddings are kept as they are computed, so a run
    /// interrupted with Ctrl-C (the 1000 ImageNet classes with 80 templates take minutes) is
    /// continued by the next; such entries are listed as interrupted.
    Cache(CacheArgs),
}

#[derive(Debug, Args)]
#[command(mut_arg("model", |a| a.help(INDEX_MODEL_HELP)))]
pub struct IndexArgs {
    /// Folders to index (their image files, recursively). Default: the folders indexed before.
    #[arg(value_name = "FOLDER")]
    pub folders: Vec<PathBuf>,
    /// The index file.
    #[arg(long, value_name = "FILE", env = clip::env::CLIP_INDEX)]
    pub index: Option<PathBuf>,
    /// Print what the index holds instead of scanning.
    #[arg(long, conflicts_with_all = ["folders", "allow_mass_delete", "decode_threads", "exclude", "no_exclude", "no_default_excludes", "default_excludes"])]
    pub status: bool,
    /// Drop a folder from the index (its files and, when it is one, the folder from the list
    /// of folders rescanned), e.g. one deleted or moved for good. A folder (or file) inside
    /// an indexed folder is also added to the exclusions, so later scans leave it out;
    /// --no-exclude with the same folder brings it back (embedding its photos again: unlike
    /// --exclude, --forget drops their vectors). A path the index holds nothing under and
    /// that does not exist is refused. Needs no model.
    #[arg(long, value_name = "FOLDER", conflicts_with_all = ["folders", "status", "allow_mass_delete", "decode_threads", "exclude", "no_exclude", "no_default_excludes", "default_excludes"])]
    pub forget: Option<PathBuf>,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub excludes: ExcludeArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// How `clip index` and `clip duplicates` scan.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Let a scan drop however many files are gone, or its exclusions leave out (by default
    /// it stops before dropping more than half of the files under its folders, 10 or more).
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Threads that read and decode photos, in a pool of their own. Default: they share the
    /// compute threads with the model, which suits a model using every core; give a number
    /// when --threads leaves cores free (e.g. --threads 6 --decode-threads 2 on 8 cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub decode_threads: Option<u32>,
}

/// What `clip index` leaves out, kept with the index.
#[derive(Debug, Args)]
pub struct ExcludeArgs {
    /// Leave out folders and files that match GLOB (repeatable), in this scan and later ones
    /// (the index keeps it; what it covers is dropped from the index). A GLOB without '/' is
    /// matched against each folder and file name ('@eaDir', '*.thumb.jpg'); one with '/'
    /// against paths relative to the indexed folder ('2019/tmp', '**/cache'); an absolute
    /// path is taken literally, and a path that exists relative to the current folder (and
    /// not under the indexed folder) is made absolute. '*' stays within a name, '**' crosses
    /// folders; any case matches. A GLOB that leaves out nothing is kept, with a warning.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Take a pattern (or a folder left out by --forget, given as its path, relative or
    /// absolute) out of the index's exclusions (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub no_exclude: Vec<String>,
    /// Stop leaving out the default folders (NAS thumbnails and recycle bins, system and
    /// software folders; see clip index --help) in this index, now and in later scans.
    #[arg(long, conflicts_with = "default_excludes")]
    pub no_default_excludes: bool,
    /// Leave out the default folders again (after --no-default-excludes).
    #[arg(long)]
    pub default_excludes: bool,
}

#[derive(Debug, Args)]
#[command(mut_arg("model", |a| a.help(INDEX_MODEL_HELP)))]
pub struct DuplicatesArgs {
    /// Folders to look in. Default: every folder of the index.
    #[arg(value_name = "FOLDER")]
    pub folders: Vec<PathBuf>,
    /// How similar every two photos of a group must be (cosine of their embeddings, at most
    /// 1; identical pictures score 1).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    pub threshold: f32,
    /// Compare what the index holds as it is: no scan and no model (photos changed since the
    /// last `clip index` are compared as they were then). The folders must be in the index.
    #[arg(long, conflicts_with_all = ["allow_mass_delete", "decode_threads"])]
    pub no_scan: bool,
    /// Print one JSON object per group: {"min_similarity", "members": [{"path",
    /// "representative", "similarity", "bytes", "width", "height", "modified",
    /// "identical_to", "changed_since_indexed", "links"}]}.
    #[arg(long)]
    pub json: bool,
    /// The index file.
    #[arg(long, value_name = "FILE", env = clip::env::CLIP_INDEX)]
    pub index: Option<PathBuf>,
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Leave out of this run the photos in folders and files that match GLOB (repeatable),
    /// as `clip index --exclude` matches it, a GLOB with '/' relative to each folder
    /// compared. For this run only: the index and its exclusions are not changed.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("query").args(["text", "image"]).required(true).multiple(true)))]
#[command(mut_arg("model", |a| a.help(INDEX_MODEL_HELP)))]
pub struct SearchArgs {
    /// What to look for, in words. A text that starts with a -word goes after `--`, the
    /// options before it: clip search -k 3 -- "-people beach".
    #[arg(value_name = "TEXT")]
    pub text: Vec<String>,
    /// An example image (repeatable).
    #[arg(long, value_name = "PATH")]
    pub image: Vec<PathBuf>,
    /// Weights of the terms, texts first then images, comma-separated (negative to avoid).
    #[arg(
        long,
        value_name = "W,...",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub weights: Vec<f32>,
    /// How many results.
    #[arg(long, short = 'k', default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub top_k: u64,
    /// Leave out results scoring below this (a cosine similarity, e.g. 0.25).
    #[arg(long, value_name = "SCORE", allow_negative_numbers = true)]
    pub min_score: Option<f32>,
    /// Print only the paths, one a line (for piping).
    #[arg(long, conflicts_with = "json")]
    pub paths: bool,
    /// Print only the paths, each ended by a NUL byte instead of a newline (for `xargs -0`:
    /// safe with any file name).
    #[arg(long, short = '0', conflicts_with_all = ["json", "paths"])]
    pub null: bool,
    /// Print one JSON object per result.
    #[arg(long)]
    pub json: bool,
    /// The index file.
    #[arg(long, value_name = "FILE", env = clip::env::CLIP_INDEX)]
    pub index: Option<PathBuf>,
    /// Cut texts longer than the model's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct ListsArgs {
    /// A list to print, one entry a line (default: a table of all of them).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Print the list's prompt templates instead of its classes.
    #[arg(long, requires = "name")]
    pub templates: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Delete every cached classifier.
    #[arg(long)]
    pub clear: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Zero-shot accuracy on a dataset in ImageFolder layout (one folder of images per class).
    ///
    /// Prints top-1, top-5 and mean per-class recall (the mean over classes with images of
    /// the share of their images classified right), then a per-class table. Writes into --out:
    /// summary.json, zeroshot_confusion.csv (rows: true class, columns: predicted),
    /// zeroshot_confusion.png and .svg (the same as a heat map with the class names, axes and a
    /// colour scale: each row coloured by the share of its images, grey rows have none; the
    /// PNG names up to 96 classes and numbers more, in a small font that draws characters it
    /// lacks, such as CJK ideographs, as boxes; the SVG has every name in full, with counts on
    /// hover) and zeroshot_per_class.csv; with --linear-probe the same for the probe.
    ///
    /// Class folders get their labels from --mapping, else from --labels (matched to the folder
    /// names, or by position: folder i in name order takes label i), else from the folder names
    /// (underscores read as spaces). Unreadable images are reported, skipped and listed in the
    /// summary; they do not stop the run.
    #[command(after_help = "Examples:
  clip eval zeroshot --dataset ./my-dataset
  clip eval zeroshot --dataset imagenet/val --labels imagenet              # the 80 templates too
  clip eval zeroshot --dataset ./pets --mapping folders.txt --template \"a photo of a {}, a pet.\"
  clip eval zeroshot --dataset data/test --linear-probe --train data/train --json

Mapping files: one \"folder<TAB>label\" per line (or folder,label; or folder label, as in
ImageNet's LOC_synset_mapping.txt), or a JSON object {\"folder\": \"label\"}.")]
    Zeroshot(EvalZeroShotArgs),
    /// Image-text retrieval recall@k, both ways, on a caption file (CSV or TSV).
    ///
    /// Each row holds an image path (relative to the caption file's folder, or to
    /// --images-root) and a caption; an image may have several rows. A header row naming the
    /// columns picks them: the image column named image, file_name (Hugging Face's
    /// metadata.csv), filepath, path, filename, file, img, image_path, image_file, image_name,
    /// img_path, file_path or images, the caption column caption, text, title, sentence,
    /// sentences, captions, comment, description or label (any case). Without a header the
    /// first two columns are used; a first row that looks like a header but names other
    /// columns is an error. text->image recall@k: share of captions whose image is among
    /// the k images closest to the caption; image->text: share of images with one of their
    /// captions among the k closest captions (as CLIP_benchmark reports them).
    #[command(after_help = "Examples:
  clip eval retrieval --captions captions.csv
  clip eval retrieval --captions flickr30k_test.tsv --images-root flickr30k/images --json")]
    Retrieval(EvalRetrievalArgs),
}

#[derive(Debug, Args)]
pub struct EvalZeroShotArgs {
    /// The dataset: a folder with one subfolder of images per class (torchvision's
    /// ImageFolder layout; subfolders of a class are searched too).
    #[arg(long, value_name = "DIR")]
    pub dataset: PathBuf,
    /// The labels to classify among: comma-separated, a file with one per line (" #" starts a
    /// comment, \# is a # of the label), or a built-in class list (imagenet, cifar10, food101,
    /// …; `clip lists` shows them). Default: from --mapping or the folder names.
    #[arg(long, short, value_name = "LABELS")]
    pub labels: Option<String>,
    /// A file mapping class folder names to labels.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    #[command(flatten)]
    pub prompts: PromptArgs,
    /// Where to write summary.json and the confusion matrices and per-class tables.
    #[arg(long, value_name = "DIR", default_value = "clip-eval")]
    pub out: PathBuf,
    /// Also fit a logistic-regression classifier on the image embeddings of --train and report
    /// its accuracy on --dataset (the paper's linear-probe protocol).
    #[arg(long, requires = "train")]
    pub linear_probe: bool,
    /// The training split for --linear-probe, in the same layout, with class folders named as
    /// in --dataset.
    #[arg(long, value_name = "DIR", requires = "linear_probe")]
    pub train: Option<PathBuf>,
    /// Inverse regularization strength of the linear probe, as scikit-learn's C (OpenAI's
    /// example uses 0.316), or auto: chosen as in the paper, by the best accuracy on a
    /// validation split held out from --train (every fifth image of a class), over the
    /// decades from 1e-6 to 1e6 and quarter-decades around the best.
    #[arg(long, value_name = "C|auto", default_value = "auto", value_parser = parse_probe_c)]
    pub probe_c: ProbeC,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Cut labels longer than the model's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct EvalRetrievalArgs {
    /// The caption file: CSV, or TSV when it ends in .tsv.
    #[arg(long, value_name = "FILE")]
    pub captions: PathBuf,
    /// The folder relative image paths start from (default: the caption file's folder).
    #[arg(long, value_name = "DIR")]
    pub images_root: Option<PathBuf>,
    /// The k of recall@k, comma-separated.
    #[arg(long, value_name = "K,...", default_value = "1,5,10", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    pub recall_at: Vec<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Cut captions longer than the model's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// How labels become prompts, and whether their embeddings come from the cache.
#[derive(Debug, Args)]
pub struct PromptArgs {
    /// Prompt templates to ensemble, each with {} for the label: a built-in set (imagenet: the
    /// paper's 80; cifar10, food101, … as `clip lists` shows), a file with one template per
    /// line, or none (the label as written). A class is the mean of its prompts' normalized
    /// embeddings. Default: the set of a built-in --labels list, else the label as written.
    #[arg(long, value_name = "NAME|FILE", conflicts_with = "template")]
    pub templates: Option<String>,
    /// One prompt template, e.g. "a photo of a {}.".
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// Compute the label embeddings afresh instead of reading them from the cache
    /// ($CLIP_CACHE_DIR, else ~/.cache/clip; kept per model, labels and templates). The cache
    /// keeps them as they are computed: Ctrl-C stops a run after the classes in progress, says
    /// how many are kept, and the next run continues from there.
    #[arg(long)]
    pub no_cache: bool,
}

/// The help of --model for the commands that use an index's model ([`ModelArgs`] says
/// ViT-B/32 for the others).
const INDEX_MODEL_HELP: &str = "Model: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px, a Hugging \
     Face repo id (org/name[@revision]) or a checkpoint directory. Default: the model the index \
     was built with, else ViT-B/32";

/// Options shared by the commands that run a model.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px, a Hugging Face repo id
    /// (org/name[@revision]) or a checkpoint directory. Default: ViT-B/32.
    #[arg(long, short, env = clip::env::CLIP_MODEL)]
    pub model: Option<String>,
    /// Where to run the model: cpu, cuda[:N] or metal[:N] (GPUs need a build with the
    /// `cuda` or `metal` feature).
    #[arg(long, env = clip::env::CLIP_DEVICE, default_value = "cpu", value_parser = parse_device)]
    pub device: clip::Device,
    /// Images or texts per model call.
    #[arg(long, default_value_t = clip::DEFAULT_BATCH_SIZE as u32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Never download; use only the Hugging Face cache or a local directory
    /// (same as HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Accept images up to MP megapixels whatever their width and height (by default an
    /// image may be at most 16384 pixels a side and 100 megapixels), e.g. 200 for long
    /// panoramas. Sizes are still checked before decoding; memory grows with the image.
    #[arg(long, value_name = "MP", value_parser = parse_megapixels)]
    pub max_image_megapixels: Option<f64>,
    /// Do not draw progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// A pixel budget: a positive number of megapixels, at most 10000.
fn parse_megapixels(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(mp) if mp > 0.0 && mp <= clip::MAX_MEGAPIXELS => Ok(mp),
        _ => Err(format!(
            "{s:?} is not a number of megapixels between 0 and {}",
            clip::MAX_MEGAPIXELS
        )),
    }
}

/// How the model computes.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Number format of the matrix products on the CPU: f32 (the reference's numbers) or bf16
    /// (about 1.8x as fast on CPUs with AVX512-BF16, half the memory; embeddings at cosine
    /// 0.9999 to f32 on our test checkpoints, see docs/speed.md).
    #[arg(long, env = clip::env::CLIP_PRECISION, default_value = "f32", value_parser = parse_precision)]
    pub precision: clip::Precision,
    /// Compute threads (default: all cores; RAYON_NUM_THREADS is honoured too).
    #[arg(long, env = clip::env::CLIP_THREADS, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Run the plain candle port instead of the CPU fast path (slower; for comparisons).
    #[arg(long)]
    pub reference: bool,
}

/// The linear probe's C: given, or chosen on a validation split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeC {
    /// Chosen by a sweep.
    Auto,
    /// This value.
    Fixed(f64),
}

fn parse_probe_c(s: &str) -> Result<ProbeC, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(ProbeC::Auto);
    }
    match s.parse::<f64>() {
        Ok(c) if c > 0.0 && c.is_finite() => Ok(ProbeC::Fixed(c)),
        _ => Err(format!("{s:?} is not a positive number or auto")),
    }
}

fn parse_precision(s: &str) -> Result<clip::Precision, String> {
    s.parse()
}

fn parse_device(s: &str) -> Result<clip::Device, String> {
    s.parse()
        .map_err(|e: clip::error::ModelError| e.to_string())
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Architecture to build with random weights: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px.
    #[arg(long, default_value = clip::DEFAULT_MODEL, conflicts_with = "model")]
    pub arch: String,
    /// Benchmark a real checkpoint instead (a directory, repo id or known name; see classify).
    #[arg(long, short)]
    pub model: Option<String>,
    /// Batch sizes of the model rows, comma-separated.
    #[arg(long, default_value = "1,8,32", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_sizes: Vec<u32>,
    /// Timed repeats of each row (after one warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeats: u32,
    /// Which rows to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "image,text,preprocess,tokenize,search,index"
    )]
    pub only: Vec<BenchTask>,
    /// Numbers of vectors of the search rows, comma-separated.
    #[arg(long, default_value = "100000,1000000", value_delimiter = ',',
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub search_sizes: Vec<u64>,
    /// The folder of photos the index row indexes (default: 64 copies of the built-in photo,
    /// each made distinct, in a temporary folder).
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
    /// Decoding threads of the index row, in a pool of their own (default: shared with the
    /// model's compute threads, as `clip index` does).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub decode_threads: Option<u32>,
    /// The photo read, decoded and preprocessed by the preprocess row (default: a 528 KB,
    /// 1000x872 JPEG built into the binary, decoded from memory).
    #[arg(long, value_name = "PATH")]
    pub photo: Option<PathBuf>,
    /// Where to run the model: cpu, cuda[:N] or metal[:N].
    #[arg(long, env = clip::env::CLIP_DEVICE, default_value = "cpu", value_parser = parse_device)]
    pub device: clip::Device,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Never download (with --model).
    #[arg(long)]
    pub offline: bool,
}

/// A group of benchmark rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchTask {
    /// Image tower at each batch size.
    Image,
    /// Text tower at each batch size, with 77 tokens and with an 8-token prompt.
    Text,
    /// Decode + resize + crop + normalize of --photo, one thread.
    Preprocess,
    /// Tokenizer on 1000 short captions, one thread.
    Tokenize,
    /// Exact top-10 search latency over --search-sizes random 512-d vectors.
    Search,
    /// Indexing throughput on a folder of photos (--index-dir), against the model alone on the
    /// same photos.
    Index,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, WebP, GIF, BMP, TIFF; the format is read from the content), or
    /// folders, whose image files are taken recursively in name order.
    #[arg(required = true, value_name = "IMAGE|FOLDER")]
    pub images: Vec<PathBuf>,
    /// Labels: comma-separated ("cat,dog,car"), a text file with one label per line (a # at
    /// the start of a line or after a space starts a comment; write \# for a # that belongs to
    /// the label), or a built-in class list: imagenet, cifar10, cifar100, food101, … (the CLIP
    /// authors' class names; `clip lists` shows them all).
    #[arg(long, short, value_name = "LABELS")]
    pub labels: String,
    #[command(flatten)]
    pub prompts: PromptArgs,
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
    #[arg(long, default_value_t = clip::DEFAULT_CONTEXT_LENGTH as u32, value_parser = clap::value_parser!(u32).range(2..=65536))]
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
