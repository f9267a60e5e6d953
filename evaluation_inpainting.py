"""Inpainting's held-out figures (Eq. 7, gaps in mixture windows), against honest baselines and the
oracle; `evaluation_bert.py` gathers them with BERT's other figures, `evaluate.py` prints them.

For BERT's fill and for silence, a cross-fade of the neighbouring audio, codes drawn from the
mixtures' code frequencies without looking at the music (`unigram_fill`) and the oracle (the
true tokens decoded: the tokenizer's own floor): MR-STFT and log-mel distances on the gap, the
RMS level of each fill; and BERT's negative log-likelihood of the true gap codes against the
unigram's, overall and by distance from the gap's edge (`code_nll`). Every figure is a mean over
held-out gaps with a 95% confidence interval.

Shapes: B batch, L context (frames), K codebook size, Q levels.
"""
import math

import numpy as np
import torch

from cli import autocast
from data import is_silent, read_source
from decoding import maskgit_fill
from evaluation import batched, decode_batch, evenly_spaced, rows
from files import UserError
from masking import IGNORE, hidden_frames, middle_mask
from metrics import log_mel_distance, mean_ci95, mrstft_distance
from tasks import single_source_inputs, source_segment

INPAINT_STEPS = (1, 8)  # decoding steps scored for inpainting; the first is the headline (infer.py's default)
INPAINT_TEMPERATURE = 1.0  # sampling temperature of the inpainting figures (infer.py's default; 0 = argmax)
INPAINT_REVEAL_NOISE = 0.0  # MaskGIT's noise on the reveal order of the inpainting figures (infer.py's default)
# bins of a gap code's distance, in frames, from the nearest known frame (1: next to the context)
EDGE_BINS = {"1": (1, 1), "2-4": (2, 4), "5-16": (5, 16), "17-64": (17, 64), "65-": (65, math.inf)}


def crossfade_fill(before, after):
    """Baseline gap filler: the audio just before the gap fading out into the audio just after it."""
    weight = np.linspace(0.0, 1.0, len(before), dtype=np.float32)
    return (1 - weight) * before + weight * after


@torch.no_grad()
def evaluate_inpainting(bert, vqvae, vocab, cache, tracks, device, per_track=4, steps_list=INPAINT_STEPS, batch_size=16,
                        gap_seconds=None, temperatures=(), reveal_noises=(), unigram=None):
    """Eq. 7 on mixture windows of the full context, a gap of a quarter of it in the middle (or of
    `gap_seconds`, at most half the context) in the middle. The cross-fade takes the gap's length
    of audio on each side, read beyond the window where a long gap needs it. The headline decodes
    with steps_list[0] steps at INPAINT_TEMPERATURE and INPAINT_REVEAL_NOISE; each other value of
    `steps_list`, `temperatures` and `reveal_noises` is also scored, one setting changed at a time
    (every draw is seeded: the same figures every run).

    `unigram`: code counts of mixtures ((K,) or (Q, K), from the validation split): the gap is
    also filled with codes drawn from them, frame by frame and level by level, ignoring the
    context: what a sampler that learned nothing but the code frequencies would give. Each fill is
    also scored by the log-mel distance on the gap (`log_mel_gap`), a second, phase-blind view.
    """
    L, hop, rate = bert.config.max_positions, vqvae.hop, vqvae.config.sample_rate
    P = L // 4 if gap_seconds is None else max(1, round(gap_seconds * rate / hop))
    if P > L // 2:
        raise UserError(f"a gap of {gap_seconds:g} s is {P} tokens; this model fills at most {L // 2}")
    a, b = (L - P) // 2 * hop, ((L - P) // 2 + P) * hop  # the gap, in samples of the window
    reach = max(0, (b - a) - a)  # samples the cross-fade needs beyond each side of the window
    mix_row = cache.sources.index("mix")
    N, T, R = steps_list[0], INPAINT_TEMPERATURE, INPAINT_REVEAL_NOISE
    decodings = list(dict.fromkeys([(steps, T, R) for steps in steps_list] + [(N, t, R) for t in temperatures]
                                   + [(N, T, r) for r in reveal_noises]))  # (steps, temperature, reveal noise)
    baselines = ("silence", "crossfade", "oracle") + (("unigram",) if unigram is not None else ())
    scores = {**{name: [] for name in baselines}, **{decoding: [] for decoding in decodings}}
    mel = {name: [] for name in baselines + ("bert",)}  # log-mel distances on the gap
    level = {name: [] for name in ("truth", "bert") + baselines if name != "silence"}  # RMS level of each fill, dB
    code_nlls = {"bert": [], "unigram": []}  # nats per level-1 gap code
    edge_nll = [(0.0, 0)] * len(EDGE_BINS)  # BERT's (sum, count) by distance from the gap's edge
    generator = torch.Generator(device=device).manual_seed(0)
    draws = torch.Generator().manual_seed(1)  # the unigram fills
    for batch in batched(evenly_spaced(cache, L, per_track), batch_size):
        tokens = rows(cache, mix_row, batch, L)  # (B, L), or (B, L, Q)
        inputs, labels = middle_mask(tokens, P, vocab)
        features = torch.stack([cache.latents(mix_row, a, a + L) for _, a in batch])  # (B, L, D)
        batch_inputs = {key: value.to(device) for key, value in
                        single_source_inputs(inputs, features, hidden=hidden_frames(inputs, labels, vocab),
                                             segment=source_segment(bert.config, "mix")).items()}
        if unigram is not None:
            with autocast(device):
                logits, _ = bert(**batch_inputs)  # (B, L, K) or (B, L, Q, K): the first pass, every gap code masked
            nll, by_distance = code_nll(logits, tokens, labels, vocab, unigram)  # (B, 2): BERT's and the unigram's, level 1
            edge_nll = [(total + s, count + n) for (total, count), (s, n) in zip(edge_nll, by_distance)]
        estimates = {}
        for steps, temperature, noise in decodings:
            with autocast(device):
                filled = maskgit_fill(bert, batch_inputs, vocab.mask, steps, temperature, generator, reveal_noise=noise)
                estimates[steps, temperature, noise] = decode_batch(vqvae, filled.cpu(), device)
        oracles = decode_batch(vqvae, tokens, device)
        guesses = None if unigram is None else decode_batch(vqvae, unigram_fill(tokens, labels != IGNORE, unigram, draws),
                                                             device)
        for i, ((t, first), oracle) in enumerate(zip(batch, oracles)):
            frame = first - cache.track_range(t)[0]
            before = min(reach, frame * hop)  # (zeros before the track's start)
            reference = read_source(tracks[t], "mix", rate, (frame * hop - before) / rate, (L * hop + before + reach) / rate)
            reference = np.concatenate([np.zeros(reach - before, np.float32), reference])  # window sample 0 at `reach`
            gap = reference[reach + a:reach + b]
            if is_silent(gap, -50.0):
                continue
            for decoding in decodings:
                scores[decoding].append(mrstft_distance(gap, estimates[decoding][i][a:b]))
            fills = {"silence": np.zeros_like(gap), "oracle": oracle[a:b], "bert": estimates[N, T, R][i][a:b],
                     "crossfade": crossfade_fill(reference[reach + a - (b - a):reach + a], reference[reach + b:reach + 2 * b - a])}
            if guesses is not None:
                fills["unigram"] = guesses[i][a:b]
            for name, fill in fills.items():
                if name != "bert":
                    scores[name].append(mrstft_distance(gap, fill))
                mel[name].append(log_mel_distance(gap, fill, rate))
                if name in level:
                    level[name].append(10 * np.log10(np.mean(fill.astype(np.float64) ** 2) + 1e-10))
            level["truth"].append(10 * np.log10(np.mean(gap.astype(np.float64) ** 2) + 1e-10))
            if unigram is not None:
                for j, name in enumerate(("bert", "unigram")):
                    code_nlls[name].append(float(nll[i, j]))
    results = {"gaps": len(scores["silence"]), "gap_tokens": P, "gap_seconds": P * hop / rate,
               "decoding_steps": N, "decoding_temperature": T, "decoding_reveal_noise": R,
               "mrstft_gap_by_steps": {str(steps): mean_ci95(scores[steps, T, R])[0] for steps in steps_list}}
    if temperatures:
        results["mrstft_gap_by_temperature"] = {f"{t:g}": list(mean_ci95(scores[N, t, R])) for t in sorted({T, *temperatures})}
    if reveal_noises:
        results["mrstft_gap_by_reveal_noise"] = {f"{r:g}": list(mean_ci95(scores[N, T, r]))
                                                 for r in sorted({R, *reveal_noises})}
    for name, key in (((N, T, R), "mrstft_gap"), *((name, f"mrstft_gap_{name}") for name in baselines)):
        results[key], results[key + "_ci95"] = mean_ci95(scores[name])
    results["log_mel_gap"] = {name: list(mean_ci95(values)) for name, values in mel.items()}
    results["gap_level_db"] = {name: mean_ci95(values)[0] for name, values in level.items()}
    if unigram is not None:
        results["gap_code_nll"] = {name: list(mean_ci95(values)) for name, values in code_nlls.items()}
        results["gap_code_nll_by_distance"] = {name: total / count for name, (total, count) in zip(EDGE_BINS, edge_nll) if count}
    return results


def code_nll(logits, tokens, labels, vocab, unigram):
    """Negative log-likelihoods (nats) of the true level-1 codes at the masked positions:
    (per window (B, 2): the mean under BERT's `logits` (B, L, K) or (B, L, Q, K) and under the
    `unigram` counts (K,) or (Q, K), add-one smoothed; per bin of EDGE_BINS: (sum of BERT's, count)
    over the batch, by the distance of a code from the nearest unmasked frame of its window)."""
    if logits.dim() == 4:  # frames: level 1
        logits, tokens, labels = logits[:, :, 0], tokens[..., 0], labels[..., 0]
    masked = (labels != IGNORE).to(logits.device)  # (B, L)
    true = tokens.to(logits.device).clamp(max=vocab.num_codes - 1)
    bert = -torch.log_softmax(logits.float(), dim=-1).gather(-1, true[..., None])[..., 0]  # (B, L)

    def per_window(values):  # (B, L) -> (B,) mean over the masked positions
        return ((values * masked).sum(1) / masked.sum(1).clamp(min=1)).cpu()

    counts = torch.as_tensor(np.atleast_2d(unigram)[0], dtype=torch.float64, device=logits.device) + 1.0
    prior = -torch.log(counts / counts.sum())[true].float()  # (B, L)
    frames = torch.arange(masked.shape[1], device=masked.device)  # (L,)
    distance = torch.full(masked.shape, math.inf, device=masked.device)  # (B, L) to the nearest known frame
    for row in range(masked.shape[0]):
        known = frames[~masked[row]]  # (n,)
        if len(known):
            distance[row] = (frames[:, None] - known[None]).abs().min(dim=1).values.float()
    in_bin = [masked & (distance >= lo) & (distance <= hi) for lo, hi in EDGE_BINS.values()]  # (B, L) each
    by_distance = [(bert[inside].sum().item(), int(inside.sum())) for inside in in_bin]
    return torch.stack([per_window(bert), per_window(prior)], dim=1), by_distance


def unigram_fill(tokens, masked, counts, generator):
    """(B, L) tokens, or (B, L, Q) frames, with every `masked` code replaced by a draw from its
    level's unigram `counts` ((K,) or (Q, K))."""
    counts = torch.as_tensor(np.atleast_2d(counts), dtype=torch.float64)  # (Q, K)
    levels = tokens[..., None] if tokens.dim() == 2 else tokens  # (B, L, Q)
    draws = torch.stack([torch.multinomial(counts[q] / counts[q].sum(), levels[..., q].numel(), replacement=True,
                                           generator=generator).view(levels.shape[:2]) for q in range(levels.shape[-1])],
                        dim=-1)  # (B, L, Q)
    masked = masked if masked.dim() == 3 else masked[..., None]
    filled = torch.where(masked, draws, levels)
    return filled[..., 0] if tokens.dim() == 2 else filled
