"""The tables of docs/experiments/inpainting.md, from the JSON files beside this script.
Run from the repository root: python docs/experiments/inpainting/tables.py"""
import json
from pathlib import Path

HERE = Path(__file__).parent
RELEASE = HERE.parent / "release"  # the shipped BERT's test and transfer figures before this page
FILLS = {"bert_tokens": "BERT's sampled codes (`infer.py inpaint`)", "bert_latent": "BERT's latents (Eq. 11)",
         "unigram": "codes drawn from their frequencies", "crossfade": "cross-fade", "lpc": "linear prediction",
         "repetition": "repetition", "silence": "silence", "oracle_tokens": "ceiling: true tokens",
         "oracle_latent": "ceiling: true latents"}
STEMS = ("bass", "drums", "guitar", "piano")


def load(name, folder=HERE):
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def gaps(results):
    """{gap seconds: inpainting results} of one evaluate.py JSON."""
    found = [results["inpainting"], *results.get("inpainting_gaps", {}).values()]
    return {f"{g['gap_seconds']:.3f}": g for g in found if "skipped" not in g}


def inpainting_table(title, columns):
    """One row per fill, one column per (label, results) and gap length: MR-STFT +- ci / LSD dB."""
    heads = [(label, seconds) for label, results in columns for seconds in gaps(results)]
    print(f"\n{title}: MR-STFT distance on the gap +- 95% interval / log-spectral distance in dB (lower is better)\n")
    print("| fill | " + " | ".join(f"{label}, {seconds} s" for label, seconds in heads) + " |")
    print("| --- |" + " --- |" * len(heads))
    for fill, name in FILLS.items():
        cells = []
        for label, results in columns:
            for gap in gaps(results).values():
                cells.append(f"{gap[f'mrstft_{fill}']:.2f} +- {gap[f'mrstft_{fill}_ci95']:.2f} / {gap[f'lsd_db_{fill}']:.1f}"
                             if f"mrstft_{fill}" in gap else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{label}: {next(iter(gaps(results).values()))['gaps']} gaps" for label, results in columns)
    print(f"\n({counts}; BERT fills at most half its context, 0.256 s)")


def separation_cell(results, name="latent_refined"):
    return " / ".join(f"{results['separation'][s]['metrics'][name]['si_sdri_db']:+.2f}" for s in STEMS)


def main():
    val_shipped, val_tuned = load("validation-shipped.json"), load("validation-finetuned.json")
    test_tuned, transfer_tuned = load("test-finetuned.json"), load("transfer-finetuned.json")
    test_shipped, transfer_shipped = load("test-shipped.json", RELEASE), load("transfer-shipped.json", RELEASE)
    inpainting_table("Validation split", [("shipped", val_shipped), ("fine-tuned", val_tuned)])
    if test_tuned:
        inpainting_table("Test split, fine-tuned", [("test", test_tuned)])
    if transfer_tuned:
        inpainting_table("Unseen SoundFont set, fine-tuned", [("unseen", transfer_tuned)])
    print("\n| | validation: shipped | validation: fine-tuned | test: shipped | test: fine-tuned | unseen: shipped | unseen: fine-tuned |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    sets = [val_shipped, val_tuned, test_shipped, test_tuned, transfer_shipped, transfer_tuned]
    for name, label in (("latent", "separation SI-SDRi, BERT's latents, bass / drums / guitar / piano"),
                        ("latent_refined", "separation SI-SDRi, latents refined (`infer.py separate`)"),
                        ("tokens", "separation SI-SDRi, BERT's tokens (token-only)")):
        print(f"| {label} | " + " | ".join(separation_cell(r, name) if r else "-" for r in sets) + " |")
    print("| masked top-1 (unigram guess) | " + " | ".join(
        f"{r['mlm']['accuracy']:.3f} ({r['mlm']['unigram_accuracy']:.3f})" if r else "-" for r in sets) + " |")
    print("| inpainting 0.128 s, MR-STFT: BERT's codes / cross-fade | " + " | ".join(
        "-" if r is None else f"{r['inpainting'].get('mrstft_bert_tokens', r['inpainting'].get('mrstft_gap')):.2f} / "
        f"{r['inpainting'].get('mrstft_crossfade', r['inpainting'].get('mrstft_gap_crossfade')):.2f}" for r in sets) + " |")


if __name__ == "__main__":
    main()
