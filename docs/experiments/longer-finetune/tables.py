"""The table of docs/experiments/longer-finetune.md, from the JSON files beside this script and those of
the BERT before (docs/experiments/inpainting). Run from the repository root:
python docs/experiments/longer-finetune/tables.py"""
import json
from pathlib import Path

HERE = Path(__file__).parent
BEFORE = HERE.parent / "inpainting"  # the BERT shipped at commit 57f948f (8000 + 2000 steps)
STEMS = ("bass", "drums", "guitar", "piano")


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def separation(results, name):
    return " / ".join(f"{results['separation'][s]['metrics'][name]['si_sdri_db']:+.2f}" for s in STEMS)


def main(before=(BEFORE, "finetuned", "8000 + 2000 steps"), after=(HERE, "finetune2", "+ 3000 more")):
    """before, after: (folder, the name in its JSON files, the column label); the JSON files are
    validation-<name>.json, test-<name>.json and transfer-<name>.json (docs/experiments/finetune3 reuses this)."""
    sets = [("validation", "validation"), ("test", "test"), ("unseen SoundFont", "transfer")]
    columns = [(f"{split}: {label}", load(folder / f"{prefix}-{name}.json")) for split, prefix in sets
               for folder, name, label in (before, after)]
    columns = [(label, r) for label, r in columns if r]
    print("| | " + " | ".join(label for label, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for name, label in (("latent_refined", "separation SI-SDRi, latents refined (`infer.py separate`), bass / drums / guitar / piano"),
                        ("latent", "separation SI-SDRi, BERT's latents decoded"),
                        ("tokens", "separation SI-SDRi, BERT's tokens decoded (token-only)")):
        print(f"| {label} | " + " | ".join(separation(r, name) for _, r in columns) + " |")
    print("| masked top-1 +- 95% (unigram guess) | " + " | ".join(
        f"{r['mlm']['accuracy']:.3f} +- {r['mlm']['accuracy_ci95']:.3f} ({r['mlm']['unigram_accuracy']:.3f})"
        for _, r in columns) + " |")
    print("| inpainting 0.128 s, MR-STFT: BERT's codes / cross-fade / linear prediction | " + " | ".join(
        f"{r['inpainting']['mrstft_bert_tokens']:.2f} / {r['inpainting']['mrstft_crossfade']:.2f} / "
        f"{r['inpainting']['mrstft_lpc']:.2f}" for _, r in columns) + " |")
    print("| inpainting 0.256 s, MR-STFT: BERT's codes / cross-fade | " + " | ".join(
        " / ".join(f"{g['mrstft_' + fill]:.2f}" for fill in ("bert_tokens", "crossfade"))
        for _, r in columns for g in r["inpainting_gaps"].values() if abs(g["gap_seconds"] - 0.256) < 1e-3) + " |")
    intervals = ", ".join(f"{label} {min(r['separation'][s]['metrics']['latent_refined']['si_sdri_db_ci95'] for s in STEMS):.1f}"
                          f" to {max(r['separation'][s]['metrics']['latent_refined']['si_sdri_db_ci95'] for s in STEMS):.1f}"
                          for label, r in columns)
    print(f"\n(95% intervals of the refined SI-SDRi, dB: {intervals}.)")


if __name__ == "__main__":
    main()
