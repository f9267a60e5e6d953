"""Inference: audio -> tokens -> audio, and the two BERT tasks, separation and inpainting.

    python infer.py reconstruct song.flac          # writes song.recon.wav, prints SI-SDR
    python infer.py encode song.flac -o song.tokens.npy
    python infer.py decode song.tokens.npy -o song.recon.wav
    python infer.py separate mix.wav               # writes separated/mix/{bass,drums,guitar,piano}.wav
    python infer.py separate examples/timgm6mb-test.flac --reference examples/timgm6mb-test --report   # scored, index.html
    python infer.py separate mix.wav --refine none --decode tokens   # BERT's tokens decoded as they are
    python infer.py inpaint song.wav --start 2.0 --duration 0.1 -o filled.wav

Any file libsndfile reads is mixed down to mono and resampled to the model's rate (inputs.py). Token
files are .npy arrays of int16 code indices, (S,), one per 2^k samples (an (S, 1) file, as commits
before fe96be8 wrote them, is read as (S,)). `separate` separates every stem in one batched pass and
refines them by the mixture (Eq. 10, refine.py) on each channel of the file at its own rate
(`inputs.refine_native`); with `--refine none` BERT's output is written decoded, at the model's rate,
mono. An inpainted file is the input itself, at its rate, channels and sample format, but for the gap
and its fades. Files of any length are processed in segments (inputs.py); outputs are written
atomically, and an existing output is never replaced without `--overwrite`.
"""
import contextlib
import sys
from pathlib import Path

import numpy as np
import torch

from audio import audio_info, audio_writer, check_output_format, read_frames, resample
from cli import (ArgumentParser, add_device_flag, add_overwrite_flag, autocast, finite_float, non_negative_float,
                 pick_device, positive_float, positive_int, run_main)
from checkpoint import load_bert, load_vqvae
from data import read_file_chunk
from files import UserError, atomic_write, check_writable, refuse_existing
from inputs import (Loudness, decode_in_pieces, input_gain, input_length, kept_samples, kept_tokens, read_input,
                    reference_files, refine_native, segment_count, segment_size, segments, spans)
from metrics import RunningMRSTFT, RunningSISDR
from pretrained import default_models
from refine import CONTEXT_SAMPLES, refine
from tasks import INPAINT_STEPS, INPAINT_TEMPERATURE, SEPARATE_STEPS, inpaint_tokens, separate_all
from tokens import encode_waveform

SEGMENT_SECONDS = 30.0  # files are processed this much at a time (inputs.py): memory does not grow with length
CODEC_MARGIN = 32  # tokens read beside a segment for the encoder or the decoder (as their pieces use)
DECODE_MARGIN = 64  # inpainting: tokens decoded on each side of the gap (more than the decoder's reach)
CROSSFADE_SECONDS = 0.005  # inpainting: fade into and out of the filled gap


def decode_long(tokens, model, device):
    """(S,) tokens or (S, D) decoder inputs -> (S * 2^k,) float32 waveform, decoded in overlapping
    pieces (bounded memory)."""
    with torch.no_grad(), autocast(device):
        return decode_in_pieces(model, tokens.to(device)).float().cpu().numpy()


def default_output(input_path, suffix):
    """song.flac -> ./song<suffix>: outputs go to the current folder, never beside the input."""
    return Path(Path(input_path).stem + suffix)


def check_outputs(args, paths):
    """Refuse bad output names and existing outputs (without --overwrite) before any work."""
    check_writable(paths)
    for path in paths:
        if path.suffix.lower() not in (".png", ".npy", ".html"):
            check_output_format(path)
    refuse_existing(paths, args.overwrite)


# ---- the tokenizer alone ----

def command_encode(args, model, device):
    out = Path(args.output or default_output(args.input, ".tokens.npy"))
    if out.suffix != ".npy":
        raise UserError(f"{out}: token files are .npy arrays; name it {out.name}.npy")
    check_outputs(args, [out])
    parts, loudness = [], Loudness(args.input)
    for segment in segments(args, model, CODEC_MARGIN):
        tokens, _, _ = encode_waveform(model, segment.audio, device)  # no_grad, bf16 where the CPU has it
        parts.append(tokens[kept_tokens(segment, model.hop)])
        loudness.add(segment.kept)
    loudness.check()
    indices = torch.cat(parts)  # (S,)
    with atomic_write(out) as tmp:
        np.save(tmp, indices.numpy().astype(np.int16))
    print(f"{args.input}: {len(indices)} tokens ({model.config.sample_rate / model.hop:g} tokens/s) -> {out}")


def command_decode(args, model, device):
    path = Path(args.input)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a token file")
    try:
        tokens = np.load(path, mmap_mode="r", allow_pickle=False)  # read as it is decoded
    except Exception:
        raise UserError(f"{path}: not a token file (.npy of code indices)") from None
    if tokens.shape[1:] not in ((), (1,)) or tokens.size == 0 or not np.issubdtype(tokens.dtype, np.integer):
        raise UserError(f"{path}: expected integer code indices, (S,), got {tokens.dtype} {tokens.shape}")
    tokens = tokens.reshape(-1)  # (S,)
    if tokens.min() < 0 or tokens.max() >= model.config.num_codes:
        raise UserError(f"{path}: code indices outside 0..{model.config.num_codes - 1}; "
                        f"were they made with another tokenizer?")
    out = Path(args.output or path.name.removesuffix(".npy").removesuffix(".tokens") + ".recon.wav")
    check_outputs(args, [out])
    rate, hop = model.config.sample_rate, model.hop
    with audio_writer(out, rate) as write:
        size = segment_size(args.segment_seconds, rate / hop, CODEC_MARGIN, 1)  # in tokens
        for a, b, start, length in spans(len(tokens), size, CODEC_MARGIN):
            wave = decode_long(torch.from_numpy(tokens[a:b].astype(np.int64)), model, device)
            write(wave[(start - a) * hop:(start - a + length) * hop])
    print(f"{path}: {len(tokens)} tokens -> {len(tokens) * hop / rate:.2f} s -> {out}")


def command_reconstruct(args, model, device):
    out = Path(args.output or default_output(args.input, ".recon.wav"))
    check_outputs(args, [out] + ([out.with_suffix(".png")] if args.plot else []))
    rate = model.config.sample_rate
    score, spectral, loudness, first = RunningSISDR(), RunningMRSTFT(), Loudness(args.input), None
    with audio_writer(out, rate) as write:
        for segment in segments(args, model, 2 * CODEC_MARGIN):  # room for the encoder and the decoder
            tokens, _, _ = encode_waveform(model, segment.audio, device)
            wave = kept_samples(decode_long(tokens, model, device), segment)
            write(wave)
            loudness.add(segment.kept)
            score.add(segment.kept, wave)
            spectral.add(segment.kept, wave)
            first = first or (segment.kept, wave)
        loudness.check()
    seconds = loudness.count / rate
    print(f"{args.input}: {seconds:.2f} s, {-(-loudness.count // model.hop)} tokens -> {out}")
    print(f"SI-SDR {score.value():.2f} dB, MR-STFT distance {spectral.value():.3f} (at {rate} Hz, mono)")
    if args.plot:
        plot(out.with_suffix(".png"), [("input", first[0]), ("reconstruction", first[1])], rate)


def plot(path, panels, sample_rate):
    from plots import spectrogram_figure  # matplotlib only when a picture is asked for
    spectrogram_figure(panels, sample_rate, path)
    print(f"spectrograms -> {path}")


# ---- the BERT tasks ----

def load_pair(args, device):
    vqvae = load_vqvae(args.vqvae, device)
    return (vqvae, *load_bert(args.bert, vqvae, device))  # (vqvae, bert, vocab)


def progress_line(label):
    def show(done, total):
        print(f"\r{label}: window {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def chosen_stems(args, vocab):
    stems = [args.stem] if args.stem else list(vocab.stems)
    unknown = [s for s in stems if s not in vocab.stems]
    if unknown or not stems:
        raise UserError(f"{args.bert}: the model separates {', '.join(vocab.stems) or 'no stems'}, "
                        f"not {', '.join(unknown) or 'anything'}")
    return stems


def separation_margins(bert, hop, refining, native):
    """(align, margin) in tokens: segments start on multiples of BERT's window, so that a segment's
    windows are the whole file's (tasks.window_starts), and read beside them what BERT's windows, the
    codec's pieces and the refinement reach (at the input's rate, its frames reach one more frame)."""
    window = (bert.config.max_positions - 1) // 2
    refine_margin = -(-CONTEXT_SAMPLES * (2 if native else 1) // hop) if refining else 0
    return window, window + 2 * CODEC_MARGIN + refine_margin


def command_separate(args, device):
    """read -> tokens -> BERT -> decode -> refine -> write, a segment at a time; the scores against the
    true stems, the spectrograms and the listening page hang off it (`SeparationExtras`)."""
    vqvae, bert, vocab = load_pair(args, device)
    stems = chosen_stems(args, vocab)
    refining = args.refine == "mixture"
    separated = list(vocab.stems) if refining else stems  # Eq. 10 shares the mixture among every stem's estimate
    rate, hop = vqvae.config.sample_rate, vqvae.hop
    file_rate, file_frames, channels = audio_info(args.input)
    native = refining and (file_rate, channels) != (rate, 1)  # stems at the input's rate and channels (Eq. 10 per channel)
    out_rate, out_channels = (file_rate, channels) if native else (rate, 1)
    out = Path(args.out) / Path(args.input).stem
    paths = {stem: out / f"{stem}.wav" for stem in stems}
    extras = SeparationExtras(args, out, stems, rate, (file_rate, channels) if native else None)
    check_outputs(args, list(paths.values()) + extras.outputs)
    align, margin = separation_margins(bert, hop, refining, native)
    total = input_length(args.input, vqvae)
    count = segment_count(total, segment_size(args.segment_seconds, rate, margin * hop, align * hop))
    loudness = Loudness(args.input)
    with contextlib.ExitStack() as stack:  # every stem file is renamed into place only if all succeed
        writers = {stem: stack.enter_context(audio_writer(path, out_rate, out_channels)) for stem, path in paths.items()}
        for i, segment in enumerate(segments(args, vqvae, margin, align)):  # read
            mixture, features, _ = encode_waveform(vqvae, segment.audio, device)  # tokens (S,), latents (S, D)
            loudness.add(segment.kept)
            with autocast(device):  # BERT: every stem in one batched pass (Eq. 8, Eq. 11)
                estimates = separate_all(bert, vocab, mixture, features, separated, SEPARATE_STEPS,
                                         tokens=args.decode != "latent",
                                         progress=progress_line("separating" if count == 1 else f"segment {i + 1}/{count}"))
            estimates = estimates[args.decode]  # (J, S) tokens or (J, S, D) latents
            waves = np.stack([decode_long(e, vqvae, device)[:len(segment.audio)] for e in estimates])  # decode (J, samples)
            refined = refine(torch.from_numpy(segment.audio), torch.from_numpy(waves),
                             offset=segment.start - segment.offset).numpy() if refining else waves  # refine (Eq. 10)
            in_file = refine_native(args.input, segment, waves, rate, file_rate, file_frames) if native else None
            for stem in stems:
                j = separated.index(stem)
                written = in_file[0][j] if native else kept_samples(refined[j], segment)
                writers[stem](written)  # write
                extras.add(stem, segment, kept_samples(refined[j], segment), kept_samples(waves[j], segment), written, in_file)
        loudness.check()
    how = f"{args.decode} decoded" + (", refined by the mixture (Eq. 10)" if refining else ", not refined")
    for stem, path in paths.items():
        print(f"{args.input}: {stem} -> {path} ({total / rate:.2f} s at {out_rate} Hz, "
              f"{out_channels} channel{'s' if out_channels > 1 else ''}, {how})")
    extras.finish(args, paths)


class SeparationExtras:
    """What --reference, --plot and --report add to `command_separate`: SI-SDR of each stem as written
    against its true stem (and the mixture's, the baseline), and the first segment's clips for the
    spectrograms and the listening page."""

    def __init__(self, args, out, stems, rate, file_format):
        self.references, self.rate, self.out = reference_files(args, stems), rate, out
        # a reference in the format the stems are written in is scored as written, else at the model's rate, mono
        self.as_written = {stem for stem, path in self.references.items()
                           if file_format and audio_info(path)[::2] == file_format}
        self.where = {stem: f"{file_format[0]} Hz, {file_format[1]} channel(s)" if stem in self.as_written
                      else f"{rate} Hz mono" for stem in self.references}
        self.outputs = ([out / "spectrograms.png"] if args.plot else []) + ([out / "index.html"] if args.report else [])
        self.scores, self.mixture_scores = {}, {}
        self.first = {}  # {"mixture" or stem: [(label, wave)]}, the first segment's clips
        decoded = f"{args.decode} decoded"
        self.labels = ("refined (Eq. 10)", decoded) if args.refine == "mixture" else (decoded, None)

    def add(self, stem, segment, wave, unrefined, written, in_file):
        """One segment of one stem: `wave` at the model's rate, the `unrefined` estimate it came from,
        what was `written` and `in_file` (refine_native's output, when the stems keep the input's format)."""
        reference = None
        if stem in self.references:
            reference = read_file_chunk(self.references[stem], self.rate, segment.start, segment.length)
            if stem in self.as_written:  # what was written, against the true stem in the input's format
                _, original, first_frame, last_frame = in_file
                truth = read_frames(self.references[stem], first_frame, last_frame - first_frame).T  # (C, kept)
                estimate, mixture = written, original
            else:  # at the model's rate, mono
                truth, estimate, mixture = reference, wave, segment.kept
            self.scores.setdefault(stem, RunningSISDR()).add(truth, estimate)
            self.mixture_scores.setdefault(stem, RunningSISDR()).add(truth, mixture)
        self.first.setdefault("mixture", [("mixture", segment.kept)])
        if stem not in self.first:  # the stem as written, what it was refined from, the true stem
            self.first[stem] = [(f"{stem}, {self.labels[0]}", wave)]
            self.first[stem] += [(f"{stem}, {self.labels[1]}", unrefined)] if self.labels[1] else []
            self.first[stem] += [(f"true {stem}", reference)] if reference is not None else []

    def finish(self, args, paths):
        metrics = {}
        for stem, score in self.scores.items():
            try:
                metrics[stem] = f"SI-SDR {score.value():.2f} dB (the mixture: {self.mixture_scores[stem].value():.2f} dB)"
            except ValueError:
                raise UserError(f"{self.references[stem]}: the reference is silent, SI-SDR is undefined "
                                f"(the stems were written)") from None
            print(f"{stem}: {metrics[stem]} against {self.references[stem]}, at {self.where[stem]}")
        if args.plot:
            plot(self.out / "spectrograms.png", [clip for clips in self.first.values() for clip in clips], self.rate)
        if args.report:
            from report import separation_page  # matplotlib only when pictures are asked for
            page = separation_page(self.out, args.input, self.first, paths, metrics, self.rate)
            print(f"listening page -> {page}")


def command_inpaint(args, device):
    vqvae, bert, vocab = load_pair(args, device)
    total = input_length(args.input, vqvae)
    rate, hop = vqvae.config.sample_rate, vqvae.hop
    first = int(np.floor(args.start * rate / hop))
    last = int(np.ceil((args.start + args.duration) * rate / hop))  # gap = tokens first..last-1
    longest = bert.config.max_positions // 2
    if args.duration <= 0:
        raise UserError(f"--duration must be positive, got {args.duration:g}")
    if args.start < 0 or (args.start + args.duration) * rate > total:
        raise UserError(f"{args.input}: the gap from {args.start:g} s to {args.start + args.duration:g} s is not "
                        f"inside the file ({total / rate:.2f} s)")
    if last - first > longest:
        raise UserError(f"{args.input}: a gap of {args.duration:g} s is {last - first} tokens; this model fills at "
                        f"most {longest} tokens ({longest * hop / rate:.3f} s), half its context")
    out = Path(args.output or default_output(args.input, ".inpainted.wav"))
    check_outputs(args, [out] + ([out.with_suffix(".png")] if args.plot else []))
    # only the audio around the gap is encoded: BERT's context on each side, the decoder's margin, the encoder's
    fade = int(CROSSFADE_SECONDS * rate)
    margin = DECODE_MARGIN + fade // hop + 1
    reach = max(bert.config.max_positions, margin) + CODEC_MARGIN
    region_first, region_last = max(0, first - reach), min(-(-total // hop), last + reach)  # in tokens
    region = read_input(args.input, rate, region_first * hop, (region_last - region_first) * hop)
    with torch.no_grad(), autocast(device):
        tokens, features, _ = encode_waveform(vqvae, region, device)
        filled = inpaint_tokens(bert, vocab, tokens, features, first - region_first, last - first,
                                steps=args.steps, temperature=args.temperature,
                                generator=torch.Generator(device=device).manual_seed(args.seed))
    # decode around the gap only
    a, b = max(0, first - region_first - margin), min(len(filled), last - region_first + margin)
    with torch.no_grad(), autocast(device):
        local = vqvae.decode(filled[None, a:b].to(device)).float()[0, 0].cpu().numpy()  # from token a
    offset = region_first * hop  # region[i] is sample offset + i of the file, at the model's rate
    # the output is the input itself, at its own rate and channel count: BERT's audio, brought to that
    # rate and laid on each channel, replaces the gap and fades in and out of it; every other sample is
    # copied as the file holds it
    file_rate, file_frames, channels = audio_info(args.input)
    scale = file_rate / rate
    fill = resample(local, rate, file_rate) / np.float32(input_gain(args.input))  # (frames,) the file's scale
    fill_first = round((offset + a * hop) * scale)  # the file frame of fill[0]
    gap = (round(first * hop * scale), min(file_frames, round(last * hop * scale)))
    lo, hi, weight = crossfade_weights(*gap, round(CROSSFADE_SECONDS * file_rate), file_frames)
    fill = np.pad(fill[lo - fill_first:hi - fill_first], (0, hi - lo))[:hi - lo]  # (hi - lo,)
    loudness, size = Loudness(args.input), segment_size(args.segment_seconds, file_rate, 0, 1)
    with audio_writer(out, file_rate, channels, like=args.input) as write:
        for _, _, start, length in spans(file_frames, size, 0):
            x = read_frames(args.input, start, length)  # (length, C)
            loudness.add(x.mean(axis=1))
            x_first, x_last = max(start, lo), min(start + length, hi)
            if x_first < x_last:
                w = weight[x_first - lo:x_last - lo, None]  # (n, 1), 1 = BERT's audio
                x[x_first - start:x_last - start] = (1 - w) * x[x_first - start:x_last - start] + w * fill[x_first - lo:x_last - lo, None]
            write(x.T)
        loudness.check()
    print(f"{args.input}: filled {args.start:g}-{args.start + args.duration:g} s ({last - first} tokens, "
          f"{args.steps} decoding step{'s' if args.steps != 1 else ''}) -> {out} ({file_rate} Hz, {channels} channel(s))")
    if args.plot:  # half a second around the gap, at the model's rate, as far as the region reaches
        lo, hi, weight = crossfade_weights(first * hop, min(total, last * hop), int(CROSSFADE_SECONDS * rate), total)
        filled_region = region.copy()
        filled_region[lo - offset:hi - offset] += weight * (local[lo - offset - a * hop:hi - offset - a * hop] - region[lo - offset:hi - offset])
        c, d = max(0, first * hop - rate // 2 - offset), min(len(region), last * hop + rate // 2 - offset)
        gapped = region.copy()
        gapped[first * hop - offset:last * hop - offset] = 0.0
        plot(out.with_suffix(".png"), [("original", region[c:d]), ("gap", gapped[c:d]),
                                       ("filled by BERT", filled_region[c:d])], rate)


def crossfade_weights(gap_lo, gap_hi, fade, total):
    """(lo, hi, weight (hi - lo,)): 1 on the gap [gap_lo, gap_hi), linear fades of `fade` samples on either
    side (cut at 0 and `total`), 0 beyond: how much of the filled audio each sample takes."""
    lo, hi = max(0, gap_lo - fade), min(total, gap_hi + fade)
    weight = np.ones(hi - lo, dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    weight[:gap_lo - lo] = ramp[len(ramp) - (gap_lo - lo):]
    weight[len(weight) - (hi - gap_hi):] = ramp[::-1][:hi - gap_hi]
    return lo, hi, weight


def add_common(command, input_help, with_plot=True, with_bert=False, sampling=False):
    command.add_argument("input", help=input_help)
    command.add_argument("--vqvae", default=None,
                         help="VQ-VAE checkpoint (default runs/vqvae.pt once trained, else the shipped pretrained/vqvae.pt)")
    if with_plot:
        command.add_argument("--plot", action="store_true", help="also write a PNG comparing spectrograms")
    add_device_flag(command)
    add_overwrite_flag(command, "an output file")
    command.add_argument("--segment-seconds", type=positive_float, default=SEGMENT_SECONDS,
                         help=f"process long files this many seconds at a time (bounds memory; default {SEGMENT_SECONDS:g})")
    if with_bert:
        command.add_argument("--bert", default=None, help="BERT checkpoint (default: bert.pt beside the VQ-VAE)")
    if sampling:  # inpainting samples its codes; separation takes one argmax step (tasks.py)
        command.add_argument("--steps", type=positive_int, default=INPAINT_STEPS,
                             help=f"MaskGIT decoding steps (1 = one-shot; default {INPAINT_STEPS})")
        command.add_argument("--temperature", type=non_negative_float, default=INPAINT_TEMPERATURE,
                             help=f"sampling temperature (0 = argmax; default {INPAINT_TEMPERATURE:g})")
        command.add_argument("--seed", type=int, default=0, help="seed of the sampling (the same seed, the same output)")


def main():
    parser = ArgumentParser(description="Use a trained audio-mlm tokenizer and BERT.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, input_help, suffix in [
            ("encode", "audio file -> token file (.npy)", "audio file to encode", ".tokens.npy"),
            ("decode", "token file (.npy) -> audio file", "token file written by `encode`", ".recon.wav"),
            ("reconstruct", "audio -> tokens -> audio, and print the quality", "audio file to reconstruct", ".recon.wav"),
            ("inpaint", "fill a gap in a recording (Eq. 7)", "audio file", ".inpainted.wav")]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("-o", "--output", default=None,
                             help=f"output file (default: <input name>{suffix}, in the current folder)")
        add_common(command, input_help, with_plot=name in ("reconstruct", "inpaint"), with_bert=name == "inpaint",
                   sampling=name == "inpaint")
    command.add_argument("--start", type=finite_float, required=True, help="gap start in seconds")
    command.add_argument("--duration", type=finite_float, required=True, help="gap length in seconds (at most half the context: 0.256 s with the shipped models)")
    command = commands.add_parser("separate", help="pull stems out of a mixture (Eq. 8)")
    command.add_argument("--stem", default=None, help="one stem to separate (default: every stem the model knows)")
    command.add_argument("--out", default="separated", help="output folder; stems go to OUT/<input name>/<stem>.wav")
    command.add_argument("--reference", default=None,
                         help="the true stems: a folder of <stem>.flac/.wav files, or one file with --stem; prints SI-SDR")
    command.add_argument("--report", action="store_true", help="also write OUT/<input name>/index.html, a listening page")
    command.add_argument("--refine", default="mixture", choices=["mixture", "none"],
                         help="mixture (default): share the mixture among the decoded stems by soft masks (Eq. 10; every "
                              "stem is separated, even with --stem); none: BERT's output decoded as it is (see --decode)")
    command.add_argument("--decode", default="latent", choices=["latent", "tokens"],
                         help="latent (default): decode BERT's predicted latents (Eq. 11); tokens: its chosen codes")
    add_common(command, "mixture audio file", with_bert=True)
    args = parser.parse_args()
    device = pick_device(args.device)
    default_models(args, with_bert=args.command in ("separate", "inpaint"))
    if args.command in ("separate", "inpaint"):
        {"separate": command_separate, "inpaint": command_inpaint}[args.command](args, device)
        return
    model = load_vqvae(args.vqvae, device)
    {"encode": command_encode, "decode": command_decode, "reconstruct": command_reconstruct}[args.command](args, model, device)


if __name__ == "__main__":
    run_main(main)
