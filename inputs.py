"""What `infer.py` reads: one input file of any length, checked, scaled, and walked in segments.

Checks: every command refuses a file shorter than one token before any work (`input_length`) and
a silent one once it has been read whole (`Loudness`); a float file whose samples reach beyond
+-1 is scaled to a peak of 1 (`input_gain`).

Files of any length in bounded memory: a 1-hour recording at 44.1 kHz stereo is 1.3 GB of float32
once decoded, far more than the models need at once. So `infer.py` never reads a whole file: it
walks it in segments of a fixed length (30 s by default, `--segment-seconds`) at the model's rate.
Each segment is read with a margin on both sides (`data.read_file_chunk` decodes only those frames
and resamples them exactly as a whole-file pass would), processed as a whole, and only its middle
is kept and appended to the output file, which is written as it goes (`audio.audio_writer`).

    file    |----------------|----------------|----------------|---------|
    read       [m|  segment 0  |m]
    read                   [m|  segment 1  |m]
    keep    |  segment 0     |  segment 1     |  ...

With a margin wider than what the models look at (the VQ-VAE's pieces, BERT's window, Eq. 10's
STFT), the kept middles join without seams. Segment starts and margins are whole tokens
(multiples of 2^k samples), so the tokens of a segment line up with those of the whole file, and
for separation whole hops of BERT's windows, so that they line up too: the output is then the
same as from one pass over the whole file.
"""
import dataclasses
import functools
import sys
from dataclasses import dataclass
from math import gcd

import numpy as np
import soundfile as sf

from audio import audio_info
from data import read_file_chunk
from files import UserError

SILENCE_RMS = 1e-5  # about -100 dBFS: nothing to tokenize


@dataclass
class Segment:
    start: int  # first sample of the kept part, in the whole file at the model's rate
    length: int  # samples kept
    offset: int  # where the kept part starts inside `audio`
    audio: np.ndarray  # (offset + length + right margin,) the segment with its margins

    @property
    def kept(self):
        return self.audio[self.offset:self.offset + self.length]  # (length,)


def model_length(path, sample_rate):
    """Number of samples of the file once resampled to `sample_rate` (from its header)."""
    file_rate, frames, _ = audio_info(path)
    common = gcd(int(file_rate), int(sample_rate))
    up, down = int(sample_rate) // common, int(file_rate) // common
    return -(-frames * up // down)  # resample_poly's output length


def spans(total, size, margin):
    """(a, b, start, length): [start, start + length) kept, [a, b) read, for start = 0, size, 2 size..."""
    for start in range(0, total, size):
        yield max(0, start - margin), min(total, start + size + margin), start, min(size, total - start)


def segment_size(seconds, sample_rate, margin, unit):
    """Samples kept per segment: about `seconds`, a multiple of `unit`, and never shorter than the
    margin; tinier segments would spend nearly all their work on the margins."""
    return max(1, round(seconds * sample_rate / unit), -(-margin // unit)) * unit


def segment_count(total, size):
    return -(-total // size)


def audio_segments(path, sample_rate, seconds, margin, unit):
    """The `Segment`s of an audio file: about `seconds` kept each (`segment_size`), `margin` samples
    read beside them.

    Segment starts and margins are rounded to multiples of `unit` samples: a token (2^k), or the
    hop of BERT's separation windows, so that the windows of a segment are those of the whole file.
    """
    total, size = model_length(path, sample_rate), segment_size(seconds, sample_rate, margin, unit)
    margin = -(-margin // unit) * unit
    for a, b, start, length in spans(total, size, margin):
        yield Segment(start, length, start - a, read_file_chunk(path, sample_rate, a, b - a))


# ---- the input of a command ----

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
    """The input's segments (`Segment`), each with `margin_tokens` of context on both sides,
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
