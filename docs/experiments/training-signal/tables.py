"""Print this page's validation table from the evaluate.py --json files (run from the repository root).

    python docs/experiments/training-signal/tables.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent / "separation-training"
RUNS = {"default, seed 0 (Xeon)": DEFAULT / "validation-seed0.json", "default, seed 1 (Xeon)": DEFAULT / "validation-seed1.json",
        "MLM_SHARE 0.375 (EPYC)": HERE / "validation-mlm375.json", "Remix (EPYC)": HERE / "validation-remix.json",
        "--lr 2e-3 (EPYC)": HERE / "validation-lr2e-3.json"}
STEMS = ("bass", "drums", "guitar", "piano")
ROWS = [("BERT's latents decoded", "latent"), ("latents refined (Eq. 10)", "latent_refined"),
        ("soft decoding", "expected"), ("BERT's tokens decoded", "tokens")]

results = {name: json.loads(path.read_text()) for name, path in RUNS.items()}
print("| validation, SI-SDRi bass / drums / guitar / piano (dB) | " + " | ".join(results) + " |")
print("| --- " * (len(results) + 1) + "|")
for label, kind in ROWS:
    cells = []
    for r in results.values():
        values = [r["separation"][s]["metrics"][kind]["si_sdri_db"] for s in STEMS]
        cells.append(" / ".join(f"{v:+.2f}" for v in values) + f" (mean {sum(values) / 4:+.2f})")
    print(f"| {label} | " + " | ".join(cells) + " |")
print("| masked top-1 | " + " | ".join(f"{r['mlm']['accuracy']:.3f}" for r in results.values()) + " |")
print("| inpainting, 0.128 s gap, MR-STFT | " + " | ".join(f"{r['inpainting']['mrstft_gap']:.2f}" for r in results.values()) + " |")
