"""Probe: repetition scored on BERT's predicted gap latents as well as the surroundings (docs/experiments/inpainting.md).
Run from the repository root: python docs/experiments/inpainting/guided_repetition.py runs/finetune/bert.pt validation
> docs/experiments/inpainting/guided-repetition.txt (1.5 min on the EPYC)."""
import sys
sys.path.insert(0, ".")
import numpy as np, torch
from checkpoint import load_bert, load_vqvae
from data import embedded_dataset, read_source, is_silent
from evaluation import batched, evenly_spaced, rows
from evaluation_bert import held_out_tokens
from masking import middle_mask, hidden_frames
from tasks import single_source_inputs, source_segment
from metrics import mrstft_distance, mean_ci95, log_spectral_distance
from pretrained import work_folder
torch.set_num_threads(2)
dev = torch.device("cpu")
vq = load_vqvae("runs/vqvae.pt", dev); bert, vocab = load_bert(sys.argv[1], vq, dev)
split = sys.argv[2]
cache, val, tracks = held_out_tokens(vq, vocab, embedded_dataset(16000), split, work_folder("runs/vqvae.pt"), dev)
L, hop = bert.config.max_positions, vq.hop; mix = cache.sources.index("mix")

def guided(audio, feats, g, P, z, c=32, w_in=1.0, w_out=1.0):
    S = len(feats); unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-8)
    c = min(c, g, S - g - P)
    offs = np.arange(c, S - P - c + 1); offs = offs[(offs + P + c <= g) | (offs - c >= g + P)]
    s_out = np.zeros(len(offs)); s_in = np.zeros(len(offs))
    for i in range(c):
        s_out += unit[offs - c + i] @ unit[g - c + i] + unit[offs + P + i] @ unit[g + P + i]
    for i in range(P):
        s_in += unit[offs + i] @ z[i]
    score = w_out * s_out / (2 * c) + w_in * s_in / P
    best = offs[np.argmax(score)]
    return audio[best * hop:(best + P) * hop]

for P in (L // 4, L // 2):
    span = max(L, 3 * P); gap = (span - P) // 2; window = gap - (L - P) // 2
    sc = {}
    trk = {}
    for batch in batched(evenly_spaced(cache, span, 4), 16):
        firsts = [(t, f + window) for t, f in batch]
        tok = rows(cache, mix, firsts, L); inp, lab = middle_mask(tok, P, vocab)
        feat = torch.stack([cache.latents(mix, a, a + L) for _, a in firsts]); hid = hidden_frames(inp, lab, vocab)
        bi = single_source_inputs(inp, feat, hidden=hid, segment=source_segment(bert.config, "mix"))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            z = bert.latent(bert.hidden_states(**bi)).float()
        for i, (t, first) in enumerate(batch):
            if t not in trk:
                s, e = cache.track_range(t)
                trk[t] = (read_source(tracks[t], "mix", 16000, 0.0, (e - s) * hop / 16000), np.asarray(cache.latents(mix, s, e)))
            audio, lt = trk[t]
            off = first - cache.track_range(t)[0]; g = off + gap
            truth = audio[g * hop:(g + P) * hop]
            if is_silent(truth, -50.0): continue
            zg = z[i, (L - P) // 2:(L - P) // 2 + P].numpy()
            for name, (wi, wo) in {"context only": (0, 1), "bert only": (1, 0), "both": (1, 1), "both, bert x2": (2, 1)}.items():
                f = guided(audio, lt, g, P, zg, w_in=wi, w_out=wo)
                sc.setdefault(name, []).append(mrstft_distance(truth, f))
                sc.setdefault(name + " lsd", []).append(log_spectral_distance(truth, f))
    print(f"P={P}:", "; ".join(f"{k} {mean_ci95(v)[0]:.3f}+-{mean_ci95(v)[1]:.3f}" for k, v in sc.items()), flush=True)
