"""BERT's held-out figures against honest baselines and an oracle ceiling (`evaluate.py` prints them).

- mlm (15% BERT masking of single-source windows): top-1 / top-5 accuracy, beside the unigram guess
  (the commonest code of the *validation* split) and the neighbour guess (the code nearest to the
  sum of the visible latents on either side: interpolation, no learning).
- inpainting (Eq. 7, a gap in the middle of mixture windows): MR-STFT and log-spectral distance on
  the gap of BERT's fill (its predicted latents, and its sampled codes), of codes drawn from the
  mixtures' code frequencies, of silence, of the classic fillers (`gap_fillers.py`), and of the true
  tokens and latents decoded (the ceilings of a code fill and of a latent fill).
- separation (Eq. 8, every stem of a chunk in one pass, then Eq. 10): per stem, SI-SDR, SI-SDRi, BSS
  Eval SDR and MR-STFT distance of BERT's tokens decoded (the honest measure of its classification)
  and of its predicted latents (Eq. 11), each refined by the mixture; of the mixture (the baseline);
  of the mixture's own tokens and latents decoded (a BERT that only copied: the floor); of the true
  stem tokens (the oracle), raw and refined; of the true stem latents (the ceiling of a latent
  prediction with this decoder).
Every figure is a mean over held-out chunks with a 95% confidence interval and the chunk count.
Shapes: B batch, L context (frames), M frames per separation window, K codebook size, J stems.
"""
import numpy as np
import torch
import torch.nn.functional as F

from cli import autocast
from data import find_tracks, is_silent, read_source
from decoding import maskgit_fill
from evaluation import batched, decode_batch, evenly_spaced, rows
from files import UserError
from gap_fillers import LPC_CONTEXT, crossfade_fill, lpc_fill, repetition_fill
from masking import IGNORE, bert_mask, hidden_frames, middle_mask
from metrics import bss_sdr, log_spectral_distance, mean_ci95, mrstft_distance, si_sdr
from refine import refine
from tasks import INPAINT_STEPS, INPAINT_TEMPERATURE, SEPARATE_STEPS, separate_all, single_source_inputs
from tokens import TokenCache, build_token_cache, cache_folder, vqvae_fingerprint

SEPARATION_SECONDS = 2.0  # length of each separation chunk
STEM_SILENCE_DB = -40.0  # a stem quieter than this in a chunk is not scored there (SI-SDR is undefined)


# ---- masked modelling ----

@torch.no_grad()
def evaluate_mlm(bert, vocab, cache, unigram_code, device, per_track=4, batch_size=16):
    """Plain BERT masking (15%, 80/10/10) of single-source windows of the full context, every chosen
    code predicted in one shot, against the unigram guess `unigram_code` and the neighbour guess."""
    L = bert.config.max_positions
    generator = torch.Generator().manual_seed(0)
    windows = [(row, w) for row in range(len(cache.sources)) for w in evenly_spaced(cache, L, per_track)]
    top1, top5, unigram, neighbours = [], [], [], []
    for batch in batched(windows, batch_size):
        tokens = torch.cat([rows(cache, row, [w], L) for row, w in batch])  # (B, L)
        features = torch.stack([cache.latents(row, a, a + L) for row, (_, a) in batch])  # (B, L, D)
        inputs, labels = bert_mask(tokens, vocab, generator)
        batch_inputs = single_source_inputs(inputs, features, hidden=hidden_frames(inputs, labels, vocab))
        with autocast(device):
            (logits, _), _ = bert(**{key: value.to(device) for key, value in batch_inputs.items()})  # (B, L, K)
        best5 = logits.float().topk(5, dim=-1).indices.cpu()  # (B, L, 5)
        chosen = labels != IGNORE  # (B, L)
        # neighbour baseline: the code nearest to the sum of the visible latents on either side
        visible = batch_inputs["features"]  # (B, L, D), zero where hidden
        around = F.pad(visible, (0, 0, 1, 0))[:, :-1] + F.pad(visible, (0, 0, 0, 1))[:, 1:]  # (B, L, D)
        neighbour = (around @ bert.codebook.cpu().t()).argmax(-1)  # (B, L)
        for b in range(len(batch)):
            truth, guesses = labels[b][chosen[b]], best5[b][chosen[b]]
            top1.append((guesses[:, 0] == truth).float().mean().item())
            top5.append((guesses == truth[:, None]).any(-1).float().mean().item())
            unigram.append((truth == unigram_code).float().mean().item())
            neighbours.append((neighbour[b][chosen[b]] == truth).float().mean().item())
    (a1, c1), (a5, c5), (u, cu), (n, cn) = map(mean_ci95, (top1, top5, unigram, neighbours))
    return {"windows": len(windows), "accuracy": a1, "accuracy_ci95": c1, "top5_accuracy": a5, "top5_accuracy_ci95": c5,
            "unigram_accuracy": u, "unigram_accuracy_ci95": cu, "neighbour_accuracy": n, "neighbour_accuracy_ci95": cn}


# ---- inpainting (Eq. 7) ----

def unigram_fill(tokens, masked, counts, generator):
    """(B, L) tokens with every `masked` code replaced by a draw from the unigram `counts` (K,)."""
    counts = torch.as_tensor(counts, dtype=torch.float64)  # (K,)
    draws = torch.multinomial(counts / counts.sum(), tokens.numel(), replacement=True, generator=generator)
    return torch.where(masked, draws.view(tokens.shape), tokens)


# what fills each gap, and its name in tables: BERT's sampled codes and its predicted latents (Eq. 11)
# decoded; codes drawn from the mixtures' frequencies; silence and the three classic fillers
# (gap_fillers.py); the true tokens and latents decoded (the ceilings of a code fill and a latent fill)
GAP_FILLS = {"bert_tokens": "BERT's codes", "bert_latent": "BERT's latents", "unigram": "unigram codes",
             "silence": "silence", "crossfade": "cross-fade", "lpc": "linear prediction", "repetition": "repetition",
             "oracle_tokens": "true tokens", "oracle_latent": "true latents"}


def gap_length(bert, vqvae, gap_seconds=None):
    """A gap in frames: `gap_seconds`, or a quarter of BERT's context (0.128 s with the shipped models)."""
    L, hop, rate = bert.config.max_positions, vqvae.hop, vqvae.config.sample_rate
    return L // 4 if gap_seconds is None else max(1, round(gap_seconds * rate / hop))


@torch.no_grad()
def gap_fills(bert, vqvae, vocab, cache, tracks, device, unigram, P, per_track=4, batch_size=16):
    """Fill a gap of P frames in the middle of `per_track` held-out mixture spans per track with every
    GAP_FILLS (only the classic ones where P is more than half BERT's context). BERT fills as
    `infer.py inpaint` does, from a window of its context centred on the gap. The cross-fade reads
    the gap's length of audio on each side, linear prediction LPC_CONTEXT samples, the repetition
    fill the whole track. `unigram`: code counts of mixtures (K,), or None for no unigram fill.
    Every draw is seeded. Yields, per gap, (track, the span's start in seconds, the span's audio,
    (a, b) the gap in its samples, {fill: (b - a,) audio})."""
    L, hop, rate = bert.config.max_positions, vqvae.hop, vqvae.config.sample_rate
    span = max(L, 3 * P)  # frames around each gap: BERT's window, or the gap and its length on each side
    gap = (span - P) // 2  # the gap's first frame in the span
    window = gap - (L - P) // 2  # BERT's window in the span (the gap at its centre)
    a, b = gap * hop, (gap + P) * hop
    mix_row = cache.sources.index("mix")
    generator, draws = torch.Generator(device=device).manual_seed(0), torch.Generator().manual_seed(1)
    track_audio = {}  # the repetition fill searches the whole track
    for batch in batched(evenly_spaced(cache, span, per_track), batch_size):
        fills = {}
        if P <= L // 2:
            firsts = [(t, first + window) for t, first in batch]
            tokens = rows(cache, mix_row, firsts, L)  # (B, L)
            inputs, labels = middle_mask(tokens, P, vocab)
            features = torch.stack([cache.latents(mix_row, f, f + L) for _, f in firsts])  # (B, L, D)
            hidden = hidden_frames(inputs, labels, vocab)  # (B, L) the gap
            batch_inputs = single_source_inputs(inputs, features, hidden=hidden)
            with autocast(device):
                filled, latents = maskgit_fill(bert, {key: value.to(device) for key, value in batch_inputs.items()},
                                               vocab.mask, INPAINT_STEPS, INPAINT_TEMPERATURE, generator, record=True)
            fills = {"bert_tokens": filled.cpu(), "bert_latent": torch.where(hidden[..., None], latents.cpu(), features),
                     "oracle_tokens": tokens, "oracle_latent": features}
            if unigram is not None:
                fills["unigram"] = unigram_fill(tokens, labels != IGNORE, unigram, draws)
            fills = {name: decode_batch(vqvae, value, device)[:, (L - P) // 2 * hop:((L - P) // 2 + P) * hop]
                     for name, value in fills.items()}  # (B, P * hop) the gap
        for i, (t, first) in enumerate(batch):
            if t not in track_audio:
                start, end = cache.track_range(t)
                track_audio[t] = (read_source(tracks[t], "mix", rate, 0.0, (end - start) * hop / rate),
                                  np.asarray(cache.latents(mix_row, start, end)))
            audio, latents_of_track = track_audio[t]
            offset = (first - cache.track_range(t)[0]) * hop  # the span's first sample in the track
            around = audio[offset:offset + span * hop]
            before, after = around[a - (b - a):a], around[b:b + (b - a)]
            ga, gb = offset + a, offset + b  # the gap in the track
            classic = {"silence": np.zeros(b - a, np.float32), "crossfade": crossfade_fill(before, after),
                       "lpc": lpc_fill(audio[max(0, ga - LPC_CONTEXT):ga], audio[gb:gb + LPC_CONTEXT], b - a),
                       "repetition": repetition_fill(audio, latents_of_track, hop, offset // hop + gap, P)}
            yield t, offset / rate, around, (a, b), {**{name: values[i] for name, values in fills.items()}, **classic}


def evaluate_inpainting(bert, vqvae, vocab, cache, tracks, device, unigram, gap_seconds=None):
    """Eq. 7 on gaps in the middle of held-out mixture windows, a quarter of BERT's context long (or
    `gap_seconds`), each filled by every GAP_FILLS (`gap_fills`) and scored on the gap by the MR-STFT
    distance and the log-spectral distance. Silent gaps are not scored."""
    P, L = gap_length(bert, vqvae, gap_seconds), bert.config.max_positions
    scores = {}
    for _, _, around, (a, b), fills in gap_fills(bert, vqvae, vocab, cache, tracks, device, unigram, P):
        if is_silent(around[a:b], -50.0):
            continue
        for name, fill in fills.items():
            scores.setdefault(f"mrstft_{name}", []).append(mrstft_distance(around[a:b], fill))
            scores.setdefault(f"lsd_db_{name}", []).append(log_spectral_distance(around[a:b], fill))
    results = {"gaps": len(scores["mrstft_silence"]), "gap_tokens": P, "gap_seconds": P * vqvae.hop / vqvae.config.sample_rate,
               "decoding_steps": INPAINT_STEPS, "decoding_temperature": INPAINT_TEMPERATURE,
               "bert": "fills this gap" if P <= L // 2 else f"fills at most {L // 2} tokens"}
    for key, values in scores.items():
        results[key], results[key + "_ci95"] = mean_ci95(values)
    return results


# ---- separation (Eq. 8), refined by the mixture (Eq. 10) ----

# what is scored against each stem, and its name in tables: BERT's tokens and its predicted latents,
# each refined; the mixture; the mixture's own tokens and latents (a BERT that only copied); the
# oracle tokens, refined; the stem's own latents (the continuous ceiling)
CANDIDATES = {"tokens": "BERT's tokens", "refined": "tokens, refined", "latent": "BERT's latents",
              "latent_refined": "latents, refined", "mixture": "mixture", "mixture_tokens": "floor: mixture's tokens",
              "mixture_latent": "floor: mixture's latents", "oracle": "oracle tokens",
              "oracle_refined": "oracle tokens, refined", "stem_latent": "ceiling: stem's latents"}


def separation_scores(reference, estimate):
    """Every separation metric of one estimate against its true stem (1-D arrays)."""
    return {"si_sdr_db": si_sdr(reference, estimate), "bss_sdr_db": bss_sdr(reference, estimate),
            "mrstft": mrstft_distance(reference, estimate)}


@torch.no_grad()
def evaluate_separation(bert, vqvae, vocab, cache, tracks, device, per_track=4):
    """Eq. 8 and Eq. 10 on held-out chunks of SEPARATION_SECONDS, `per_track` per track, through the
    sliding windows of `infer.py separate` (one decoding step): every stem of a chunk in one batched
    pass, decoded, refined. A stem silent in a chunk (or missing from the track) is not scored there.
    Returns {stem: {"chunks", "metrics": {candidate: {metric: mean, metric_ci95, si_sdri_db...}}}}."""
    hop, rate = vqvae.hop, vqvae.config.sample_rate
    frames = int(SEPARATION_SECONDS * rate) // hop
    stems, mix_row = list(vocab.stems), cache.sources.index("mix")
    scores = {stem: {c: {m: [] for m in ("si_sdr_db", "bss_sdr_db", "mrstft")} for c in CANDIDATES} for stem in stems}
    for t, first in evenly_spaced(cache, frames, per_track):
        start = (first - cache.track_range(t)[0]) * hop / rate
        mixture_audio = read_source(tracks[t], "mix", rate, start, frames * hop / rate)  # (T,)
        references = [read_source(tracks[t], stem, rate, start, frames * hop / rate) for stem in stems]
        active = [j for j, reference in enumerate(references) if not is_silent(reference, STEM_SILENCE_DB)]
        if not active:
            continue
        mixture = rows(cache, mix_row, [(t, first)], frames)[0]  # (S,)
        features = cache.latents(mix_row, first, first + frames)  # (S, D)
        truth = torch.cat([rows(cache, cache.sources.index(stem), [(t, first)], frames) for stem in stems])  # (J, S)
        stem_latents = torch.stack([cache.latents(cache.sources.index(stem), first, first + frames) for stem in stems])
        with autocast(device):
            predicted = separate_all(bert, vocab, mixture, features, stems, SEPARATE_STEPS)
        mix = torch.from_numpy(mixture_audio)
        candidates = {name: decode_batch(vqvae, predicted[name], device) for name in ("tokens", "latent")}
        candidates.update({"mixture": np.stack([mixture_audio] * len(stems)),
                           "mixture_tokens": np.repeat(decode_batch(vqvae, mixture[None], device), len(stems), axis=0),
                           "mixture_latent": np.repeat(decode_batch(vqvae, features[None], device), len(stems), axis=0),
                           "oracle": decode_batch(vqvae, truth, device),
                           "stem_latent": decode_batch(vqvae, stem_latents, device)})  # (J, T) each
        for name, refined in (("tokens", "refined"), ("latent", "latent_refined"), ("oracle", "oracle_refined")):
            candidates[refined] = refine(mix, torch.from_numpy(candidates[name])).numpy()  # Eq. 10, (J + 1, T)
        for j in active:
            for name, waves in candidates.items():
                for metric, value in separation_scores(references[j], waves[j]).items():
                    scores[stems[j]][name][metric].append(value)
    separation = {}
    for stem in stems:
        mixture_si_sdr = np.array(scores[stem]["mixture"]["si_sdr_db"])
        if not len(mixture_si_sdr):
            continue
        metrics = {}
        for name, values in scores[stem].items():
            metrics[name] = {}
            for metric, per_chunk in values.items():
                metrics[name][metric], metrics[name][metric + "_ci95"] = mean_ci95(per_chunk)
            if name != "mixture":  # SI-SDR improvement over the mixture, paired per chunk
                metrics[name]["si_sdri_db"], metrics[name]["si_sdri_db_ci95"] = mean_ci95(
                    np.array(values["si_sdr_db"]) - mixture_si_sdr)
        separation[stem] = {"chunks": len(mixture_si_sdr), "metrics": metrics}
    return separation


# ---- all of BERT's figures ----

def held_out_tokens(vqvae, vocab, data_root, split, cache_root, device):
    """(split cache, validation cache, split tracks), tokenized once into the cache beside the VQ-VAE."""
    folder = cache_folder(cache_root, data_root, vqvae_fingerprint(vqvae))
    for name in ("validation", split):
        build_token_cache(vqvae, data_root, name, folder, vocab.stems, device)
    return TokenCache(folder, split), TokenCache(folder, "validation"), find_tracks(data_root, split)


def evaluate_bert(bert, vocab, vqvae, cache, validation, tracks, device, gap_seconds=()):
    """Every BERT figure on one split; the unigram guesses come from the validation split, never the test.
    `gap_seconds`: further inpainting gaps (`inpainting_gaps`; one longer than half the context is
    scored with the classic fillers only, one longer than a third of every track is left out with a
    note saying so)."""
    unigram_code = int(validation.code_counts(vocab.num_codes).argmax())  # the commonest code
    mixture_counts = validation.code_counts(vocab.num_codes, "mix")  # (K,) the unigram fill of inpainting
    results = {"mlm": evaluate_mlm(bert, vocab, cache, unigram_code, device),
               "inpainting": evaluate_inpainting(bert, vqvae, vocab, cache, tracks, device, mixture_counts)}
    if gap_seconds:
        results["inpainting_gaps"] = {}
        for seconds in gap_seconds:
            try:
                results["inpainting_gaps"][f"{seconds:g}"] = evaluate_inpainting(
                    bert, vqvae, vocab, cache, tracks, device, mixture_counts, gap_seconds=seconds)
            except UserError as error:  # every held-out track shorter than the gap and its length on each side
                results["inpainting_gaps"][f"{seconds:g}"] = {"skipped": str(error)}
    if vocab.stems:
        results["separation"] = evaluate_separation(bert, vqvae, vocab, cache, tracks, device)
    return results
