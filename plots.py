"""Pictures: spectrogram comparisons and training curves, written as PNG files with matplotlib.

    python plots.py log runs/bert-log.csv -o bert-log.png      # training curve from the CSV log
    python plots.py spectrogram a.wav b.wav -o compare.png     # stacked spectrograms of audio files

`infer.py separate|inpaint|reconstruct --plot` and `evaluate.py --report DIR` use the same
functions. The models and the training loop never import this file: matplotlib is only needed
for pictures. Spectrograms are log-magnitude STFTs (Hann window of 1024 samples, hop 256) on a
shared dB scale, so panels can be compared by eye.
"""
import csv
from pathlib import Path

import numpy as np
from scipy.signal import stft

from audio import read_audio
from cli import ArgumentParser, run_main
from files import UserError, atomic_write


def pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt
    return plt


def log_spectrogram(wave, sample_rate, fft_size=1024):
    """(T,) -> (frequencies, times, dB magnitudes (F, frames))."""
    fft_size = min(fft_size, max(16, 2 ** int(np.log2(max(len(wave), 16)))))
    freqs, times, spec = stft(wave, fs=sample_rate, nperseg=fft_size, noverlap=fft_size * 3 // 4)
    return freqs, times, 20 * np.log10(np.abs(spec) + 1e-6)


def spectrogram_figure(panels, sample_rate, path, title=None):
    """Stacked spectrograms of [(label, (T,) waveform)], written to `path` (PNG), one dB scale for all."""
    plt = pyplot()
    specs = [(label, *log_spectrogram(np.asarray(wave, dtype=np.float32), sample_rate)) for label, wave in panels]
    top = max(spec.max() for _, _, _, spec in specs)
    fig, axes = plt.subplots(len(specs), 1, figsize=(8, 1.9 * len(specs)), sharex=True, squeeze=False)
    for axis, (label, freqs, times, spec) in zip(axes[:, 0], specs):
        axis.pcolormesh(times, freqs / 1000, spec, vmin=top - 80, vmax=top, shading="auto", cmap="magma")
        axis.set_ylabel("kHz")
        axis.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def plot_log(csv_path, path):
    """Every numeric column of a training log against `step`; validation rows drawn as dots."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise UserError(f"{csv_path}: no such log file")
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "step" not in rows[0]:
        raise UserError(f"{csv_path}: not a training log (a CSV with a 'step' column)")
    columns = [c for c in rows[0] if c not in ("step", "lr") and any(r[c] for r in rows)]
    plt = pyplot()
    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 1.6 * len(columns)), sharex=True, squeeze=False)
    for axis, column in zip(axes[:, 0], columns):
        points = [(int(r["step"]), float(r[column])) for r in rows if r[column]]
        steps, values = zip(*points)
        axis.plot(steps, values, "o-" if column.startswith("val") else "-", markersize=3)
        axis.set_ylabel(column, fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def main():
    parser = ArgumentParser(description="Draw training curves and spectrograms.")
    commands = parser.add_subparsers(dest="command", required=True)
    log = commands.add_parser("log", help="plot a training log (OUT/vqvae-log.csv or OUT/bert-log.csv)")
    log.add_argument("csv", help="the CSV log written by train.py")
    log.add_argument("-o", "--output", default=None, help="PNG file (default: the log's name with .png)")
    spec = commands.add_parser("spectrogram", help="stacked spectrograms of audio files")
    spec.add_argument("inputs", nargs="+", help="audio files")
    spec.add_argument("--sample-rate", type=int, default=16000, help="rate to read them at")
    spec.add_argument("-o", "--output", default="spectrogram.png", help="PNG file")
    args = parser.parse_args()
    if args.command == "log":
        out = args.output or str(Path(args.csv).with_suffix(".png"))
        plot_log(args.csv, out)
    else:
        out = args.output
        spectrogram_figure([(p, read_audio(p, args.sample_rate)) for p in args.inputs], args.sample_rate, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
