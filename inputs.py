"""What `infer.py` reads: one input file, checked, scaled to full scale and walked in segments.

Every command refuses a file shorter than one token before any work (`input_length`) and a silent
one once it has been read whole (`Loudness`); a float file whose samples reach beyond +-1 is scaled
to a peak of 1 (`input_gain`). `segments` walks the file as streaming.py does, with margins of
whole tokens; `kept_tokens` and `kept_samples` cut a processed segment back to its own part.
"""
import dataclasses
import functools
import sys

import numpy as np
import soundfile as sf

from audio import audio_info
from data import read_file_chunk
from files import UserError
from streaming import audio_segments, model_length

SILENCE_RMS = 1e-5  # about -100 dBFS: nothing to tokenize


def input_length(path, model):
    """Samples of the input at the model's rate; refuses a file shorter than one token up front."""
    total = model_length(path, model.config.sample_rate)
    if total < model.hop:
        raise UserError(f"{path}: audio is shorter than one token ({total} samples at "
                        f"{model.config.sample_rate} Hz, a token is {model.hop})")
    return total


@functools.lru_cache
def input_gain(path):
    """1, or 1 / peak for a float file whose samples reach beyond +-1 (saying so, once).

    Integer PCM cannot exceed full scale; a float WAV can hold anything, and the models were
    trained on [-1, 1]. Such a file is read once more, in blocks, to find its peak first.
    """
    audio_info(path)  # a missing or unreadable file is refused here, with its own message
    if sf.info(str(path)).subtype not in ("FLOAT", "DOUBLE"):
        return 1.0
    peak = max((float(np.abs(block).max()) for block in sf.blocks(str(path), blocksize=1 << 16, dtype="float32")),
               default=0.0)
    if not np.isfinite(peak) or peak <= 1.0:
        return 1.0  # (NaN and inf are refused when the audio is read, with their own message)
    print(f"{path}: float samples reach +-{peak:g}, beyond full scale (+-1); scaled by 1/{peak:g} to a peak of 1",
          file=sys.stderr)
    return 1.0 / peak


def read_input(path, sample_rate, start, length):
    """Samples [start, start + length) of the input at `sample_rate`, scaled by `input_gain`."""
    return read_file_chunk(path, sample_rate, start, length) * np.float32(input_gain(path))


def segments(args, model, margin_tokens, align_tokens=1):
    """The input's segments (streaming.Segment), each with `margin_tokens` of context on both sides,
    starting on multiples of `align_tokens` tokens, scaled by `input_gain`."""
    input_length(args.input, model)
    gain = np.float32(input_gain(args.input))
    found = audio_segments(args.input, model.config.sample_rate, args.segment_seconds, margin_tokens * model.hop,
                           align_tokens * model.hop)
    return found if gain == 1 else (dataclasses.replace(segment, audio=segment.audio * gain) for segment in found)


class Loudness:
    """Sums of what was read, to refuse a silent input once it has been seen whole.

    Silence is judged after removing the mean, as SI-SDR does: a constant (pure DC) is no sound either.
    """

    def __init__(self, path):
        self.path, self.total, self.energy, self.count = path, 0.0, 0.0, 0

    def add(self, x):
        self.total += float(np.sum(x, dtype=np.float64))
        self.energy += float(np.sum(np.square(x, dtype=np.float64)))
        self.count += len(x)

    def check(self):
        mean = self.total / max(1, self.count)
        if np.sqrt(max(0.0, self.energy / max(1, self.count) - mean ** 2)) >= SILENCE_RMS:
            return
        if abs(mean) >= SILENCE_RMS:
            raise UserError(f"{self.path}: audio is a constant {mean:.3g} (pure DC), there is no sound to encode")
        raise UserError(f"{self.path}: audio is silent, there is nothing to encode")


def kept_tokens(segment, hop):
    """The slice of a segment's tokens that belongs to its kept part."""
    return slice(segment.offset // hop, -(-(segment.offset + segment.length) // hop))


def kept_samples(wave, segment):
    """The part of a segment's (samples,) output that belongs to its kept part."""
    return wave[segment.offset:segment.offset + segment.length]
