"""Inference: audio -> tokens -> audio, and the two BERT tasks, separation and inpainting.

    python infer.py reconstruct song.flac          # writes song.recon.wav, prints SI-SDR
    python infer.py encode song.flac -o song.tokens.npy
    python infer.py decode song.tokens.npy -o song.recon.wav
    python infer.py separate mix.wav               # writes separated/mix/{bass,drums,guitar,piano}.wav
    python infer.py separate mix.wav --stem bass --out DIR
    python infer.py inpaint song.wav --start 2.0 --duration 0.1 -o filled.wav

Any file libsndfile reads, at any sample rate and channel count, is mixed down to mono and
resampled to the model's rate. Outputs are written atomically (temporary name, then rename).
Token files are plain .npy arrays of int16 code indices, one per 2^k samples. Separated stems
and inpainted files are written at the model's sample rate, mono. Files of any length work:
the encoder and decoder run in pieces, BERT in overlapping windows (tasks.py).
"""
import sys
from pathlib import Path

import numpy as np
import torch

from audio import read_audio, write_audio
from cli import ArgumentParser, autocast, pick_device, run_main
from checkpoint import load_bert, load_vqvae
from files import UserError, atomic_write
from metrics import mrstft_distance, si_sdr
from tasks import inpaint_tokens, separate_tokens
from tokens import encode_waveform

SILENCE_RMS = 1e-5  # about -100 dBFS: nothing to tokenize
DECODE_MARGIN = 64  # inpainting: tokens decoded on each side of the gap (more than the decoder's reach)
SEPARATE_STEPS = 1  # decoding steps: one-shot was best for separation (README, Results)
INPAINT_STEPS = 8
CROSSFADE_SECONDS = 0.005  # inpainting: fade into and out of the filled gap


def load_waveform(path, model):
    """Read a file as a (1, 1, T) tensor at the model's rate; refuse silent or too-short audio."""
    wave = read_audio(path, model.config.sample_rate)
    if len(wave) < model.hop:
        raise UserError(f"{path}: audio is shorter than one token ({len(wave)} samples at "
                        f"{model.config.sample_rate} Hz, a token is {model.hop})")
    if np.sqrt(np.mean(wave.astype(np.float64) ** 2)) < SILENCE_RMS:
        raise UserError(f"{path}: audio is silent, there is nothing to encode")
    return torch.from_numpy(wave).view(1, 1, -1)


def encode_file(path, model, device):
    x = load_waveform(path, model)
    with torch.no_grad(), autocast(device):
        indices, _, _ = encode_waveform(model, x[0, 0].numpy(), device)
    return x, indices.view(1, -1)  # (1, 1, T), (1, S)


def decode_tokens(indices, model, device, num_samples=None):
    with torch.no_grad(), autocast(device):
        return model.decode(indices.to(device), num_samples).float()[0, 0].cpu().numpy()  # (T,)


def default_output(input_path, suffix):
    """song.flac -> ./song<suffix>: outputs go to the current folder, never beside the input."""
    return Path(Path(input_path).stem + suffix)


def command_encode(args, model, device):
    _, indices = encode_file(args.input, model, device)
    out = Path(args.output or default_output(args.input, ".tokens.npy"))
    with atomic_write(out) as tmp:
        np.save(tmp, indices[0].cpu().numpy().astype(np.int16))
    print(f"{args.input}: {indices.shape[1]} tokens ({model.config.sample_rate / model.hop:g} tokens/s) -> {out}")


def command_decode(args, model, device):
    path = Path(args.input)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        tokens = np.load(path, allow_pickle=False)
    except Exception:
        raise UserError(f"{path}: not a token file (.npy of code indices)") from None
    if tokens.ndim != 1 or tokens.size == 0 or not np.issubdtype(tokens.dtype, np.integer):
        raise UserError(f"{path}: expected a 1-D array of integer code indices, got {tokens.dtype} {tokens.shape}")
    if tokens.min() < 0 or tokens.max() >= model.config.num_codes:
        raise UserError(f"{path}: code indices outside 0..{model.config.num_codes - 1}; "
                        f"were they made with another tokenizer?")
    indices = torch.from_numpy(tokens.astype(np.int64)).view(1, -1)
    wave = decode_long(indices[0], model, device)
    out = Path(args.output or path.name.removesuffix(".npy").removesuffix(".tokens") + ".recon.wav")
    write_audio(out, wave, model.config.sample_rate)
    print(f"{path}: {len(tokens)} tokens -> {len(wave) / model.config.sample_rate:.2f} s -> {out}")


def command_reconstruct(args, model, device):
    x, indices = encode_file(args.input, model, device)
    wave = decode_long(indices[0], model, device)[:x.shape[-1]]
    out = Path(args.output or default_output(args.input, ".recon.wav"))
    write_audio(out, wave, model.config.sample_rate)
    reference = x[0, 0].cpu().numpy()
    print(f"{args.input}: {len(reference) / model.config.sample_rate:.2f} s, {indices.shape[1]} tokens -> {out}")
    print(f"SI-SDR {si_sdr(reference, wave):.2f} dB, MR-STFT distance {mrstft_distance(reference, wave):.3f} "
          f"(at {model.config.sample_rate} Hz, mono)")
    if args.plot:
        plot(out.with_suffix(".png"), [("input", reference), ("reconstruction", wave)], model.config.sample_rate)


def decode_long(tokens, model, device):
    """(S,) tokens -> (S * 2^k,) float32 waveform, decoded in overlapping pieces (bounded memory)."""
    with torch.no_grad(), autocast(device):
        return model.decode_in_pieces(tokens.to(device)).float().cpu().numpy()


def plot(path, panels, sample_rate):
    from plots import spectrogram_figure  # matplotlib only when a picture is asked for
    spectrogram_figure(panels, sample_rate, path)
    print(f"spectrograms -> {path}")


def load_pair(args, device):
    vqvae = load_vqvae(args.vqvae, device)
    bert, vocab = load_bert(args.bert, vqvae, device)
    return vqvae, bert, vocab


def progress_line(label):
    def show(done, total):
        print(f"\r{label}: window {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def command_separate(args, device):
    vqvae, bert, vocab = load_pair(args, device)
    stems = [args.stem] if args.stem else list(vocab.stems)
    unknown = [s for s in stems if s not in vocab.stems]
    if unknown or not stems:
        raise UserError(f"{args.bert}: the model separates {', '.join(vocab.stems) or 'no stems'}, "
                        f"not {', '.join(unknown) or 'anything'}")
    x = load_waveform(args.input, vqvae)
    with torch.no_grad(), autocast(device):
        mixture, features, _ = encode_waveform(vqvae, x[0, 0].numpy(), device)
    out = Path(args.out) / Path(args.input).stem
    rate = vqvae.config.sample_rate
    reference = None
    if args.reference:
        if len(stems) != 1:
            raise UserError(f"{args.reference}: --reference needs --stem (the stem it is the true audio of)")
        reference = read_audio(args.reference, rate)[:x.shape[-1]]
    panels = [("mixture", x[0, 0].numpy())]
    for stem in stems:
        with autocast(device):
            tokens = separate_tokens(bert, vocab, mixture, features, stem, steps=args.steps,
                                     temperature=args.temperature, progress=progress_line(stem))
        wave = decode_long(tokens, vqvae, device)[:x.shape[-1]]
        write_audio(out / f"{stem}.wav", wave, rate)
        print(f"{args.input}: {stem} -> {out / f'{stem}.wav'} ({len(wave) / rate:.2f} s at {rate} Hz)")
        panels.append((f"separated {stem}", wave))
        if reference is not None:
            print(f"{stem}: SI-SDR {si_sdr(reference, wave[:len(reference)]):.2f} dB against {args.reference} "
                  f"(the mixture: {si_sdr(reference, x[0, 0].numpy()[:len(reference)]):.2f} dB)")
            panels.append((f"reference {stem}", reference))
    if args.plot:
        plot(out / "spectrograms.png", panels, rate)


def command_inpaint(args, device):
    vqvae, bert, vocab = load_pair(args, device)
    x = load_waveform(args.input, vqvae)
    rate, hop, T = vqvae.config.sample_rate, vqvae.hop, x.shape[-1]
    first = int(np.floor(args.start * rate / hop))
    last = int(np.ceil((args.start + args.duration) * rate / hop))  # gap = tokens first..last-1
    longest = bert.config.max_positions // 2
    if args.start < 0 or args.duration <= 0 or (args.start + args.duration) * rate > T:
        raise UserError(f"{args.input}: the gap {args.start:g}-{args.start + args.duration:g} s is not inside "
                        f"the file ({T / rate:.2f} s)")
    if last - first > longest:
        raise UserError(f"{args.input}: a gap of {args.duration:g} s is {last - first} tokens; this model fills at "
                        f"most {longest} tokens ({longest * hop / rate:.3f} s), half its context")
    with torch.no_grad(), autocast(device):
        tokens, features, _ = encode_waveform(vqvae, x[0, 0].numpy(), device)
        filled = inpaint_tokens(bert, vocab, tokens, features, first, last - first, steps=args.steps,
                                temperature=args.temperature)
    # decode around the gap only, then splice it into the original audio with short cross-fades
    fade = int(CROSSFADE_SECONDS * rate)
    margin = DECODE_MARGIN + fade // hop + 1
    a, b = max(0, first - margin), min(len(filled), last + margin)
    local = decode_tokens(filled[a:b].view(1, -1), vqvae, device)  # starts at sample a * hop
    wave = x[0, 0].numpy().copy()
    lo, hi = max(0, first * hop - fade), min(T, last * hop + fade)
    weight = np.ones(hi - lo, dtype=np.float32)  # 1 = BERT's audio, 0 = the original
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    weight[:first * hop - lo] = ramp[len(ramp) - (first * hop - lo):]
    weight[len(weight) - (hi - last * hop):] = ramp[::-1][:hi - last * hop]
    wave[lo:hi] = (1 - weight) * wave[lo:hi] + weight * local[lo - a * hop:hi - a * hop]
    out = Path(args.output or default_output(args.input, ".inpainted.wav"))
    write_audio(out, wave, rate)
    print(f"{args.input}: filled {args.start:g}-{args.start + args.duration:g} s ({last - first} tokens, "
          f"{args.steps} decoding steps) -> {out} ({rate} Hz)")
    if args.plot:  # half a second around the gap
        a, b = max(0, first * hop - rate // 2), min(T, last * hop + rate // 2)
        gapped = x[0, 0].numpy().copy()
        gapped[first * hop:last * hop] = 0.0
        plot(out.with_suffix(".png"), [("original", x[0, 0].numpy()[a:b]), ("gap", gapped[a:b]),
                                       ("filled by BERT", wave[a:b])], rate)


def add_common(command, with_bert=False, with_plot=True, steps=1):
    command.add_argument("--vqvae", default="runs/vqvae.pt", help="VQ-VAE checkpoint (default runs/vqvae.pt)")
    if with_plot:
        command.add_argument("--plot", action="store_true", help="also write a PNG comparing spectrograms")
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    if with_bert:
        command.add_argument("--bert", default="runs/bert.pt", help="BERT checkpoint (default runs/bert.pt)")
        command.add_argument("--steps", type=positive_int, default=steps, help=f"MaskGIT decoding steps (1 = one-shot argmax; default {steps})")
        command.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0 = argmax)")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def main():
    parser = ArgumentParser(description="Use a trained audio-mlm tokenizer and BERT.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, input_help in [
            ("encode", "audio file -> token file (.npy)", "audio file to encode"),
            ("decode", "token file (.npy) -> audio file", "token file written by `encode`"),
            ("reconstruct", "audio -> tokens -> audio, and print the quality", "audio file to reconstruct")]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("input", help=input_help)
        command.add_argument("-o", "--output", default=None, help="output file (default: derived from the input name, in the current folder)")
        add_common(command, with_plot=name == "reconstruct")
    command = commands.add_parser("separate", help="pull stems out of a mixture (Eq. 8)")
    command.add_argument("input", help="mixture audio file")
    command.add_argument("--stem", default=None, help="one stem to separate (default: every stem the model knows)")
    command.add_argument("--out", default="separated", help="output folder; stems go to OUT/<input name>/<stem>.wav")
    command.add_argument("--reference", default=None, help="the true stem's audio (with --stem): print SI-SDR, add it to --plot")
    add_common(command, with_bert=True, steps=SEPARATE_STEPS)
    command = commands.add_parser("inpaint", help="fill a gap in a recording (Eq. 7)")
    command.add_argument("input", help="audio file")
    command.add_argument("--start", type=float, required=True, help="gap start in seconds")
    command.add_argument("--duration", type=float, required=True, help="gap length in seconds (at most half the context)")
    command.add_argument("-o", "--output", default=None, help="output file (default: <input name>.inpainted.wav)")
    add_common(command, with_bert=True, steps=INPAINT_STEPS)
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.command in ("separate", "inpaint"):
        {"separate": command_separate, "inpaint": command_inpaint}[args.command](args, device)
        return
    model = load_vqvae(args.vqvae, device)
    {"encode": command_encode, "decode": command_decode, "reconstruct": command_reconstruct}[args.command](args, model, device)


if __name__ == "__main__":
    run_main(main)
