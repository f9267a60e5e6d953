"""Training losses of the VQ-VAE: Eq. 3 reconstruction, Eq. 6 spectral, Eq. 2 total.

Papers: "Neural Discrete Representation Learning", van den Oord et al., 2017 (arXiv:1711.00937)
for Eq. 2-5; "Jukebox", Dhariwal et al., 2020 (arXiv:2005.00341) for the spectral loss summed
over several STFT resolutions.

Departure, on purpose: Eq. 3 and Eq. 6 are divided by each chunk's own energy (plus a -50 dB
floor). Plain MSE lets loud chunks dominate and makes a quiet stem count for nothing, while we
judge the tokenizer by SI-SDR, which is scale-free; per-chunk normalisation turns Eq. 3 into
10^(-SNR/10), the quantity SI-SDR measures. (The zalandoresearch VQ-VAE divides by the data
variance for the same reason, once for the whole dataset.)

Shapes: B batch, T samples.
"""
import torch

STFT_SIZES = (2048, 1024, 512, 256, 128)  # multi-resolution, hop = size / 4
ENERGY_FLOOR = 1e-5  # -50 dBFS: below this a chunk counts as silence


def chunk_energy(x):
    """Mean square of each chunk, floored: (B, 1, T) -> (B,)."""
    return x.pow(2).mean(dim=(1, 2)) + ENERGY_FLOOR


def relative_error(x, x_hat):
    """Per chunk, mean over t of (x_t - x^_t)^2 over the chunk's energy, 10^(-SNR/10): (B, 1, T) -> (B,)."""
    return (x - x_hat).pow(2).mean(dim=(1, 2)) / chunk_energy(x)


def reconstruction_loss(x, x_hat):
    """Eq. 3, per chunk normalised by the chunk's energy, averaged over the batch: (B, 1, T) -> ()."""
    return relative_error(x, x_hat).mean()


def stft_magnitude(x, fft_size):
    """|STFT| with a Hann window, hop fft_size / 4: (B, 1, T) -> (B, F, frames)."""
    window = torch.hann_window(fft_size, device=x.device)
    spec = torch.stft(x.squeeze(1).float(), fft_size, hop_length=fft_size // 4, window=window,
                      normalized=True, pad_mode="constant", return_complex=True)
    return spec.abs()


def spectral_loss(x, x_hat, fft_sizes=STFT_SIZES):
    """Eq. 6: || |STFT(x)| - |STFT(x^)| ||^2, averaged over bins and over STFT resolutions.

    `normalized=True` makes the STFT energy-preserving up to the window overlap, so each term
    is on the scale of Eq. 3; like it, it is divided by the chunk's energy.
    """
    T = x.shape[-1]
    sizes = [n for n in fft_sizes if n <= T] or [min(fft_sizes)]  # short chunks: small FFTs only
    total = 0.0
    for fft_size in sizes:
        diff = stft_magnitude(x, fft_size) - stft_magnitude(x_hat, fft_size)  # (B, F, frames)
        total = total + diff.pow(2).mean(dim=(1, 2)) / chunk_energy(x)
    return (total / len(sizes)).mean()


def total_loss(x, x_hat, vq_loss):
    """Eq. 2: L = L_recon + (L_codebook + beta * L_commit) + L_spectral.

    `vq_loss` is the quantizer's L_codebook + beta * L_commit (Eq. 4, 5; beta = 0.25).
    Returns (loss, dict of the parts for logging).
    """
    x_hat = x_hat.float()
    recon = reconstruction_loss(x, x_hat)
    spectral = spectral_loss(x, x_hat)
    loss = recon + vq_loss + spectral  # Eq. 2
    return loss, {"recon": recon.detach(), "spectral": spectral.detach(), "vq": vq_loss.detach()}
