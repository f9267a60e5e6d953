"""Probe: does blending BERT's two decodings (its argmax tokens and its predicted latents, Eq. 11)
separate better than the latents alone, refined by the mixture (Eq. 10)?

    PYTHONPATH=. python docs/experiments/blend/probe.py --split validation --json docs/experiments/blend/validation.json

The chunks, windows and scores are those of evaluate.py's separation (evaluation_bert.evaluate_separation),
with the shipped models. Candidates, each refined by the mixture unless named raw:
  latent            the predicted latents decoded (what infer.py separate writes)
  tokens            the argmax tokens decoded
  mean_waves        the mean of the two decoded waveforms, then refined
  mean_refined      the mean of the two refined waveforms
  mean_inputs       the decoder run on the normalised mean of the latent and the argmax code vector, then refined
Each is scored by SI-SDRi against the mixture, and by its paired difference to `latent`.
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
from tasks import SEPARATE_STEPS, separate_all

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
stems, mix_row = list(vocab.stems), cache.sources.index("mix")
NAMES = ("latent", "tokens", "mean_waves", "mean_refined", "mean_inputs", "latent_raw", "tokens_raw")
scores = {stem: {name: [] for name in NAMES + ("mixture",)} for stem in stems}
for t, first in evenly_spaced(cache, frames, 4):
    start = (first - cache.track_range(t)[0]) * hop / rate
    mixture_audio = read_source(tracks[t], "mix", rate, start, frames * hop / rate)
    references = [read_source(tracks[t], stem, rate, start, frames * hop / rate) for stem in stems]
    active = [j for j, r in enumerate(references) if not is_silent(r, STEM_SILENCE_DB)]
    if not active:
        continue
    mixture = rows(cache, mix_row, [(t, first)], frames)[0]
    features = cache.latents(mix_row, first, first + frames)
    with autocast(device):
        predicted = separate_all(bert, vocab, mixture, features, stems, SEPARATE_STEPS)
    mix = torch.from_numpy(mixture_audio)
    latent_raw = decode_batch(vqvae, predicted["latent"], device)  # (J, T)
    tokens_raw = decode_batch(vqvae, predicted["tokens"], device)
    code_vectors = vqvae.lookup(predicted["tokens"])  # (J, S, D) the argmax codes' decoder inputs
    mean_inputs = decode_batch(vqvae, F.normalize(predicted["latent"] + code_vectors, dim=-1), device)

    def refined(waves):
        return refine(mix, torch.from_numpy(np.ascontiguousarray(waves))).numpy()

    latent, tokens = refined(latent_raw), refined(tokens_raw)
    candidates = {"latent": latent, "tokens": tokens, "mean_waves": refined((latent_raw + tokens_raw) / 2),
                  "mean_refined": (latent + tokens) / 2, "mean_inputs": refined(mean_inputs),
                  "latent_raw": latent_raw, "tokens_raw": tokens_raw}
    for j in active:
        scores[stems[j]]["mixture"].append(si_sdr(references[j], mixture_audio))
        for name, waves in candidates.items():
            scores[stems[j]][name].append(si_sdr(references[j], waves[j]))
results = {}
for stem in stems:
    base = np.array(scores[stem]["mixture"])
    latent = np.array(scores[stem]["latent"])
    results[stem] = {"chunks": len(base)}
    for name in NAMES:
        values = np.array(scores[stem][name])
        mean, ci = mean_ci95(values - base)
        difference, difference_ci = mean_ci95(values - latent)
        results[stem][name] = {"si_sdri_db": mean, "si_sdri_db_ci95": ci, "minus_latent_db": difference,
                               "minus_latent_db_ci95": difference_ci}
        print(f"{stem:<7} {name:<13} SI-SDRi {mean:+6.2f} +- {ci:4.2f}   vs latent {difference:+5.2f} +- {difference_ci:4.2f}")
means = {name: float(np.mean([results[s][name]["si_sdri_db"] for s in stems])) for name in NAMES}
print("mean of the stems: " + ", ".join(f"{name} {value:+.2f}" for name, value in means.items()))
with open(args.json, "w") as handle:
    json.dump({"split": args.split, "data": str(data_root), "stems": results, "mean_of_stems": means}, handle, indent=2)
