"""BERT's held-out figures against honest baselines and an oracle ceiling (the tokenizer's are in
`evaluation.py`, whose chunk and decoding helpers these share). `evaluate.py` prints and saves them.

- mlm (BERT, plain 15% masking of single-source windows): top-1 / top-5 accuracy, beside the
  unigram baseline (always guess the most frequent code of the *validation* split).
- inpainting (Eq. 7, gaps in mixtures, against silence, a cross-fade, context-free codes and the
  oracle): in `evaluation_inpainting.py`.
- separation (Eq. 8, every stem of a chunk in one batched pass, then Eq. 10): per stem, SI-SDR,
  SI-SDRi, BSS Eval SDR, MR-STFT and log-mel distances of BERT's tokens decoded (token-only, the
  honest measure of BERT), of those refined by the mixture, of the unprocessed mixture (the
  baseline), of the true stem tokens decoded (the oracle) and of the oracle refined; SI-SDRi
  against the number of decoding steps and for several refinement settings; and the mixture-use
  check: accuracy of the fully masked stem tokens given the true mixture vs another track's.
Every figure is a mean over held-out chunks with a 95% confidence interval and the chunk count.
"""
import numpy as np
import torch
import torch.nn.functional as F

from cli import autocast
from data import find_tracks, is_silent, read_source
from evaluation import batched, decode_batch, evenly_spaced, level_prefixes, rows
from files import UserError
from masking import IGNORE, bert_mask, hidden_frames
from metrics import bss_sdr, log_mel_distance, mean_ci95, mrstft_distance, si_sdr
from refine import FFT_SIZE, ITERATIONS, POWER, RESIDUAL, refine
from evaluation_inpainting import INPAINT_STEPS, evaluate_inpainting
from tasks import separate_all, separation_inputs, single_source_inputs, source_segment
from tokens import TokenCache, build_token_cache, cache_folder, vqvae_fingerprint

DEFAULT_STEPS = 1  # decoding steps of the headline separation figures (infer.py separate's default)
SEPARATION_SECONDS = 2.0  # length of each separation chunk
STEM_SILENCE_DB = -40.0  # a stem quieter than this in a chunk is not scored there (SI-SDR is undefined)
TWIN_COSINE = 0.99  # two level-1 codes this close are "twins": nearly one vector, that a cosine head can hardly tell apart


def evaluate_mlm(bert, vocab, cache, unigram_code, device, per_track=4, batch_size=16):
    """Plain BERT masking (15%, 80/10/10) of single-source windows of the full context.

    Two baselines: the unigram guess (the most frequent code), and the neighbour guess (the code
    nearest to the sum of the visible latents just before and after: interpolation, no learning).
    Frames of Q > 1 codes: a chosen frame is masked at every level and every level is predicted
    in one shot; the headline figures are level 1's (the coarse code, comparable to one codebook),
    `*_by_level` holds each level's, against its own unigram guess (`unigram_code` (Q,)); the
    neighbour guess is level 1's.

    Twins (level 1): `twin_accuracy` also counts a top-1 guess whose code vector has cosine >=
    TWIN_COSINE to the true one's; `unigram_code_twins` is how many codes are twins of the unigram
    code; `most_predicted_code` / `_share` is BERT's commonest top-1 guess and its share of the
    masked frames (with `unigram_code`, says whether BERT's guess sits on a twin of the common code).
    """
    L, Q = bert.config.max_positions, bert.config.codebooks
    codebook = bert.codebook if Q == 1 else bert.codebook[0]  # (K, D) level 1
    codes = codebook.float().cpu()  # (K, D) unit vectors, for the twin figures
    unigram_code = torch.as_tensor(unigram_code).reshape(Q)  # (Q,)
    generator = torch.Generator().manual_seed(0)
    windows = [(row, w) for row in range(len(cache.sources)) for w in evenly_spaced(cache, L, per_track)]
    top1, top5, unigram = ([[] for _ in range(Q)] for _ in range(3))  # per level
    neighbours, twins, guessed = [], [], torch.zeros(len(codebook), dtype=torch.long)  # level 1
    for batch in batched(windows, batch_size):
        tokens = torch.cat([rows(cache, row, [w], L) for row, w in batch])  # (B, L) or (B, L, Q)
        features = torch.stack([cache.latents(row, a, a + L) for row, (_, a) in batch])  # (B, L, D)
        inputs, labels = bert_mask(tokens, vocab, generator)
        segments = torch.tensor([source_segment(bert.config, cache.sources[row]) for row, _ in batch])  # (B,)
        batch_inputs = single_source_inputs(inputs, features, hidden=hidden_frames(inputs, labels, vocab), segment=segments)
        with autocast(device):
            logits, _ = bert(**{key: value.to(device) for key, value in batch_inputs.items()})
        best5 = logits.float().topk(5, dim=-1).indices.cpu().reshape(*tokens.shape[:2], Q, 5)  # (B, L, Q, 5)
        labels = labels.reshape(*tokens.shape[:2], Q)  # (B, L, Q)
        chosen = labels[..., 0] != IGNORE  # (B, L) a frame's levels are chosen together
        # neighbour baseline: the code nearest to the sum of the visible latents on either side
        visible = batch_inputs["features"]  # (B, L, D), zero where hidden
        around = F.pad(visible, (0, 0, 1, 0))[:, :-1] + F.pad(visible, (0, 0, 0, 1))[:, 1:]  # (B, L, D)
        neighbour = (around @ codebook.cpu().t()).argmax(-1)  # (B, L)
        for b in range(len(batch)):
            for q in range(Q):
                truth, guesses = labels[b, :, q][chosen[b]], best5[b, :, q][chosen[b]]
                top1[q].append((guesses[:, 0] == truth).float().mean().item())
                top5[q].append((guesses == truth[:, None]).any(-1).float().mean().item())
                unigram[q].append((truth == unigram_code[q]).float().mean().item())
            neighbours.append((neighbour[b][chosen[b]] == labels[b, :, 0][chosen[b]]).float().mean().item())
            truth, guess = labels[b, :, 0][chosen[b]], best5[b, :, 0, 0][chosen[b]]
            twins.append(((codes[guess] * codes[truth]).sum(-1) >= TWIN_COSINE).float().mean().item())
            guessed += torch.bincount(guess, minlength=len(codebook))
    (a1, c1), (a5, c5), (u, cu), (n, cn), (t, ct) = map(mean_ci95, (top1[0], top5[0], unigram[0], neighbours, twins))
    common = int(unigram_code[0])
    results = {"windows": len(windows), "accuracy": a1, "accuracy_ci95": c1, "top5_accuracy": a5,
               "top5_accuracy_ci95": c5, "unigram_accuracy": u, "unigram_accuracy_ci95": cu,
               "neighbour_accuracy": n, "neighbour_accuracy_ci95": cn, "twin_accuracy": t, "twin_accuracy_ci95": ct,
               "unigram_code": common, "unigram_code_twins": int((codes @ codes[common] >= TWIN_COSINE).sum()) - 1,
               "most_predicted_code": int(guessed.argmax()), "most_predicted_share": guessed.max().item() / guessed.sum().item()}
    if Q > 1:
        for key, values in (("accuracy", top1), ("top5_accuracy", top5), ("unigram_accuracy", unigram)):
            results[key + "_by_level"] = [mean_ci95(v)[0] for v in values]
    return results


# ---- separation (Eq. 8), refined by the mixture (Eq. 10) ----

# what is scored against each stem; "mixture_tokens" decodes the mixture's own tokens for every stem:
# what a BERT that only copied the mixture would score (the tokenizer's floor for token-only separation)
# "expected" decodes BERT's expected code vectors instead of its tokens (soft decoding, tasks.py)
CANDIDATES = ("tokens", "refined", "expected", "expected_refined", "mixture", "mixture_tokens", "oracle", "oracle_refined")
SEPARATION_METRICS = ("si_sdr_db", "bss_sdr_db", "mrstft", "log_mel_distance")
# Eq. 10 settings scored side by side on the same token estimates (`separation_refinement`); choose
# among them on the validation split, never the test split. The first is refine.py's default.
def variant_name(options):
    return f"p{options['power']:g}_{options['residual']}_it{options['iterations']}_fft{options['fft_size']}"


REFINE_VARIANTS = {variant_name(v): v for v in [
    dict(power=POWER, residual=RESIDUAL, iterations=ITERATIONS, fft_size=FFT_SIZE),  # the default
    *(dict(power=power, residual=residual, iterations=1, fft_size=FFT_SIZE)
      for power in (1.0, 2.0) for residual in ("leftover", "difference")),
    dict(power=POWER, residual=RESIDUAL, iterations=ITERATIONS + 1, fft_size=FFT_SIZE),
    dict(power=POWER, residual=RESIDUAL, iterations=ITERATIONS, fft_size=FFT_SIZE // 2)]}


def separation_scores(reference, estimate, sample_rate):
    """Every separation metric of one estimate against its true stem (1-D arrays)."""
    return {"si_sdr_db": si_sdr(reference, estimate), "bss_sdr_db": bss_sdr(reference, estimate),
            "mrstft": mrstft_distance(reference, estimate),
            "log_mel_distance": log_mel_distance(reference, estimate, sample_rate)}


def summary(scores, mixture_si_sdr):
    """{metric: [per chunk]} -> {metric: mean, metric_ci95: half-width}, with SI-SDRi paired per chunk."""
    out = {}
    for metric, values in scores.items():
        out[metric], out[metric + "_ci95"] = mean_ci95(values)
    out["si_sdri_db"], out["si_sdri_db_ci95"] = mean_ci95(np.array(scores["si_sdr_db"]) - mixture_si_sdr)
    return out


@torch.no_grad()
def evaluate_separation(bert, vqvae, vocab, cache, tracks, device, seconds=SEPARATION_SECONDS, per_track=4,
                        steps_list=(1, 4, 8, 16), default_steps=1, steps_per_track=1, mixture_priors=()):
    """Eq. 8 and Eq. 10 on held-out chunks of `seconds`, `per_track` per track, through the sliding
    windows of `infer.py separate`: every stem of a chunk in one batched pass, decoded, refined.

    A stem silent in a chunk (or missing from the track) is not scored there. The SI-SDRi by
    decoding steps is scored on the first `steps_per_track` chunks of each track only (8 and 16
    steps cost 8 and 16 passes). With Q > 1 levels, BERT's tokens are also decoded from their
    first n levels only (`by_levels`, n = 1, 2, 4 ... Q): do the finer levels it predicts help?
    Each weight of `mixture_priors` decodes every chunk again with that mixture prior
    (`tasks.separate_all`), token-only and soft (`by_prior`).
    """
    hop, rate = vqvae.hop, vqvae.config.sample_rate
    frames = int(seconds * rate) // hop
    stems, mix_row = list(vocab.stems), cache.sources.index("mix")
    scores = {stem: {c: {m: [] for m in SEPARATION_METRICS} for c in CANDIDATES} for stem in stems}
    by_steps = {stem: {steps: [] for steps in steps_list} for stem in stems}  # SI-SDRi per chunk
    by_variant = {name: {stem: [] for stem in stems} for name in REFINE_VARIANTS}
    prefixes = level_prefixes(vqvae.codebooks)[:-1]  # fewer levels than all (none for Q = 1)
    by_levels = {n: {stem: [] for stem in stems} for n in prefixes}  # token-only SI-SDRi per chunk
    by_prior = {(w, kind): {stem: [] for stem in stems} for w in mixture_priors for kind in ("tokens", "expected")}
    chunk_of_track = {}
    for t, first in evenly_spaced(cache, frames, per_track):
        chunk_of_track[t] = chunk_of_track.get(t, -1) + 1
        start = (first - cache.track_range(t)[0]) * hop / rate
        mixture_audio = read_source(tracks[t], "mix", rate, start, frames * hop / rate)  # (T,)
        references = [read_source(tracks[t], stem, rate, start, frames * hop / rate) for stem in stems]
        active = [j for j, reference in enumerate(references) if not is_silent(reference, STEM_SILENCE_DB)]
        if not active:
            continue
        mixture = torch.from_numpy(cache.tokens[mix_row, first:first + frames].astype(np.int64))  # (S,)
        features = cache.latents(mix_row, first, first + frames)  # (S, D)
        truth = torch.from_numpy(np.stack([cache.tokens[cache.sources.index(stem), first:first + frames]
                                           for stem in stems]).astype(np.int64))  # (J, S)
        with autocast(device):
            predicted, soft = separate_all(bert, vocab, mixture, features, stems, steps=default_steps,
                                           code_vectors=vqvae.quantizer.code_vectors().detach())  # (J, S), (J, S, D)
        estimates = decode_batch(vqvae, predicted, device)  # (J, T)
        expected = decode_batch(vqvae, soft, device)  # (J, T)
        oracles = decode_batch(vqvae, truth, device)  # (J, T)
        mix = torch.from_numpy(mixture_audio)
        candidates = {"tokens": estimates, "refined": refine(mix, torch.from_numpy(estimates)).numpy(),
                      "expected": expected, "expected_refined": refine(mix, torch.from_numpy(expected)).numpy(),
                      "mixture": np.stack([mixture_audio] * len(stems)),
                      "mixture_tokens": np.repeat(decode_batch(vqvae, mixture[None], device), len(stems), axis=0),
                      "oracle": oracles,
                      "oracle_refined": refine(mix, torch.from_numpy(oracles)).numpy()}
        baseline = {j: si_sdr(references[j], mixture_audio) for j in active}
        for j in active:
            for name, waves in candidates.items():
                for metric, value in separation_scores(references[j], waves[j], rate).items():
                    scores[stems[j]][name][metric].append(value)
        for name, options in REFINE_VARIANTS.items():
            refined = refine(mix, torch.from_numpy(estimates), **options).numpy()
            for j in active:
                by_variant[name][stems[j]].append(si_sdr(references[j], refined[j]) - baseline[j])
        for n in prefixes:
            coarse = decode_batch(vqvae, predicted, device, levels=n)  # (J, T) from the first n levels
            for j in active:
                by_levels[n][stems[j]].append(si_sdr(references[j], coarse[j]) - baseline[j])
        for weight in mixture_priors:
            with autocast(device):
                biased, biased_soft = separate_all(bert, vocab, mixture, features, stems, steps=default_steps,
                                                   code_vectors=vqvae.quantizer.code_vectors().detach(),
                                                   mixture_prior=weight)
            for kind, waves in (("tokens", decode_batch(vqvae, biased, device)),
                                ("expected", decode_batch(vqvae, biased_soft, device))):
                for j in active:
                    by_prior[weight, kind][stems[j]].append(si_sdr(references[j], waves[j]) - baseline[j])
        if chunk_of_track[t] < steps_per_track:
            for steps in steps_list:
                waves = estimates
                if steps != default_steps:
                    with autocast(device):
                        waves = decode_batch(vqvae, separate_all(bert, vocab, mixture, features, stems, steps=steps), device)
                for j in active:
                    by_steps[stems[j]][steps].append(si_sdr(references[j], waves[j]) - baseline[j])
    separation = {}
    for stem in stems:
        mixture_si_sdr = np.array(scores[stem]["mixture"]["si_sdr_db"])
        if not len(mixture_si_sdr):
            continue
        metrics = {name: summary(values, mixture_si_sdr) for name, values in scores[stem].items()}
        del metrics["mixture"]["si_sdri_db"], metrics["mixture"]["si_sdri_db_ci95"]  # 0 by definition
        tokens, refined = metrics["tokens"], metrics["refined"]
        separation[stem] = {"chunks": len(mixture_si_sdr),
                            "si_sdri_db": tokens["si_sdri_db"], "si_sdri_db_ci95": tokens["si_sdri_db_ci95"],
                            "si_sdr_db": tokens["si_sdr_db"], "mixture_si_sdr_db": metrics["mixture"]["si_sdr_db"],
                            "oracle_si_sdr_db": metrics["oracle"]["si_sdr_db"],
                            "mixture_tokens_si_sdri_db": metrics["mixture_tokens"]["si_sdri_db"],
                            "oracle_si_sdri_db": metrics["oracle"]["si_sdri_db"],
                            "refined_si_sdri_db": refined["si_sdri_db"], "refined_si_sdri_db_ci95": refined["si_sdri_db_ci95"],
                            "refined_si_sdr_db": refined["si_sdr_db"],
                            "expected_si_sdri_db": metrics["expected"]["si_sdri_db"],
                            "expected_si_sdri_db_ci95": metrics["expected"]["si_sdri_db_ci95"],
                            "expected_refined_si_sdri_db": metrics["expected_refined"]["si_sdri_db"],
                            "oracle_refined_si_sdri_db": metrics["oracle_refined"]["si_sdri_db"], "metrics": metrics}
    steps = {"chunk_seconds": frames * hop / rate, "default_steps": default_steps, "chunks_per_track": steps_per_track,
             "si_sdri_db": {str(n): {stem: mean_ci95(by_steps[stem][n])[0] for stem in separation if by_steps[stem][n]}
                            for n in steps_list}}
    if prefixes:  # token-only SI-SDRi from the first n levels of BERT's tokens; all Q levels are `separation`'s
        steps["si_sdri_db_by_levels"] = {str(n): {stem: mean_ci95(by_levels[n][stem])[0] for stem in separation}
                                         for n in prefixes}
    if mixture_priors:  # SI-SDRi (mean, ci95) with each mixture prior weight, BERT's tokens and soft decoding
        steps["si_sdri_db_by_mixture_prior"] = {
            f"{w:g}": {kind: {stem: mean_ci95(by_prior[w, kind][stem]) for stem in separation}
                       for kind in ("tokens", "expected")} for w in mixture_priors}
    refinement = {"default": next(iter(REFINE_VARIANTS)), "variants": REFINE_VARIANTS,
                  "si_sdri_db": {name: {stem: mean_ci95(values[stem])[0] for stem in separation}
                                 for name, values in by_variant.items()}}
    return separation, steps, refinement

@torch.no_grad()
def mixture_use_check(bert, vocab, cache, device, per_track=4):
    """One-shot accuracy on fully masked stem tokens with the true mixture vs another track's.

    If BERT ignored the mixture (the failure of the first prototype), both would be equal.
    `mixture_copy`: the accuracy of the mixture's own token at each frame as the guess, the
    baseline of a BERT that only copied (level 1 with Q > 1).
    """
    M = (bert.config.max_positions - 1) // 2
    windows = evenly_spaced(cache, M, per_track)
    tracks = sorted({t for t, _ in windows})
    first_window = {t: a for t, a in reversed(windows)}
    mix_row = cache.sources.index("mix")
    correct = {"true_mixture": [], "other_mixture": [], "mixture_copy": []}
    for stem in vocab.stems:
        row = cache.sources.index(stem)
        active = [(t, a) for t, a in windows if cache.active[row, a:a + M].mean() >= 0.25]
        if not active:
            continue
        other = [(None, first_window[tracks[(tracks.index(t) + 1) % len(tracks)]]) for t, _ in active]
        truth = rows(cache, row, active, M)  # (B, M), or (B, M, Q)

        def accuracy(guess):  # (B,) per window; level 1 with Q > 1, the level decoded first
            return (guess == truth).float().mean(dim=1) if guess.dim() == 2 else (guess[..., 0] == truth[..., 0]).float().mean(dim=1)

        for name, source in (("true_mixture", active), ("other_mixture", other)):
            mixture = rows(cache, mix_row, source, M)
            if name == "true_mixture":
                correct["mixture_copy"].append(accuracy(mixture))
            features = torch.stack([cache.latents(mix_row, a, a + M) for _, a in source])
            inputs = separation_inputs(mixture, features, vocab.stem_separator(stem), vocab)
            with autocast(device):
                logits, _ = bert(**{key: value.to(device) for key, value in inputs.items()})
            correct[name].append(accuracy(logits[:, M + 1:].argmax(-1).cpu()))
    return {name: float(torch.cat(values).mean()) for name, values in correct.items() if values}


def held_out_tokens(vqvae, vocab, data_root, split, cache_root, device, stem_latents=True):
    """(split cache, validation cache, split tracks), tokenized once into the cache beside the VQ-VAE
    (with the stems' latents or without, as the BERT was trained: `BERTConfig.stem_latents`)."""
    folder = cache_folder(cache_root, data_root, vqvae_fingerprint(vqvae), stem_latents)
    for name in ("validation", split):
        build_token_cache(vqvae, data_root, name, folder, vocab.stems, device, stem_latents)
    return TokenCache(folder, split), TokenCache(folder, "validation"), find_tracks(data_root, split)


def evaluate_bert(bert, vocab, vqvae, cache, validation, tracks, device, separation_per_track=4,
                  separation_steps=(1, 4, 8, 16), steps_per_track=1, gap_seconds=(), inpaint_temperatures=(),
                  inpaint_steps=None, reveal_noises=(), mixture_priors=()):
    """Every BERT figure on one split; the unigram guess comes from the validation split, never the test.

    `gap_seconds`: further inpainting gaps, in seconds, scored with the headline decoding steps
    (`inpainting_gaps`; one longer than half the context is left out, with a note saying so).
    Every gap is also filled with each of `inpaint_steps` (the first is the headline; default:
    INPAINT_STEPS for the quarter-context gap, its first for the others), `inpaint_temperatures`
    and `reveal_noises`, one setting changed at a time.
    """
    counts = validation.code_counts(vocab.num_codes)  # (K,), or (Q, K): each level's unigram guess
    unigram_code = int(counts.argmax()) if counts.ndim == 1 else counts.argmax(axis=1)
    mixture_counts = validation.code_counts(vocab.num_codes, "mix")  # the unigram fill of inpainting
    results = {"mlm": evaluate_mlm(bert, vocab, cache, unigram_code, device),
               "inpainting": evaluate_inpainting(bert, vqvae, vocab, cache, tracks, device,
                                                 steps_list=inpaint_steps or INPAINT_STEPS,
                                                 temperatures=inpaint_temperatures, reveal_noises=reveal_noises,
                                                 unigram=mixture_counts)}
    if gap_seconds:
        results["inpainting_gaps"] = {}
        for seconds in gap_seconds:
            try:
                results["inpainting_gaps"][f"{seconds:g}"] = evaluate_inpainting(
                    bert, vqvae, vocab, cache, tracks, device, steps_list=inpaint_steps or INPAINT_STEPS[:1],
                    gap_seconds=seconds, temperatures=inpaint_temperatures, reveal_noises=reveal_noises,
                    unigram=mixture_counts)
            except UserError as error:
                results["inpainting_gaps"][f"{seconds:g}"] = {"skipped": str(error)}
    if vocab.stems:
        results["separation"], results["separation_steps"], results["separation_refinement"] = evaluate_separation(
            bert, vqvae, vocab, cache, tracks, device, per_track=separation_per_track, steps_list=separation_steps,
            default_steps=DEFAULT_STEPS if DEFAULT_STEPS in separation_steps else separation_steps[0],
            steps_per_track=steps_per_track, mixture_priors=mixture_priors)
        results["mixture_use"] = mixture_use_check(bert, vocab, cache, device)
    return results


