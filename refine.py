"""Eq. 10: refine separated stems by sharing the mixture among them (Wiener-like soft masks).

BERT's stem tokens decode to audio with the notes in the right place, but every frame whose code
is wrong decodes to some other millisecond of waveform: a floor of broadband hiss, and phase that
is off. The mixture holds the missing detail and the right phase. Refinement uses the decoded
estimates only to decide how each time-frequency bin of the mixture is shared among the sources:

    Eq. 10   M_j = |Y_j|^p / sum_i |Y_i|^p,   refined source j = ISTFT(M_j X)

X is the STFT of the mixture; Y_1 ... Y_J those of the J target-stem estimates, and Y_R that of a
residual source, "everything else" (instruments that are not targets, and what the estimates
miss): Y_R = X - sum_j Y_j, the STFT of the mixture minus the stems' waveforms. Every mask lies in
[0, 1] and the masks sum to 1 in every bin, so the refined sources add back up to the mixture
(mixture consistency). p = 1 shares by magnitude. The alternatives once scored beside it (p = 2,
the Wiener filter of power spectra; the residual max(|X|^p - sum_j |Y_j|^p, 0); a second iteration;
a 1024-point STFT) gained at most 0.1 dB on any stem, or lost up to 1.7 dB
(docs/experiments/default-models.md), so they are gone.

References: A. A. Nugraha, A. Liutkus, E. Vincent, "Multichannel audio source separation with
deep neural networks", 2016 (the Wiener filter Open-Unmix uses, F.-R. Stoeter et al. 2019);
S. Wisdom et al., "Differentiable consistency constraints for improved deep speech enhancement",
2019 (arXiv:1811.08521): mixture consistency. Hand-written on torch.stft, like the spectral loss.

Shapes: J target stems, T samples, F frequency bins, N = J + 1 sources (the stems and the residual).
"""
import torch
import torch.nn.functional as F

FFT_SIZE = 2048  # 128 ms at 16 kHz, hop a quarter of it
POWER = 1.0  # p of Eq. 10
EPS = 1e-12  # shared equally among the sources: a bin where every source is silent is split evenly


def stft(x, fft_size):
    """(N, T) -> complex (N, F, frames); Hann window, hop fft_size / 4, frame n centred on sample n * hop."""
    window = torch.hann_window(fft_size, dtype=x.dtype, device=x.device)
    return torch.stft(x, fft_size, fft_size // 4, window=window, center=True, pad_mode="constant",
                      return_complex=True)


def istft(spec, fft_size, length):
    """(N, F, frames) -> (N, length); the inverse of `stft` (Hann at a quarter hop: perfect reconstruction)."""
    window = torch.hann_window(fft_size, dtype=spec.real.dtype, device=spec.device)
    return torch.istft(spec, fft_size, fft_size // 4, window=window, center=True, length=length)


def soft_masks(powers, eps=EPS):
    """Eq. 10: (N, F, frames) |Y_i|^p -> masks M_j = |Y_j|^p / sum_i |Y_i|^p, in [0, 1], summing to 1 per bin."""
    N = powers.shape[0]
    return (powers + eps / N) / (powers.sum(dim=0, keepdim=True) + eps)  # (N, F, frames)


def masks(mixture, stems, offset):
    """Eq. 10's masks of a mixture (T,) and J stem estimates (J, T): (N, F, frames), frame n centred on
    sample n * hop - lead of the mixture (lead = offset % hop: frames on the whole signal's multiples of
    the hop), and the STFT of the mixture (1, F, frames)."""
    lead = offset % (FFT_SIZE // 4)  # zeros in front: frames on the whole signal's multiples of the hop
    x = F.pad(mixture.float(), (lead, 0))  # (lead + T,)
    y = F.pad(stems.float(), (lead, 0))  # (J, lead + T)
    X, Y = stft(x[None], FFT_SIZE), stft(y, FFT_SIZE)  # (1, F, frames), (J, F, frames)
    residual = X - Y.sum(dim=0, keepdim=True)  # (1, F, frames) Y_R: the mixture minus the stems
    return soft_masks(torch.cat([Y, residual]).abs().pow(POWER)), X, lead  # (N, F, frames) Eq. 10


@torch.no_grad()
def refine(mixture, stems, offset=0):
    """Eq. 10 on a mixture (T,) and J stem estimates (J, T) -> (J + 1, T): the refined stems, then the residual.

    The residual is returned as the mixture minus the refined stems, so the J + 1 sources sum to the
    mixture exactly (it equals ISTFT(M_R X) up to the STFT round trip, about 1e-7).

    offset: where mixture[0] lies in a longer signal. The STFT frames sit on multiples of the hop of
    that signal, so a segment refined with enough context on both sides (`CONTEXT_SAMPLES`) gives
    the same samples as the whole signal refined at once (infer.py refines long files in segments).
    """
    J, T = stems.shape
    M, X, lead = masks(mixture, stems, offset)  # (N, F, frames), (1, F, frames)
    y = istft(M[:J] * X, FFT_SIZE, lead + T)[:, lead:]  # (J, T) refined stems
    return torch.cat([y, (mixture.float() - y.sum(dim=0))[None]])  # (J + 1, T)


# samples on each side of a segment that refining it looks at: a frame reaches fft_size samples
CONTEXT_SAMPLES = FFT_SIZE
