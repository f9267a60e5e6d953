"""Probe: does averaging two predictions of every stem frame, from windows tiled at two offsets, separate
better than one tiling (what infer.py separate does)?

    PYTHONPATH=. python docs/experiments/window-average/probe.py --split validation --json docs/experiments/window-average/validation.json

BERT's windows tile the chunk edge to edge (tasks.window_starts); a second pass tiles it from half a
window on (separate_all on the chunk without its first M // 2 frames), so every frame but the first
M // 2 is predicted twice, each time at another place in its window. Candidates, refined by the
mixture (Eq. 10): `one` (one tiling, today's), `shifted` (the second tiling alone, its first frames
from the first), `average` (the normalised mean of the two latents). The chunks and scores are those of
evaluate.py's separation, with the shipped models.
"""
import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from checkpoint import load_bert, load_vqvae
from cli import autocast
from data import embedded_dataset, is_silent, read_source
from evaluation import decode_batch, evenly_spaced, rows
from evaluation_bert import SEPARATION_SECONDS, STEM_SILENCE_DB, held_out_tokens
from metrics import mean_ci95, si_sdr
from pretrained import work_folder
from refine import refine
from tasks import separate_all

parser = argparse.ArgumentParser()
parser.add_argument("--split", default="validation")
parser.add_argument("--data", default=None)
parser.add_argument("--json", required=True)
args = parser.parse_args()
device = torch.device("cpu")
vqvae = load_vqvae("pretrained/vqvae.pt", device)
bert, vocab = load_bert("pretrained/bert.pt", vqvae, device)
data_root = args.data or embedded_dataset(vqvae.config.sample_rate)
cache, _, tracks = held_out_tokens(vqvae, vocab, data_root, args.split, work_folder("pretrained/vqvae.pt"), device)
hop, rate = vqvae.hop, vqvae.config.sample_rate
frames = int(SEPARATION_SECONDS * rate) // hop
half = (bert.config.max_positions - 1) // 2 // 2  # M // 2
stems, mix_row = list(vocab.stems), cache.sources.index("mix")
NAMES = ("one", "shifted", "average")
scores = {stem: {name: [] for name in NAMES + ("mixture",)} for stem in stems}
for t, first in evenly_spaced(cache, frames, 4):
    start = (first - cache.track_range(t)[0]) * hop / rate
    mixture_audio = read_source(tracks[t], "mix", rate, start, frames * hop / rate)
    references = [read_source(tracks[t], stem, rate, start, frames * hop / rate) for stem in stems]
    active = [j for j, r in enumerate(references) if not is_silent(r, STEM_SILENCE_DB)]
    if not active:
        continue
    mixture = rows(cache, mix_row, [(t, first)], frames)[0]  # (S,)
    features = cache.latents(mix_row, first, first + frames)  # (S, D)
    with autocast(device):
        one = separate_all(bert, vocab, mixture, features, stems, tokens=False)["latent"]  # (J, S, D)
        later = separate_all(bert, vocab, mixture[half:], features[half:], stems, tokens=False)["latent"]
    shifted = torch.cat([one[:, :half], later], dim=1)
    average = F.normalize(one + shifted, dim=-1)
    mix = torch.from_numpy(mixture_audio)
    candidates = {name: refine(mix, torch.from_numpy(decode_batch(vqvae, latents, device))).numpy()
                  for name, latents in (("one", one), ("shifted", shifted), ("average", average))}
    for j in active:
        scores[stems[j]]["mixture"].append(si_sdr(references[j], mixture_audio))
        for name, waves in candidates.items():
            scores[stems[j]][name].append(si_sdr(references[j], waves[j]))
results = {}
for stem in stems:
    base, one = np.array(scores[stem]["mixture"]), np.array(scores[stem]["one"])
    results[stem] = {"chunks": len(base)}
    for name in NAMES:
        values = np.array(scores[stem][name])
        mean, ci = mean_ci95(values - base)
        difference, difference_ci = mean_ci95(values - one)
        results[stem][name] = {"si_sdri_db": mean, "si_sdri_db_ci95": ci, "minus_one_db": difference,
                               "minus_one_db_ci95": difference_ci}
        print(f"{stem:<7} {name:<8} refined SI-SDRi {mean:+6.2f} +- {ci:4.2f}   vs one tiling {difference:+5.2f} +- {difference_ci:4.2f}")
means = {name: float(np.mean([results[s][name]["si_sdri_db"] for s in stems])) for name in NAMES}
print("mean of the stems: " + ", ".join(f"{name} {value:+.2f}" for name, value in means.items()))
with open(args.json, "w") as handle:
    json.dump({"split": args.split, "data": str(data_root), "stems": results, "mean_of_stems": means}, handle, indent=2)
