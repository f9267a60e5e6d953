"""What does window overlap buy in separation, and what does it cost in time? (run from the repository root)

    PYTHONPATH=. python docs/experiments/window-overlap/overlap.py [--split validation] [--json overlap.json]

Separation (evaluation_bert.evaluate_separation, as evaluate.py scores it) of the shipped models
with BERT's separation windows half overlapping (the default until this probe) and tiling the file
(half the BERT calls; a frame near a window's edge hears only one side). The probe swaps
`tasks.window_starts` for each run. It ran on commit 23ce3ee, whose `separate_all` took each frame
from the window whose centre was nearest over all windows; so its tiled windows share one frame with
the next (hop `window - 1`), and every frame lies in the window it is taken from. Tiling is the
default since (`tasks.window_starts`, `tasks.window_owners`).
"""
import argparse
import json
import time

import torch

import tasks
from checkpoint import load_bert, load_vqvae
from data import embedded_dataset
from evaluation_bert import evaluate_separation, held_out_tokens
from pretrained import work_folder

STEMS = ("bass", "drums", "guitar", "piano")


def half_overlap(total, window):
    """Starts of half-overlapping windows covering 0..total (the last one ends at `total`): the old default."""
    if total <= window:
        return [0]
    return list(range(0, total - window, max(1, window // 2))) + [total - window]


def no_overlap(total, window):
    """Starts of windows that tile 0..total, sharing one frame with the next (the last one ends at
    `total`). The shared frame keeps `separate_all`'s rule, each frame from the window whose centre
    is nearest, inside a window that holds it (edge to edge, a tie at a border picks a window without it)."""
    if total <= window:
        return [0]
    return list(range(0, total - window, window - 1)) + [total - window]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--vqvae", default="pretrained/vqvae.pt")
    parser.add_argument("--bert", default="pretrained/bert.pt")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device("cpu")
    vqvae = load_vqvae(args.vqvae, device)
    bert, vocab = load_bert(args.bert, vqvae, device)
    data_root = embedded_dataset(vqvae.config.sample_rate)
    cache, _, tracks = held_out_tokens(vqvae, vocab, data_root, args.split, work_folder(args.vqvae), device)
    results = {}
    for name, starts in (("half overlap (default)", half_overlap), ("no overlap", no_overlap)):
        tasks.window_starts = starts
        started = time.time()
        separation = evaluate_separation(bert, vqvae, vocab, cache, tracks, device)
        results[name] = {"seconds": time.time() - started, "separation": separation}
        print(f"{name} ({results[name]['seconds']:.0f} s)")
        for kind in ("latent", "latent_refined"):
            cells = [f"{separation[s]['metrics'][kind]['si_sdri_db']:+.2f} +- {separation[s]['metrics'][kind]['si_sdri_db_ci95']:.2f}"
                     for s in STEMS]
            print(f"  {kind:<15} SI-SDRi bass / drums / guitar / piano: " + " / ".join(cells))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
