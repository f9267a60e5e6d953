"""Evaluation metrics: SI-SDR, BSS Eval SDR and a multi-resolution STFT distance.

SI-SDR: "SDR - half-baked or well done?", Le Roux et al., 2019 (arXiv:1811.02508).
MR-STFT distance: spectral convergence + log-magnitude L1, averaged over STFT sizes, as in
"Parallel WaveGAN", Yamamoto et al., 2020 (arXiv:1910.11480). Lower is better, 0 for equal signals.
Unlike the training loss it is not squared, so a few loud errors do not swamp it.
BSS Eval SDR: the SDR of BSS Eval v4 (Vincent et al. 2006; museval's time-invariant 512-tap
distortion filter) as published MUSDB18 and Slakh2100 tables use, computed by fast-bss-eval
(Scheibler 2021, arXiv:2110.06440) over the whole signal.
"""
import math

import fast_bss_eval
import numpy as np
import torch

from losses import stft_magnitude

EVAL_STFT_SIZES = (2048, 1024, 512, 256)
BSS_CLAMP_DB = 100.0  # BSS Eval SDR of a perfect (or silent) estimate: +-100 dB, not +-inf


def si_sdr(reference, estimate):
    """Scale-invariant SDR in dB of 1-D `estimate` against 1-D `reference`.

    The estimate is projected on the reference, s = (<e, r> / <r, r>) r, and
    SI-SDR = 10 log10(|s|^2 / |e - s|^2). +inf for a scaled copy; -inf when orthogonal.
    """
    return RunningSISDR().add(reference, estimate).value()


class RunningSISDR:
    """SI-SDR of a long signal scored block by block (`si_sdr` is one block).

    It keeps only six sums: n, sum r, sum e, <r, r>, <e, e>, <r, e>. Removing the means and
    projecting can be done on them: with r, e zero-mean, |target|^2 = <e, r>^2 / <r, r> and
    |noise|^2 = <e, e> - |target|^2.
    """

    def __init__(self):
        self.sums = np.zeros(6)

    def add(self, reference, estimate):
        r = np.asarray(reference, dtype=np.float64).reshape(-1)
        e = np.asarray(estimate, dtype=np.float64).reshape(-1)
        self.sums += [len(r), r.sum(), e.sum(), r @ r, e @ e, r @ e]
        return self

    def value(self, eps=1e-12):
        n, sum_r, sum_e, rr, ee, re = self.sums
        rr, ee, re = rr - sum_r ** 2 / n, ee - sum_e ** 2 / n, re - sum_r * sum_e / n  # zero-mean
        if rr <= eps:
            raise ValueError("SI-SDR is undefined for a silent reference")
        target_energy = re ** 2 / rr
        noise_energy = ee - target_energy
        if noise_energy <= eps * rr * 1e-6:
            return math.inf
        if target_energy == 0.0:
            return -math.inf
        return float(10 * np.log10(target_energy / noise_energy))


def mrstft_distance(reference, estimate, fft_sizes=EVAL_STFT_SIZES):
    """Multi-resolution STFT distance between two 1-D signals (lower is better, 0 if equal)."""
    return RunningMRSTFT(fft_sizes).add(reference, estimate).value()


def log_spectral_distance(reference, estimate, fft_size=512, floor_db=-80.0):
    """Log-spectral distance in dB (lower is better, 0 if equal): per STFT frame, the RMS over
    frequency of the difference of the two power spectra in dB, averaged over frames. Powers are
    floored `floor_db` below the reference's peak, so inaudible bins do not decide it."""
    x = torch.as_tensor(np.asarray(reference, dtype=np.float32)).view(1, 1, -1)
    y = torch.as_tensor(np.asarray(estimate, dtype=np.float32)).view(1, 1, -1)
    fft_size = min(fft_size, 2 ** int(math.log2(x.shape[-1])))
    power_x, power_y = stft_magnitude(x, fft_size) ** 2, stft_magnitude(y, fft_size) ** 2  # (1, F, N)
    floor = power_x.max().clamp(min=1e-20) * 10 ** (floor_db / 10)
    db_x, db_y = (10 * torch.log10(p.clamp(min=floor)) for p in (power_x, power_y))
    return float(((db_x - db_y) ** 2).mean(dim=1).sqrt().mean())


class RunningMRSTFT:
    """The MR-STFT distance of a long signal scored block by block, from sums kept per FFT size:
    |X - Y|^2 and |X|^2 (spectral convergence), sum |log X - log Y| and the bin count (log-magnitude
    L1). One block gives `mrstft_distance` exactly; many give the distance of the whole, not a mean
    of per-block distances (which a near-silent block, with its tiny |X|, would blow up).
    """

    def __init__(self, fft_sizes=EVAL_STFT_SIZES, eps=1e-7):
        self.fft_sizes, self.eps = fft_sizes, eps
        self.sums = {}  # fft size -> [diff^2, ref^2, |log diff|, bins]

    def add(self, reference, estimate):
        x = torch.as_tensor(np.asarray(reference, dtype=np.float32)).view(1, 1, -1)
        y = torch.as_tensor(np.asarray(estimate, dtype=np.float32)).view(1, 1, -1)
        T = x.shape[-1]
        # a signal shorter than every FFT size is scored at the largest power of two that fits it
        sizes = [n for n in self.fft_sizes if n <= T] or [2 ** max(2, int(math.log2(max(T, 4))))]
        for fft_size in sizes:
            mag_x, mag_y = stft_magnitude(x, fft_size), stft_magnitude(y, fft_size)
            log_diff = (torch.log(mag_x + self.eps) - torch.log(mag_y + self.eps)).abs()
            sums = self.sums.setdefault(fft_size, np.zeros(4))
            sums += [float(((mag_x - mag_y) ** 2).sum()), float((mag_x ** 2).sum()), float(log_diff.sum()),
                     log_diff.numel()]
        return self

    def value(self):
        """Mean over FFT sizes of spectral convergence + log-magnitude L1."""
        total = 0.0
        for diff, ref, log_l1, bins in self.sums.values():
            total += math.sqrt(diff) / (math.sqrt(ref) + self.eps) + log_l1 / bins
        return total / len(self.sums)


def bss_sdr(reference, estimate, filter_length=512):
    """BSS Eval v4 SDR in dB of 1-D `estimate` against 1-D `reference` (fast-bss-eval).

    The estimate is projected on `filter_length` delayed copies of the reference (a time-invariant
    distortion filter: a gain, a short delay or colouring is forgiven, unlike SI-SDR); SDR is the
    energy of that projection over the energy of the rest. Clamped to +-100 dB.
    """
    reference = np.asarray(reference, dtype=np.float64).reshape(1, -1)
    estimate = np.asarray(estimate, dtype=np.float64).reshape(1, -1)
    if np.dot(reference[0], reference[0]) <= 1e-12:
        raise ValueError("BSS Eval SDR is undefined for a silent reference")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(fast_bss_eval.sdr(reference, estimate, filter_length=filter_length, clamp_db=BSS_CLAMP_DB)[0])


def mean_ci95(values):
    """Mean and half-width of a normal-approximation 95% confidence interval."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(half)
