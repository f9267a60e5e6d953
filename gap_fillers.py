"""The classic gap fillers, the baselines BERT's inpainting (Eq. 7) is measured against.

None of them learns anything; each fills `n` missing samples from the audio around them:
- cross-fade: the audio just before the gap fading out into the audio just after it;
- linear prediction (the textbook short-gap method): an all-pole model x[t] = sum_i a_i x[t - i]
  fitted on each side (Burg's method, stable by construction), run forward from the left and
  backward from the right, the two cross-faded.
  Janssen et al. (1986) iterate this; a 2024 comparison of gap fillers (arXiv:2403.04433) finds it
  among the best for gaps up to about 80 ms;
- repetition: music repeats itself, so copy the segment of the same file whose surroundings look
  most like the gap's (Perraudin et al., arXiv:1607.06667, do this on audio features; here
  the features are the VQ-VAE's latents, compared by cosine).

Every function takes and returns 1-D float32 numpy arrays of samples.
"""
import numpy as np
from scipy.signal import lfilter, lfiltic

LPC_ORDER = 1024  # poles of the all-pole model, fitted on ...
LPC_CONTEXT = 16384  # ... this many samples on each side (about 1 s at 16 kHz; docs/experiments/inpainting.md)


def crossfade_fill(before, after):
    """The `len(before)` samples before the gap fading linearly into as many after it."""
    weight = np.linspace(0.0, 1.0, len(before), dtype=np.float32)
    return (1 - weight) * before + weight * after


def burg(x, order):
    """The prediction polynomial A = [1, a_1 .. a_order] of x (x[t] ~ -sum_i a_i x[t - i]), by Burg's
    method: each order's reflection coefficient k minimises the forward and backward errors together,
    so |k| < 1 and the model is stable, without the bias of windowed autocorrelations."""
    A = np.ones(1)
    forward, backward = x[1:].copy(), x[:-1].copy()  # the errors of order 0, aligned: e_f[t], e_b[t - 1]
    for _ in range(order):
        energy = np.dot(forward, forward) + np.dot(backward, backward)
        if energy <= 1e-20 or len(forward) < 2:  # silence (or too little audio) predicts no further
            break
        k = -2 * np.dot(forward, backward) / energy
        A = np.concatenate([A, [0.0]])
        A = A + k * A[::-1]
        forward, backward = (forward + k * backward)[1:], (backward + k * forward)[:-1]
    return np.pad(A, (0, order + 1 - len(A)))


def extrapolate(past, n, order=LPC_ORDER):
    """The n samples that follow `past`, predicted by the all-pole model fitted on it."""
    past = np.asarray(past, dtype=np.float64)
    order = min(order, len(past) // 2)
    if order < 1:  # nothing to fit: no prediction
        return np.zeros(n, np.float32)
    A = burg(past, order)
    state = lfiltic([1.0], A, past[::-1][:order])  # the filter's memory: the last samples, newest first
    return lfilter([1.0], A, np.zeros(n), zi=state)[0].astype(np.float32)  # no excitation: A(z) x = 0


def lpc_fill(before, after, n, order=LPC_ORDER):
    """n samples predicted forward from `before` and backward from `after`, cross-faded."""
    forward = extrapolate(before, n, order)
    backward = extrapolate(np.asarray(after)[::-1], n, order)[::-1]
    return crossfade_fill(forward, backward)


def repetition_fill(audio, features, hop, gap_start, gap_frames, context_frames=32):
    """The `gap_frames * hop` samples of `audio` (the same file) whose surroundings best match the gap's.

    features (S, D): one vector per frame of `hop` samples (the VQ-VAE's latents). A candidate
    segment starting at frame o is scored by the mean cosine between the `context_frames` frames
    on each side of it and those on each side of the gap; no frame of a candidate or of its
    surroundings may fall inside the gap (the gap's audio is unknown).
    """
    S, c, P, g = len(features), context_frames, gap_frames, gap_start
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-8)  # (S, D)
    c = min(c, g, S - g - P)  # the context the gap has on both sides
    if c < 1:
        raise ValueError("the gap has no audio on one side")
    offsets = np.arange(c, S - P - c + 1)  # every candidate with its whole context inside the file
    offsets = offsets[(offsets + P + c <= g) | (offsets - c >= g + P)]  # ... and outside the gap
    if not len(offsets):
        raise ValueError("the file has no segment outside the gap to copy")
    score = np.zeros(len(offsets))
    for i in range(c):
        score += unit[offsets - c + i] @ unit[g - c + i] + unit[offsets + P + i] @ unit[g + P + i]
    best = offsets[np.argmax(score)]
    return np.asarray(audio[best * hop:(best + P) * hop], dtype=np.float32)
