"""Files of any length in bounded memory: read, process and write audio one segment at a time.

A 1-hour recording at 44.1 kHz stereo is 1.3 GB of float32 once decoded, far more than the models
need at once. So `infer.py` never reads a whole file: it walks it in segments of a fixed length
(30 s by default, `--segment-seconds`) at the model's rate. Each segment is read with a margin on
both sides (`data.read_file_chunk` decodes only those frames and resamples them exactly as a
whole-file pass would), processed as a whole, and only its middle is kept and appended to the
output file, which is written as it goes (`audio.audio_writer`, atomic).

    file    |----------------|----------------|----------------|---------|
    read       [m|  segment 0  |m]
    read                   [m|  segment 1  |m]
    keep    |  segment 0     |  segment 1     |  ...

With a margin wider than what the models look at (the VQ-VAE's pieces, BERT's window), the kept
middles join without seams. Memory then depends on the segment length, not on the file's.
Segment starts and margins are whole tokens (multiples of 2^k samples), so the tokens of a
segment line up with those of the whole file, and for separation whole hops of BERT's windows,
so that they line up too: the output is then the same as from one pass over the whole file.
"""
from dataclasses import dataclass
from math import gcd

import numpy as np

from audio import audio_info
from data import read_file_chunk


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
