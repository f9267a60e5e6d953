"""Print this page's tables from the evaluate.py --json files (run from the repository root).

    python docs/experiments/long-context-latent/tables.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
K4 = HERE.parent / "separation-training"  # the k = 4 default at commit a95b8cf, two seeds (2-core Xeon)
STEMS = ("bass", "drums", "guitar", "piano")
ROWS = [("BERT's latents decoded", "latent"), ("latents refined (Eq. 10)", "latent_refined"),
        ("BERT's tokens decoded (token-only)", "tokens"), ("floor: the mixture's latents decoded", "mixture_latent"),
        ("ceiling: the true stem tokens decoded", "oracle"), ("ceiling: the true stem latents decoded", "stem_latent")]


def load(path):
    return json.loads(Path(path).read_text())


def si_sdri(result, kind, stem):
    return result["separation"][stem]["metrics"][kind]["si_sdri_db"]


def gap(result, seconds):
    """The inpainting figures of a gap of about `seconds` (the default gap or one of --gap-seconds)."""
    for found in [result["inpainting"], *result.get("inpainting_gaps", {}).values()]:
        if "gap_seconds" in found and abs(found["gap_seconds"] - seconds) < 0.01:
            return found
    return None


def table(split, columns):
    print(f"| {split} | " + " | ".join(columns) + " |")
    print("| --- " * (len(columns) + 1) + "|")
    runs = list(columns.values())
    print("| tokenizer SI-SDR (dB) | " + " | ".join(f"{r['reconstruction']['si_sdr_db']:.2f}" for r in runs) + " |")
    for label, kind in ROWS:
        cells = [" / ".join(f"{si_sdri(r, kind, s):+.2f}" for s in STEMS) for r in runs]
        means = [sum(si_sdri(r, kind, s) for s in STEMS) / 4 for r in runs]
        print(f"| {label}, SI-SDRi bass / drums / guitar / piano (mean) | "
              + " | ".join(f"{c} ({m:+.2f})" for c, m in zip(cells, means)) + " |")
    print("| masked top-1 (level 1) / unigram | "
          + " | ".join(f"{r['mlm']['accuracy']:.3f} / {r['mlm']['unigram_accuracy']:.3f}" for r in runs) + " |")
    for seconds in (0.128, 0.512):
        cells = []
        for r in runs:
            g = gap(r, seconds)
            cells.append("-" if g is None else f"{g['mrstft_gap']:.2f} (cross-fade {g['mrstft_gap_crossfade']:.2f}, "
                                               f"unigram {g['mrstft_gap_unigram']:.2f}, oracle {g['mrstft_gap_oracle']:.2f})")
        print(f"| inpainting MR-STFT, {seconds} s gap: BERT | " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    table("validation", {"k = 4, Q = 1, seed 0": load(K4 / "validation-seed0.json"),
                         "k = 4, Q = 1, seed 1": load(K4 / "validation-seed1.json"),
                         "k = 6, Q = 4, seed 0": load(HERE / "validation-k6q4-seed0.json"),
                         **({"k = 6, Q = 4, seed 1": load(HERE / "validation-k6q4-seed1.json")}
                            if (HERE / "validation-k6q4-seed1.json").exists() else {})})
    if (HERE / "results-k6q4-seed0.json").exists():
        table("test", {"k = 4, Q = 1, seed 0": load(K4 / "results-seed0.json"),
                       "k = 4, Q = 1, seed 1": load(K4 / "results-seed1.json"),
                       "k = 6, Q = 4, seed 0": load(HERE / "results-k6q4-seed0.json")})
