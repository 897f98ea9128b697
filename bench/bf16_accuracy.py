#!/usr/bin/env python3
"""How far --precision bf16 is from f32: per-item cosine of the embeddings and top-1 agreement
of zero-shot classification, on the same model, photos and labels.

    python3 bench/bf16_accuracy.py --model DIR_OR_NAME --photos DIR [--labels FILE]

Runs target/release/clip (build it with `cargo build --release --locked -p clip-cli`); needs
only the Python standard library.
"""

import argparse
import json
import math
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = [
    "a photo of a cat", "a photo of a dog", "a photo of a rocket", "a photo of a horse",
    "a photo of coins", "a photo of a man with a camera", "a photo of galaxies",
    "a photo of an astronaut", "a cup of coffee", "a photo of a retina", "a car", "a tree",
    "a house", "a bird", "a boat", "a plane", "a pizza", "a flower", "a mountain", "a beach",
]


def clip(*args):
    out = subprocess.run([str(ROOT / "target/release/clip"), *args], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--photos", type=Path, default=ROOT / "fixtures/photos")
    ap.add_argument("--labels", type=Path, help="one label per line (default: 20 built in)")
    args = ap.parse_args()
    labels = args.labels.read_text().splitlines() if args.labels else LABELS
    photos = sorted(str(p) for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    inputs = [a for p in photos for a in ("--image", p)] + [a for t in labels for a in ("--text", t)]
    emb = {p: clip("embed", "-m", args.model, "--precision", p, "--quiet", *inputs) for p in ("f32", "bf16")}
    cos = [cosine(a["embedding"], b["embedding"]) for a, b in zip(emb["f32"], emb["bf16"])]
    n_img = len(photos)
    print(f"model {args.model}: {n_img} photos, {len(labels)} labels")
    print(f"image embeddings: cosine bf16 vs f32 min {min(cos[:n_img]):.6f} mean {sum(cos[:n_img]) / n_img:.6f}")
    print(f"text embeddings:  cosine bf16 vs f32 min {min(cos[n_img:]):.6f} mean {sum(cos[n_img:]) / len(labels):.6f}")
    label_arg = ",".join(l.replace(",", " ") for l in labels)
    top = {p: [r["predictions"][0]["label"]
               for r in clip("classify", *photos, "--labels", label_arg, "--json", "-m", args.model,
                             "--precision", p, "--quiet")]
           for p in ("f32", "bf16")}
    agree = sum(a == b for a, b in zip(top["f32"], top["bf16"]))
    print(f"zero-shot top-1 agreement: {agree}/{n_img}")


if __name__ == "__main__":
    main()
