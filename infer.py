"""Inference with a trained tokenizer: audio -> tokens -> audio.

    python infer.py reconstruct song.flac          # writes song.recon.wav, prints SI-SDR
    python infer.py encode song.flac -o song.tokens.npy
    python infer.py decode song.tokens.npy -o song.recon.wav

Any file libsndfile reads, at any sample rate and channel count, is mixed down to mono and
resampled to the model's rate. Outputs are written atomically (temporary name, then rename).
Token files are plain .npy arrays of int16 code indices, one per 2^k samples.
"""
from pathlib import Path

import numpy as np
import torch

from audio import read_audio, write_audio
from cli import ArgumentParser, autocast, pick_device, run_main
from checkpoint import load_vqvae
from files import UserError, atomic_write
from metrics import mrstft_distance, si_sdr

SILENCE_RMS = 1e-5  # about -100 dBFS: nothing to tokenize


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
    x = load_waveform(path, model).to(device)
    with torch.no_grad(), autocast(device):
        return x, model.encode(x)  # (1, 1, T), (1, S)


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
    wave = decode_tokens(indices, model, device)
    out = Path(args.output or path.name.removesuffix(".npy").removesuffix(".tokens") + ".recon.wav")
    write_audio(out, wave, model.config.sample_rate)
    print(f"{path}: {len(tokens)} tokens -> {len(wave) / model.config.sample_rate:.2f} s -> {out}")


def command_reconstruct(args, model, device):
    x, indices = encode_file(args.input, model, device)
    wave = decode_tokens(indices, model, device, x.shape[-1])
    out = Path(args.output or default_output(args.input, ".recon.wav"))
    write_audio(out, wave, model.config.sample_rate)
    reference = x[0, 0].cpu().numpy()
    print(f"{args.input}: {len(reference) / model.config.sample_rate:.2f} s, {indices.shape[1]} tokens -> {out}")
    print(f"SI-SDR {si_sdr(reference, wave):.2f} dB, MR-STFT distance {mrstft_distance(reference, wave):.3f} "
          f"(at {model.config.sample_rate} Hz, mono)")


def main():
    parser = ArgumentParser(description="Use a trained audio-mlm tokenizer.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, input_help in [
            ("encode", "audio file -> token file (.npy)", "audio file to encode"),
            ("decode", "token file (.npy) -> audio file", "token file written by `encode`"),
            ("reconstruct", "audio -> tokens -> audio, and print the quality", "audio file to reconstruct")]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("input", help=input_help)
        command.add_argument("-o", "--output", default=None, help="output file (default: derived from the input name, in the current folder)")
        command.add_argument("--vqvae", default="runs/vqvae.pt", help="VQ-VAE checkpoint (default runs/vqvae.pt)")
        command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    args = parser.parse_args()
    device = pick_device(args.device)
    model = load_vqvae(args.vqvae, device)
    {"encode": command_encode, "decode": command_decode, "reconstruct": command_reconstruct}[args.command](args, model, device)


if __name__ == "__main__":
    run_main(main)
