"""Print this page's tables from the evaluate.py --json files (run from the repository root).

    python docs/experiments/separation-training/tables.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEFORE = {"validation": HERE.parent / "latent-head" / "validation-lw10.json",  # commit de92ddc, the same tokenizer
          "test": HERE.parent / "latent-head" / "results-lw10.json",
          "transfer": HERE.parent / "release" / "transfer-default.json"}
STEMS = ("bass", "drums", "guitar", "piano")
ROWS = [("BERT's latents decoded", "latent"), ("latents refined (Eq. 10)", "latent_refined"),
        ("soft decoding", "expected"), ("BERT's tokens decoded (token-only)", "tokens")]


def runs(split):
    found = {"before (de92ddc, seed 0)": BEFORE[split]}
    if split == "validation":
        found["every stem frame masked, shared head"] = HERE / "validation-full.json"
    prefix = {"validation": "validation", "test": "results", "transfer": "transfer"}[split]
    for seed in (0, 1):
        found[f"new default, seed {seed}"] = HERE / f"{prefix}-seed{seed}.json"
    return {name: json.loads(path.read_text()) for name, path in found.items()}


def si_sdri(result, kind, stem):
    return result["separation"][stem]["metrics"][kind]["si_sdri_db"]


def table(split):
    results = runs(split)
    seeds = [r for name, r in results.items() if name.startswith("new default")]
    print(f"| {split} | " + " | ".join(results) + " | new default, mean of 2 seeds |")
    print("| --- " * (len(results) + 2) + "|")
    for label, kind in ROWS:
        cells = [" / ".join(f"{si_sdri(r, kind, s):+.2f}" for s in STEMS) for r in results.values()]
        mean = " / ".join(f"{sum(si_sdri(r, kind, s) for r in seeds) / len(seeds):+.2f}" for s in STEMS)
        print(f"| {label}, SI-SDRi bass / drums / guitar / piano (dB) | " + " | ".join(cells) + f" | {mean} |")
    top1 = [r["mlm"]["accuracy"] for r in results.values()]
    print("| masked top-1 | " + " | ".join(f"{a:.3f}" for a in top1) + f" | {sum(top1[-2:]) / 2:.3f} |")
    gap = [r["inpainting"]["mrstft_gap"] for r in results.values()]
    print("| inpainting, 0.128 s gap, MR-STFT | " + " | ".join(f"{g:.2f}" for g in gap) + f" | {sum(gap[-2:]) / 2:.2f} |")
    first = next(iter(results.values()))
    print(f"\n(unigram top-1 {first['mlm']['unigram_accuracy']:.3f}; cross-fade {first['inpainting']['mrstft_gap_crossfade']:.2f}; "
          "2 s chunks per stem: " + " / ".join(str(first["separation"][s]["chunks"]) for s in STEMS) + ")\n")


for split in ("validation", "test", "transfer"):
    table(split)
