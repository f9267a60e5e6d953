"""Print the release page's tables from the evaluate.py --json files (run from the repository root).

    python docs/experiments/release/tables.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = {  # (set, models): JSON file
    ("test", "shipped"): HERE / "test-shipped.json",
    ("test", "default"): HERE.parent / "latent-head" / "results-lw10.json",  # commit de92ddc, the same tokenizer
    ("transfer", "shipped"): HERE / "transfer-shipped.json",
    ("transfer", "default"): HERE / "transfer-default.json",
}
STEMS = ("bass", "drums", "guitar", "piano")
ROWS = [("BERT's latents decoded", "latent"), ("**latents refined (Eq. 10)**", "latent_refined"),
        ("BERT's tokens decoded (token-only)", "tokens")]


def separation(result, kind):
    return " / ".join(f"{result['separation'][s]['metrics'][kind]['si_sdri_db']:+.2f}" for s in STEMS)


def table(name):
    shipped, default = (json.loads(RUNS[(name, models)].read_text()) for models in ("shipped", "default"))
    print(f"| {name} set | shipped (BERT 8000 steps) | default budget (BERT 2000 steps) |")
    print("| --- | --- | --- |")
    for label, kind in ROWS:
        print(f"| {label}, SI-SDRi bass / drums / guitar / piano (dB) | {separation(shipped, kind)} | {separation(default, kind)} |")
    chunks = " / ".join(str(shipped["separation"][s]["chunks"]) for s in STEMS)
    print(f"| (2 s chunks per stem: {chunks}) | | |")
    print(f"| masked top-1 (unigram guess) | {shipped['mlm']['accuracy']:.3f} ({shipped['mlm']['unigram_accuracy']:.3f}) | "
          f"{default['mlm']['accuracy']:.3f} ({default['mlm']['unigram_accuracy']:.3f}) |")
    print(f"| inpainting, 0.128 s gap, MR-STFT (cross-fade) | {shipped['inpainting']['mrstft_gap']:.2f} "
          f"({shipped['inpainting']['mrstft_gap_crossfade']:.2f}) | {default['inpainting']['mrstft_gap']:.2f} "
          f"({default['inpainting']['mrstft_gap_crossfade']:.2f}) |")
    print(f"| tokenizer SI-SDR (the same VQ-VAE) | {shipped['reconstruction']['si_sdr_db']:.2f} dB | "
          f"{default['reconstruction']['si_sdr_db']:.2f} dB |")
    print()


for name in ("test", "transfer"):
    table(name)
