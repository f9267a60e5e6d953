"""Static listening pages: `evaluate.py --report DIR` and `infer.py separate ... --report` write index.html.

People judge audio by ear and by eye: a page is a table of clips, each with an audio player, its
spectrogram and its metric. `evaluate.py --report` shows a few held-out examples of separation (the
mixture, BERT's stem, the same refined by Eq. 10, the true stem, the oracle tokens decoded) and of
inpainting (a gap of each length, filled by BERT and by the classic fillers); `infer.py separate
--report` the stems it wrote, beside the true ones with `--reference`. Plain HTML, no JavaScript.
"""
import html
import re
from pathlib import Path

import numpy as np
import torch

from audio import write_audio
from cli import autocast
from data import is_silent, read_source
from evaluation import decode_batch, evenly_spaced, rows
from evaluation_bert import GAP_FILLS, SEPARATION_SECONDS, STEM_SILENCE_DB, gap_fills, gap_length
from files import UserError, atomic_write
from metrics import log_spectral_distance, mrstft_distance, si_sdr
from plots import spectrogram_figure
from refine import refine
from tasks import INPAINT_TEMPERATURE, separate_all


PAGE_FILLS = ("bert_tokens", "bert_latent", "crossfade", "lpc", "repetition")  # the inpainting clips, beside the original


def clip_row(folder, name, clips, sample_rate):
    """Write each (label, wave, metric text[, audio file]) clip's spectrogram, and its wav unless it names
    an audio file in `folder` already written; return an HTML table row."""
    cells = []
    for label, wave, metric, *audio in clips:
        stem = f"{name}-{re.sub('[^A-Za-z0-9]+', '_', label).strip('_')}"
        if not audio:
            audio = [f"{stem}.wav"]
            write_audio(folder / audio[0], wave, sample_rate)
        spectrogram_figure([(label, wave)], sample_rate, folder / f"{stem}.png")
        cells.append(f"<td><b>{html.escape(label)}</b> {html.escape(metric)}<br><audio controls src='{html.escape(audio[0])}'></audio>"
                     f"<br><img src='{stem}.png' width='360'></td>")
    return "<tr>" + "".join(cells) + "</tr>"


def write_page(folder, title, intro, sections):
    """folder/index.html: a heading, a paragraph, then one table per (heading, rows) section."""
    body = "".join(f"<h2>{html.escape(heading)}</h2><table>{''.join(lines)}</table>" for heading, lines in sections)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>body{{font-family:sans-serif}} td{{vertical-align:top;padding:4px}}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>{body}</body></html>\n")
    with atomic_write(folder / "index.html") as tmp:
        tmp.write_text(page)
    return folder / "index.html"


def separation_page(folder, input_path, first, paths, metrics, rate):
    """folder/index.html: the mixture, then a row per stem: the file written (played whole), what it was
    made from and the true stem (the first segment of each)."""
    lines = [clip_row(folder, "page", [(*first["mixture"][0], "")], rate)]
    for stem, path in paths.items():
        (label, wave), *others = first[stem]
        lines.append(clip_row(folder, "page", [(label, wave, metrics.get(stem, ""), path.name)]
                              + [(*clip, "") for clip in others], rate))
    return write_page(folder, f"audio-mlm: {Path(input_path).name} separated",
                      f"Model rate {rate} Hz. Spectrograms show the first segment of each file.", [("Stems", lines)])


@torch.no_grad()
def write_report(folder, bert, vqvae, vocab, cache, tracks, device, examples=3):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rate, hop = vqvae.config.sample_rate, vqvae.hop
    mix_row = cache.sources.index("mix")
    sections = []

    # ---- separation: one chunk per example track, every stem in one pass, then refined (Eq. 10) ----
    frames = int(SEPARATION_SECONDS * rate) // hop
    stems, lines = list(vocab.stems), []
    for t, first in evenly_spaced(cache, frames, 1)[:examples]:
        start = (first - cache.track_range(t)[0]) * hop / rate
        mixture_audio = read_source(tracks[t], "mix", rate, start, frames * hop / rate)
        mixture = rows(cache, mix_row, [(t, first)], frames)[0]  # (S,)
        features = cache.latents(mix_row, first, first + frames)
        with autocast(device):
            predicted = separate_all(bert, vocab, mixture, features, stems, tokens=False)["latent"]  # (J, S, D) Eq. 11's latents
        truth = torch.cat([rows(cache, cache.sources.index(stem), [(t, first)], frames) for stem in stems])  # (J, S)
        estimates, oracles = decode_batch(vqvae, predicted, device), decode_batch(vqvae, truth, device)  # (J, T)
        refined = refine(torch.from_numpy(mixture_audio), torch.from_numpy(estimates)).numpy()  # (J + 1, T)
        for j, stem in enumerate(stems):
            reference = read_source(tracks[t], stem, rate, start, frames * hop / rate)
            if is_silent(reference, STEM_SILENCE_DB):
                continue
            lines.append(f"<tr><th colspan='5'>{html.escape(tracks[t].name)} at {start:.2f} s: {stem}</th></tr>")
            lines.append(clip_row(folder, f"sep-{t}-{stem}", [
                ("mixture", mixture_audio, f"SI-SDR {si_sdr(reference, mixture_audio):.1f} dB"),
                ("separated (latent)", estimates[j], f"SI-SDR {si_sdr(reference, estimates[j]):.1f} dB"),
                ("refined", refined[j], f"SI-SDR {si_sdr(reference, refined[j]):.1f} dB"),
                ("true stem", reference, ""),
                ("oracle tokens", oracles[j], f"SI-SDR {si_sdr(reference, oracles[j]):.1f} dB")], rate))
    sections.append(("Separation (Eq. 8, then Eq. 10), SI-SDR against the true stem", lines))

    # ---- inpainting: a gap of each length in a mixture, filled by BERT and by the classic fillers ----
    lines, L = [], bert.config.max_positions
    for seconds in (None, L // 2 * hop / rate, 0.5, 1.0):  # a quarter and half the context, then longer than BERT fills
        P = gap_length(bert, vqvae, seconds)
        try:
            for t, start, around, (a, b), fills in gap_fills(bert, vqvae, vocab, cache, tracks, device, None, P,
                                                             per_track=1, batch_size=1):
                if is_silent(around[a:b], -50.0):
                    continue
                lines.append(f"<tr><th colspan='6'>{html.escape(tracks[t].name)} at {start:.2f} s: a gap of "
                             f"{P * hop / rate:.3f} s, {a / rate:.3f}-{b / rate:.3f} s</th></tr>")
                lines.append(clip_row(folder, f"inp-{P}-{t}", [("original", around, "")] + [
                    (GAP_FILLS[name], np.concatenate([around[:a], fills[name], around[b:]]), f"MR-STFT "
                     f"{mrstft_distance(around[a:b], fills[name]):.2f}, LSD {log_spectral_distance(around[a:b], fills[name]):.1f} dB")
                    for name in PAGE_FILLS if name in fills], rate))
                break
        except UserError:  # every track shorter than the gap and its length on each side: no row
            continue
    sections.append(("Inpainting (Eq. 7): MR-STFT and log-spectral distance on the gap (lower is better)", lines))

    return write_page(folder, "audio-mlm: held-out examples", f"Decoded as infer.py decodes (separation: the predicted "
                      f"latents; inpainting: codes sampled at temperature {INPAINT_TEMPERATURE:g}, beside the "
                      f"predicted latents); audio at {rate} Hz.", sections)
