"""Pictures: spectrogram comparisons, written as PNG files with matplotlib.

`infer.py separate|inpaint|reconstruct --plot` and `evaluate.py --report DIR` draw with these.
The models and the training loops never import this file: matplotlib is only needed for pictures.
Spectrograms are log-magnitude STFTs (Hann window of 1024 samples, hop 256) on a shared dB scale,
so panels can be compared by eye.
"""
import numpy as np
from scipy.signal import stft

from files import atomic_write


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


def spectrogram_figure(panels, sample_rate, path):
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
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
