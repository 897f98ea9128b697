#!/usr/bin/env python3
"""Benchmark the Python peers of `clip` on this CPU and print them beside our own numbers.

Usage (from anywhere; paths default to this repository):

    python3 bench/peers.py --arch ViT-B/32 --threads 2
    python3 bench/peers.py --arch ViT-L/14 --threads 16 --batch-sizes 1,8 --with-bf16
    python3 bench/peers.py --arch tiny --repeats 2 --batch-sizes 1,2 --clip-json ours.json

What it measures, with the same architecture (random weights, fp32, `torch.manual_seed(0)`),
the same thread count, inputs of the same shapes and the same timing rule as `clip bench`
(1 warm-up run, then --repeats timed runs, reported as median / min / max items per second; a
model run makes ceil(32 / batch) calls, a preprocess run handles 20 images):

- image embeddings: `transformers.CLIPModel.get_image_features` in PyTorch, and the same graph
  exported with `torch.onnx.export` and run by ONNX Runtime (CPUExecutionProvider,
  intra_op_num_threads = --threads, inter_op_num_threads = 1, ORT_ENABLE_ALL);
- text embeddings, 77 tokens (the padded context) and 8 tokens (a short prompt with
  padding="longest"), in both engines;
- image preprocessing on one thread: decode --photo with PIL and run transformers'
  CLIPImageProcessor (OpenAI's settings: shortest edge 224 bicubic, centre crop, rescale,
  normalise; 336 for ViT-L/14@336px), both the PIL ("slow") backend and the torchvision
  ("fast") backend. In transformers 5 the plain `CLIPImageProcessor` is the torchvision one,
  which is what `AutoImageProcessor` gives a user by default;
- tokenisation: `open_clip.tokenize` (OpenAI's SimpleTokenizer) of the 1000 short captions
  `clip bench` uses ("a photo of a dog number 0.", ...), one call per run. Its word-level BPE
  cache is warm after the warm-up call, as it is in any long-running Python process.

Our numbers come from `clip bench --json` with the same options (built with
`cargo build --release --locked -p clip-cli` if target/release/clip is missing), or from a
file saved earlier (--clip-json). The table goes to stdout (Markdown), progress to stderr,
and --json FILE keeps every raw figure.

The Python side runs in its own virtual environment, by default ~/.cache/clip-bench/venv
(--venv PATH). On first use the script creates it with the Python that runs the script and
pip-installs the versions pinned in PINS below (checked on PyPI for CPython 3.11): torch and
torchvision, transformers, numpy, pillow, onnxruntime, onnx and onnxscript (the torch ONNX
exporter), open_clip_torch with its tokenizer's needs (ftfy, regex) and its imports (timm,
huggingface_hub, safetensors, tqdm). PyPI's Linux torch wheel is the CUDA build, which cannot
even be imported without the nvidia-* wheels (several GB), so on Linux torch and torchvision
come from PyTorch's CPU wheel index (https://download.pytorch.org/whl/cpu, a few hundred MB),
and only if that index cannot be reached from PyPI with all their dependencies
(--torch-source). Later runs reuse the environment and install nothing when the versions
match. The script then re-executes itself with the environment's Python.

Time: a few minutes for ViT-B/32 at the default batch sizes (1, 8, 32) on a few cores, most
of it in the batch-32 rows and the two ONNX exports; ViT-L/14 takes several times longer.
Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path.home() / ".cache" / "clip-bench" / "venv"
DEFAULT_PHOTO = REPO / "fixtures" / "photos" / "hubble_deep_field.jpg"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REEXEC_ENV = "CLIP_BENCH_PEERS_IN_VENV"

# Exact versions installed into the virtual environment (all on PyPI for CPython 3.11).
PINS = {
    # torch and torchvision: --no-deps (see the docstring).
    "torch": "2.15.0",
    "torchvision": "0.29.2",
    # torch's pure-Python dependencies.
    "filelock": "4.3.1",
    "typing-extensions": "4.16.0",
    "setuptools": "84.2.1",
    "sympy": "1.14.0",
    "networkx": "3.6.1",
    "jinja2": "3.1.6",
    "fsspec": "2026.9.0",
    # Installed with their dependencies.
    "numpy": "2.4.6",
    "transformers": "5.23.0",
    "pillow": "13.0.0",
    "onnxruntime": "1.32.0",
    "onnx": "1.23.2",
    "onnxscript": "0.7.2",
    "ftfy": "6.3.1",
    "regex": "2026.11.19",
    "huggingface-hub": "2.4.0",
    "safetensors": "0.8.0",
    "tqdm": "4.70.1",
    # --no-deps: they would otherwise pull torch and torchvision from PyPI.
    "open-clip-torch": "3.3.0",
    "timm": "1.0.31",
}
TORCH_GROUP = ["torch", "torchvision"]
TORCH_DEPS = ["filelock", "typing-extensions", "setuptools", "sympy", "networkx", "jinja2", "fsspec"]
WITH_DEPS = ["numpy", "transformers", "pillow", "onnxruntime", "onnx", "onnxscript", "ftfy", "regex",
             "huggingface-hub", "safetensors", "tqdm"]
NO_DEPS = ["open-clip-torch", "timm"]

# OpenAI's CLIP sizes (hidden_act quick_gelu), plus a tiny one for trying the script out.
ARCHS = {
    "ViT-B/32": dict(v_hidden=768, v_layers=12, v_heads=12, v_mlp=3072, patch=32, image=224,
                     t_hidden=512, t_layers=12, t_heads=8, t_mlp=2048, proj=512),
    "ViT-B/16": dict(v_hidden=768, v_layers=12, v_heads=12, v_mlp=3072, patch=16, image=224,
                     t_hidden=512, t_layers=12, t_heads=8, t_mlp=2048, proj=512),
    "ViT-L/14": dict(v_hidden=1024, v_layers=24, v_heads=16, v_mlp=4096, patch=14, image=224,
                     t_hidden=768, t_layers=12, t_heads=12, t_mlp=3072, proj=768),
    "ViT-L/14@336px": dict(v_hidden=1024, v_layers=24, v_heads=16, v_mlp=4096, patch=14, image=336,
                           t_hidden=768, t_layers=12, t_heads=12, t_mlp=3072, proj=768),
    "tiny": dict(v_hidden=64, v_layers=2, v_heads=2, v_mlp=128, patch=32, image=224,
                 t_hidden=32, t_layers=2, t_heads=2, t_mlp=64, proj=16),
}

BOS, EOS, CONTEXT = 49406, 49407, 77
SHORT_TOKENS = 8
N_CAPTIONS = 1000
# The same work per timed run as `clip bench` (crates/clip-cli/src/commands/bench.rs): each model
# run makes ceil(MIN_ITEMS / batch) calls, each preprocess run handles PREPROCESS_PER_RUN images.
MIN_ITEMS = 32
PREPROCESS_PER_RUN = 20

# The real stdout, kept for the table; everything else printed to fd 1 goes to stderr.
OUT = sys.stdout


def log(*args) -> None:
    print("[peers]", *args, file=sys.stderr, flush=True)


def die(msg: str) -> None:
    log("error:", msg)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="ViT-B/32", choices=list(ARCHS), help="architecture (default ViT-B/32)")
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="threads for the model rows, all engines (default: the CPUs this process may use)")
    p.add_argument("--batch-sizes", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per row, after 1 warm-up (default 5)")
    p.add_argument("--photo", type=Path, default=DEFAULT_PHOTO,
                   help=f"image for the preprocess row (default {DEFAULT_PHOTO.relative_to(REPO)})")
    p.add_argument("--precision", default="f32", help="our precision, passed to `clip bench` (default f32)")
    p.add_argument("--with-bf16", action="store_true", help="also run ours with --precision bf16 (extra column)")
    p.add_argument("--clip-bin", type=Path, default=None,
                   help="our binary (default target/release/clip, built if missing)")
    p.add_argument("--no-build", action="store_true", help="never run cargo build")
    p.add_argument("--clip-json", type=Path, default=None, help="read our numbers from this saved `clip bench --json`")
    p.add_argument("--clip-json-bf16", type=Path, default=None, help="same, for the bf16 column (implies --with-bf16)")
    p.add_argument("--no-ours", action="store_true", help="benchmark the Python peers only")
    p.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    p.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo",
                   help="torch.onnx.export flavour (default dynamo; falls back to torchscript if it fails)")
    p.add_argument("--json", type=Path, default=None, help="also write every raw figure to this file")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"virtual environment (default {DEFAULT_VENV})")
    p.add_argument("--torch-source", choices=["auto", "cpu-index", "pypi"], default="auto",
                   help="where torch comes from: PyTorch's CPU index, PyPI (on Linux with the CUDA "
                        "packages), or auto = the CPU index on Linux falling back to PyPI (default)")
    a = p.parse_args()
    try:
        a.batch_sizes = [int(b) for b in a.batch_sizes.split(",") if b.strip()]
    except ValueError:
        p.error("--batch-sizes: comma-separated integers expected")
    if not a.batch_sizes or min(a.batch_sizes) < 1:
        p.error("--batch-sizes: positive integers expected")
    if a.repeats < 1 or a.threads < 1:
        p.error("--repeats and --threads must be at least 1")
    if a.clip_json_bf16 is not None:
        a.with_bf16 = True
    return a


# --------------------------------------------------------------------------------------------
# Virtual environment
# --------------------------------------------------------------------------------------------

def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed_versions(py: Path) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in json.loads(sys.argv[1]):\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    r = subprocess.run([str(py), "-c", code, json.dumps(list(PINS))], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def pip(py: Path, *args: str) -> bool:
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", *args]
    log("$", " ".join(cmd))
    return subprocess.run(cmd, stdout=sys.stderr).returncode == 0


def ensure_venv(args: argparse.Namespace) -> Path:
    venv = args.venv.expanduser()
    py = venv_python(venv)
    if not py.exists():
        if sys.version_info[:2] != (3, 11):
            log(f"warning: the pins were checked for CPython 3.11; this is {platform.python_version()}")
        log(f"creating virtual environment {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=sys.stderr)
    have = installed_versions(py)

    def missing(names):
        # A local version label (2.15.0+cpu) still matches the pin.
        return [n for n in names if (have.get(n) or "").split("+")[0] != PINS[n]]

    todo = missing(TORCH_GROUP)
    if todo:
        spec = [f"{n}=={PINS[n]}" for n in TORCH_GROUP]
        source = args.torch_source
        if source == "auto":
            source = "cpu-index" if sys.platform.startswith("linux") else "pypi"
        ok = False
        if source == "cpu-index":
            ok = pip(py, "--no-deps", "--index-url", TORCH_CPU_INDEX, "--retries", "2", "--timeout", "30", *spec)
            if not ok and args.torch_source == "auto":
                log("PyTorch's CPU index failed; installing torch from PyPI instead, "
                    "with its CUDA dependencies (several GB)")
        if not ok:
            if sys.platform.startswith("linux"):
                ok = pip(py, *spec)  # the CUDA build needs its nvidia-* wheels just to import
            else:
                ok = pip(py, "--no-deps", *spec)
        if not ok:
            die("could not install torch")
    for group, extra in ((TORCH_DEPS, []), (WITH_DEPS, []), (NO_DEPS, ["--no-deps"])):
        todo = missing(group)
        if todo and not pip(py, *extra, *[f"{n}=={PINS[n]}" for n in todo]):
            die("could not install " + " ".join(todo))
    return py


def in_venv(venv: Path) -> bool:
    try:
        return Path(sys.prefix).resolve() == venv.expanduser().resolve()
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def measure(fn, items: int, repeats: int, calls: int = 1) -> dict:
    """`calls` calls of `fn` (each processing `items` items) once to warm up, then `repeats` times timed."""
    def work():
        for _ in range(calls):
            fn()

    work()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        rates.append(items * calls / (time.perf_counter() - t0))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "runs": rates}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# --------------------------------------------------------------------------------------------
# Ours
# --------------------------------------------------------------------------------------------

def our_binary(args: argparse.Namespace) -> Path:
    exe = "clip.exe" if os.name == "nt" else "clip"
    binary = args.clip_bin or REPO / "target" / "release" / exe
    if binary.exists():
        return binary
    if args.clip_bin is not None or args.no_build:
        die(f"{binary} not found" + ("" if args.clip_bin else " (build it, or drop --no-build)"))
    if shutil.which("cargo") is None:
        die(f"{binary} not found and cargo is not on PATH")
    cmd = ["cargo", "build", "--release", "--locked", "-p", "clip-cli"]
    log("$", " ".join(cmd))
    subprocess.run(cmd, cwd=REPO, check=True, stdout=sys.stderr)
    if not binary.exists():
        die(f"cargo build did not produce {binary}")
    return binary


def run_ours(args: argparse.Namespace, precision: str) -> dict:
    binary = our_binary(args)
    cmd = [str(binary), "bench", "--json", "--arch", args.arch,
           "--batch-sizes", ",".join(map(str, args.batch_sizes)), "--repeats", str(args.repeats),
           "--threads", str(args.threads), "--photo", str(args.photo), "--precision", precision]
    log("$", " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr passes through
    if r.returncode != 0:
        die(f"`clip bench` exited with status {r.returncode}")
    return parse_ours(r.stdout, "`clip bench` output")


def parse_ours(text: str, what: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Tolerate stray lines around the object.
        lines = [ln for ln in text.splitlines() if ln.lstrip().startswith("{")]
        try:
            data = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            die(f"{what}: no JSON object found")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        die(f"{what}: expected an object with a \"results\" list")
    return data


def load_ours(args: argparse.Namespace, path: Path | None, precision: str) -> dict | None:
    if args.no_ours:
        return None
    if path is not None:
        data = parse_ours(path.read_text(), str(path))
    else:
        data = run_ours(args, precision)
    for key, want in (("arch", args.arch), ("threads", args.threads), ("repeats", args.repeats),
                      ("precision", precision)):
        if key in data and data[key] != want:
            log(f"warning: our {key} is {data[key]!r}, the peers use {want!r}")
    if data.get("cpu") and data["cpu"] != cpu_model():
        log(f"warning: our numbers come from {data['cpu']!r}, this machine is {cpu_model()!r}")
    return data


# --------------------------------------------------------------------------------------------
# The Python peers
# --------------------------------------------------------------------------------------------

def build_model(arch: str):
    import torch
    from transformers import CLIPConfig, CLIPModel

    a = ARCHS[arch]
    config = CLIPConfig(
        text_config=dict(hidden_size=a["t_hidden"], num_hidden_layers=a["t_layers"],
                         num_attention_heads=a["t_heads"], intermediate_size=a["t_mlp"],
                         max_position_embeddings=CONTEXT, vocab_size=49408,
                         bos_token_id=BOS, eos_token_id=EOS, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=a["v_hidden"], num_hidden_layers=a["v_layers"],
                           num_attention_heads=a["v_heads"], intermediate_size=a["v_mlp"],
                           patch_size=a["patch"], image_size=a["image"], num_channels=3,
                           hidden_act="quick_gelu"),
        projection_dim=a["proj"],
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval().float()
    return model, a["image"]


def features(out):
    """get_*_features return a tensor in transformers 4 and a ModelOutput in transformers 5."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    raise TypeError(f"unexpected output type {type(out).__name__}")


def wrappers(model):
    import torch

    class Vision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return features(self.m.get_image_features(pixel_values=pixel_values))

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            return features(self.m.get_text_features(input_ids=input_ids))

    return Vision(model).eval(), Text(model).eval()


def make_inputs(image: int, batch_sizes: list[int]):
    """Inputs shaped like those of `clip bench`: pixels uniform in [-2, 2); token ids
    start-of-text, random ids in [0, 49405], end-of-text."""
    import torch

    g = torch.Generator().manual_seed(1)
    pixels, long_ids, short_ids = {}, {}, {}
    for b in batch_sizes:
        pixels[b] = torch.rand(b, 3, image, image, generator=g) * 4 - 2
        ids = torch.randint(0, BOS - 1, (b, CONTEXT), generator=g)  # [0, 49405]
        ids[:, 0] = BOS
        ids[:, -1] = EOS  # the pooled position (first end-of-text) is 76
        long_ids[b] = ids
        ids = torch.randint(0, BOS - 1, (b, SHORT_TOKENS), generator=g)
        ids[:, 0] = BOS
        ids[:, -1] = EOS
        short_ids[b] = ids
    return pixels, long_ids, short_ids


def export_onnx(vision, text, image: int, workdir: Path, exporter: str) -> tuple[Path, Path, str]:
    import torch

    v_path, t_path = workdir / "vision.onnx", workdir / "text.onnx"
    pixels = torch.randn(2, 3, image, image)
    ids = torch.randint(0, BOS - 1, (2, CONTEXT))
    ids[:, -1] = EOS

    def dynamo():
        from torch.export import Dim

        batch, seq = Dim("batch"), Dim("seq", min=2, max=CONTEXT)
        torch.onnx.export(vision, (pixels,), str(v_path), dynamo=True, opset_version=18, verbose=False,
                          input_names=["pixel_values"], output_names=["image_embeds"],
                          dynamic_shapes={"pixel_values": {0: batch}})
        torch.onnx.export(text, (ids,), str(t_path), dynamo=True, opset_version=18, verbose=False,
                          input_names=["input_ids"], output_names=["text_embeds"],
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}})

    def torchscript():
        torch.onnx.export(vision, (pixels,), str(v_path), dynamo=False, opset_version=17,
                          input_names=["pixel_values"], output_names=["image_embeds"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})
        torch.onnx.export(text, (ids,), str(t_path), dynamo=False, opset_version=17,
                          input_names=["input_ids"], output_names=["text_embeds"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "text_embeds": {0: "batch"}})

    order = [("dynamo", dynamo), ("torchscript", torchscript)]
    if exporter == "torchscript":
        order.reverse()
    for i, (name, fn) in enumerate(order):
        log(f"exporting to ONNX with the {name} exporter")
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                fn()
        except Exception as e:  # noqa: BLE001 - any exporter failure means: try the other one
            if i == len(order) - 1:
                raise
            log(f"the {name} exporter failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                f"trying the {order[1][0]} exporter")
            continue
        log(f"exported in {time.perf_counter() - t0:.1f} s")
        return v_path, t_path, name
    raise AssertionError("unreachable")


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def check_close(name: str, got, want) -> float:
    import numpy as np

    err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))
    level = "warning: " if err > 1e-3 else ""
    log(f"{level}{name}: ONNX Runtime vs PyTorch max relative difference {err:.1e}")
    return err


def captions() -> list[str]:
    """The captions `clip bench` tokenizes."""
    animals = ["dog", "cat", "horse", "rocket", "cup of coffee", "galaxy", "coin", "camera"]
    return [f"a photo of a {animals[i % len(animals)]} number {i}." for i in range(N_CAPTIONS)]


def calls(batch: int) -> int:
    return -(-MIN_ITEMS // batch)


def run_peers(args: argparse.Namespace) -> tuple[list[dict], dict]:
    import numpy as np
    import torch
    import transformers
    from PIL import Image

    torch.set_num_threads(args.threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)

    meta: dict = {}
    rows: list[dict] = []

    def add(task, batch, tokens, impl, unit, stats):
        rows.append(dict(task=task, batch=batch, tokens=tokens, impl=impl, unit=unit, **stats))
        log(f"{task:10} batch {batch:4} tokens {str(tokens):4} {impl:12} "
            f"median {stats['median']:12.2f} {unit} (min {stats['min']:.2f}, max {stats['max']:.2f})")

    log(f"building a random-weight {args.arch} CLIPModel")
    model, image = build_model(args.arch)
    meta["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
    vision, text = wrappers(model)
    pixels, long_ids, short_ids = make_inputs(image, args.batch_sizes)

    text_inputs = [(CONTEXT, long_ids), (SHORT_TOKENS, short_ids)]

    # PyTorch: every row, before ONNX Runtime (so that the two thread pools never overlap).
    with torch.inference_mode():
        for b in args.batch_sizes:
            add("image", b, None, "pytorch", "images/s",
                measure(lambda: vision(pixels[b]), b, args.repeats, calls(b)))
        for tokens, ids in text_inputs:
            for b in args.batch_sizes:
                add("text", b, tokens, "pytorch", "texts/s",
                    measure(lambda: text(ids[b]), b, args.repeats, calls(b)))

    # ONNX Runtime.
    if not args.no_onnx:
        import onnxruntime as ort

        meta["onnxruntime"] = ort.__version__
        with tempfile.TemporaryDirectory(prefix="clip-bench-onnx-") as tmp:
            v_path, t_path, exporter = export_onnx(vision, text, image, Path(tmp), args.exporter)
            meta["onnx_exporter"] = exporter
            with torch.inference_mode():
                want_v = vision(pixels[args.batch_sizes[0]]).numpy()
                want_t = {tok: text(ids[args.batch_sizes[0]]).numpy() for tok, ids in text_inputs}

            sess = ort_session(v_path, args.threads)
            feeds = {b: {"pixel_values": pixels[b].numpy()} for b in args.batch_sizes}
            meta["max_rel_diff_image"] = check_close("image", sess.run(None, feeds[args.batch_sizes[0]])[0], want_v)
            for b in args.batch_sizes:
                add("image", b, None, "onnxruntime", "images/s",
                    measure(lambda: sess.run(None, feeds[b]), b, args.repeats, calls(b)))
            del sess

            sess = ort_session(t_path, args.threads)
            for tokens, ids in text_inputs:
                feeds = {b: {"input_ids": ids[b].numpy().astype(np.int64)} for b in args.batch_sizes}
                meta[f"max_rel_diff_text_{tokens}"] = check_close(
                    f"text {tokens} tokens", sess.run(None, feeds[args.batch_sizes[0]])[0], want_t[tokens])
                for b in args.batch_sizes:
                    add("text", b, tokens, "onnxruntime", "texts/s",
                        measure(lambda: sess.run(None, feeds[b]), b, args.repeats, calls(b)))
            del sess
    del model, vision, text

    # Preprocessing, one thread, decoding the file every time. OpenAI's preprocessor settings
    # (the defaults), at the model's resolution (336 for ViT-L/14@336px).
    torch.set_num_threads(1)
    sizes = {} if image == 224 else dict(size={"shortest_edge": image},
                                         crop_size={"height": image, "width": image})
    processors = []
    if hasattr(transformers, "CLIPImageProcessorPil"):  # transformers 5: the plain class is torchvision's
        processors.append(("hf-slow", transformers.CLIPImageProcessorPil(**sizes)))
        processors.append(("hf-fast", transformers.CLIPImageProcessor(**sizes)))
    else:  # transformers 4
        processors.append(("hf-slow", transformers.CLIPImageProcessor(**sizes)))
        fast = getattr(transformers, "CLIPImageProcessorFast", None)
        if fast is not None:
            with contextlib.suppress(Exception):
                processors.append(("hf-fast", fast(**sizes)))
    photo = str(args.photo)
    for impl, proc in processors:
        def preprocess(proc=proc):
            with Image.open(photo) as im:
                rgb = im.convert("RGB")
            out = proc(images=rgb, return_tensors="pt")["pixel_values"]
            assert tuple(out.shape) == (1, 3, image, image), out.shape
        try:
            add("preprocess", 1, None, impl, "images/s", measure(preprocess, 1, args.repeats, PREPROCESS_PER_RUN))
        except Exception as e:  # noqa: BLE001 - e.g. the fast processor without torchvision
            log(f"skipping the {impl} preprocessor: {type(e).__name__}: {e}")

    # Tokenisation: 1000 captions per call (open_clip's per-word BPE cache is warm after the warm-up).
    import open_clip

    texts = captions()
    tokens = open_clip.tokenize(texts)
    assert tuple(tokens.shape) == (N_CAPTIONS, CONTEXT), tokens.shape
    add("tokenize", N_CAPTIONS, None, "open_clip", "texts/s",
        measure(lambda: open_clip.tokenize(texts), N_CAPTIONS, args.repeats))
    torch.set_num_threads(args.threads)

    meta.update(torch=torch.__version__, transformers=transformers.__version__,
                open_clip=getattr(open_clip, "__version__", None), numpy=np.__version__,
                pillow=Image.__version__)
    return rows, meta


# --------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------

def fmt_rate(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ours(r: dict | None) -> str:
    if r is None:
        return "—"
    return f"{fmt_rate(r.get('median'))} ({fmt_rate(r.get('min'))}–{fmt_rate(r.get('max'))})"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


def find_ours(data: dict | None, task: str, batch: int, tokens) -> dict | None:
    if data is None:
        return None
    for r in data["results"]:
        if r.get("task") != task:
            continue
        if task in ("preprocess", "tokenize"):  # one row each; the batch is informational
            return r
        if r.get("batch") == batch and r.get("tokens") == tokens:
            return r
    return None


def row_name(task: str, batch: int, tokens, impl: str | None = None) -> str:
    if task == "image":
        return f"images/s, batch {batch}"
    if task == "text":
        return f"texts/s, {tokens} tokens, batch {batch}"
    if task == "preprocess":
        label = {"hf-slow": "HF slow, PIL", "hf-fast": "HF fast, torchvision"}.get(impl, impl)
        return f"preprocess images/s (1 thread){', ' + label if label else ''}"
    if task == "tokenize":
        return f"tokenizer texts/s{' (open_clip)' if impl else ''}"
    return f"{task}, batch {batch}" + (f", {tokens} tokens" if tokens else "")


def table(args, rows: list[dict], ours: dict | None, ours_bf16: dict | None) -> str:
    peer = {(r["task"], r["batch"], r["tokens"], r["impl"]): r for r in rows}
    keys = []  # (task, batch, tokens, python impl, ORT impl)
    for b in args.batch_sizes:
        keys.append(("image", b, None, "pytorch", "onnxruntime"))
    for tokens in (CONTEXT, SHORT_TOKENS):
        for b in args.batch_sizes:
            keys.append(("text", b, tokens, "pytorch", "onnxruntime"))
    for impl in ("hf-slow", "hf-fast"):
        if any(r["task"] == "preprocess" and r["impl"] == impl for r in rows):
            keys.append(("preprocess", 1, None, impl, None))
    keys.append(("tokenize", N_CAPTIONS, None, "open_clip", None))
    # Rows only we have.
    seen = {(t, b, tok) for t, b, tok, *_ in keys}
    for r in (ours or {}).get("results", []):
        k = (r.get("task"), r.get("batch"), r.get("tokens"))
        if k[0] not in ("preprocess", "tokenize") and k not in seen:
            keys.append((*k, None, None))
            seen.add(k)

    bf16 = ours_bf16 is not None
    ours_prec = (ours or {}).get("precision", args.precision)
    head = ["", "PyTorch", "ONNX Runtime", f"ours {ours_prec} (min–max)", "ours/PyTorch", "ours/ORT"]
    if bf16:
        head += ["ours bf16 (min–max)", "bf16/PyTorch", "bf16/ORT"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for task, batch, tokens, py_impl, ort_impl in keys:
        py = peer.get((task, batch, tokens, py_impl)) if py_impl else None
        ort = peer.get((task, batch, tokens, ort_impl)) if ort_impl else None
        py_m = py["median"] if py else None
        ort_m = ort["median"] if ort else None
        o = find_ours(ours, task, batch, tokens)
        o_m = o.get("median") if o else None
        cells = [row_name(task, batch, tokens, py_impl if task == "preprocess" else None),
                 fmt_rate(py_m), fmt_rate(ort_m), fmt_ours(o), ratio(o_m, py_m), ratio(o_m, ort_m)]
        if bf16:
            ob = find_ours(ours_bf16, task, batch, tokens)
            ob_m = ob.get("median") if ob else None
            cells += [fmt_ours(ob), ratio(ob_m, py_m), ratio(ob_m, ort_m)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def header(args, meta: dict, ours: dict | None) -> str:
    parts = [
        f"**{args.arch}**, random weights, fp32 peers",
        f"CPU: {meta['cpu']}",
        f"{args.threads} thread{'s' if args.threads != 1 else ''} (preprocess and tokenizer: 1)",
        f"median of {args.repeats} runs after 1 warm-up",
        f"torch {meta.get('torch')}, transformers {meta.get('transformers')}, "
        f"onnxruntime {meta.get('onnxruntime', 'not run')}"
        + (f" ({meta['onnx_exporter']} export)" if meta.get("onnx_exporter") else "")
        + f", open_clip {meta.get('open_clip')}, pillow {meta.get('pillow')}",
        f"{meta['date']}",
    ]
    if ours and ours.get("cpu") and ours["cpu"] != meta["cpu"]:
        parts.append(f"ours measured on {ours['cpu']}")
    return "; ".join(parts) + "."


# --------------------------------------------------------------------------------------------

def main() -> None:
    global OUT
    args = parse_args()

    if not args.photo.is_file():
        die(f"photo not found: {args.photo} (pass --photo)")
    args.photo = args.photo.resolve()

    if not in_venv(args.venv) and os.environ.get(REEXEC_ENV) != "1":
        py = ensure_venv(args)
        env = dict(os.environ, **{REEXEC_ENV: "1"})
        log(f"re-running in {args.venv}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]], env)

    # Keep the real stdout for the table and send everything else written to fd 1 (exporter
    # progress, library chatter) to stderr.
    sys.stdout.flush()
    OUT = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    # Ours first: a missing binary or a failing command shows before minutes of Python work.
    ours = load_ours(args, args.clip_json, args.precision)
    ours_bf16 = load_ours(args, args.clip_json_bf16, "bf16") if args.with_bf16 else None

    meta = {"cpu": cpu_model(), "threads": args.threads, "arch": args.arch, "repeats": args.repeats,
            "batch_sizes": args.batch_sizes, "photo": str(args.photo), "python": platform.python_version(),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}
    t0 = time.perf_counter()
    rows, more = run_peers(args)
    meta.update(more)
    log(f"peers done in {time.perf_counter() - t0:.0f} s")

    text = header(args, meta, ours) + "\n\n" + table(args, rows, ours, ours_bf16) + "\n"
    OUT.write(text)
    OUT.flush()

    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "peers": rows, "ours": ours, "ours_bf16": ours_bf16},
                                        indent=2) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
