"""What `infer.py` reads and writes: one input file of any length, checked, scaled, walked in
segments (and the true stems of `--reference`); the VQ-VAE run over it in overlapping pieces; stems
refined (Eq. 10) at its own rate and channel count.

Every command refuses a file shorter than one token before any work (`input_length`) and a silent
one once read whole (`Loudness`); a float file beyond +-1 is scaled to a peak of 1 (`input_gain`).
A 1-hour recording at 44.1 kHz stereo is 1.3 GB of float32, so no file is read whole: it is walked
in segments (30 s by default, `--segment-seconds`) at the model's rate, each read with a margin on
both sides (`data.read_file_chunk` decodes only those frames, resampled as a whole-file pass would),
processed, and only its middle appended to the output (`audio.audio_writer`).

    file    |----------------|----------------|----------------|---------|
    read       [m|  segment 0  |m]
    read                   [m|  segment 1  |m]
    keep    |  segment 0     |  segment 1     |  ...

With margins wider than what the models look at (the VQ-VAE's pieces, BERT's window, Eq. 10's STFT)
and segment starts on whole tokens (for separation, whole hops of BERT's windows), the tokens and
windows of a segment line up with the whole file's: the output is that of one pass.
"""
import dataclasses
import functools
import sys
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from audio import AUDIO_SUFFIXES, audio_info, read_frames
from data import read_file_chunk
from files import UserError
from refine import FFT_SIZE, istft, masks, stft

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


def reference_files(args, stems):
    """--reference: {stem: the true stem's audio file}, from one file (with --stem) or a folder of <stem>.flac/.wav..."""
    if not args.reference:
        return {}
    path = Path(args.reference)
    if path.is_dir():
        found = {stem: next((f for f in sorted(path.glob(f"{stem}.*")) if f.suffix.lower() in AUDIO_SUFFIXES), None)
                 for stem in stems}
        found = {stem: f for stem, f in found.items() if f is not None}
        if not found:
            raise UserError(f"{path}: no reference stems in this folder (expected files named {stems[0]}.flac, ...)")
    elif len(stems) != 1:
        raise UserError(f"{path}: a reference file needs --stem (the stem it is the true audio of), or pass a folder of stems")
    else:
        found = {stems[0]: path}
    for file in found.values():
        audio_info(file)  # a missing or unreadable reference fails now, not after the work
    return found


# ---- the VQ-VAE over long audio: overlapping pieces, batched ----
# A 10 s signal as one (1, 1, T) tensor leaves a 2-core CPU half idle (convolutions with 16
# channels parallelise poorly along time); the same signal as a batch of 2 s pieces runs about
# 2x faster (bench.py). Each piece carries `margin` extra tokens of context on both sides, wider
# than the encoder's and decoder's reach at the token rate, which are cut off, so the result is
# that of one pass. A piece is 2 s of audio whatever k is (2048 tokens at k = 4, 256 frames at k = 7).

PIECE_SAMPLES = 32768  # audio per piece (2 s at 16 kHz)


def piece_frames(model):
    """Tokens per piece: PIECE_SAMPLES of audio, at least 64 tokens."""
    return max(64, PIECE_SAMPLES // model.hop)


@torch.no_grad()
def encode_in_pieces(model, x, piece=None, margin=32, batch_size=8):
    """(T,) waveform -> the VQ-VAE's pre-quantisation latents h (S, D), S = ceil(T / 2^k)."""
    hop, S, piece = model.hop, -(-x.shape[-1] // model.hop), piece or piece_frames(model)
    padded = F.pad(x, (margin * hop, (S + margin + piece) * hop - x.shape[-1]))  # room for every piece
    starts = list(range(0, S, piece))
    out = []
    for first in range(0, len(starts), batch_size):
        batch = torch.stack([padded[s * hop:(s + piece + 2 * margin) * hop] for s in starts[first:first + batch_size]])
        out.append(model.encode_latents(batch[:, None])[:, margin:margin + piece])  # (b, piece, D)
    return torch.cat(out).reshape(-1, model.config.code_dim)[:S]  # (S, D)


@torch.no_grad()
def decode_in_pieces(model, indices, piece=None, margin=32, batch_size=8):
    """(S,) token indices, or float (S, D) decoder inputs -> (S * 2^k,) waveform."""
    hop, S, piece = model.hop, indices.shape[0], piece or piece_frames(model)
    vectors = indices if indices.is_floating_point() else model.lookup(indices)  # (S, D)
    z = F.pad(vectors.t(), (margin, margin + piece))  # (D, S + room), zero margins
    starts = list(range(0, S, piece))
    out = []
    for first in range(0, len(starts), batch_size):
        batch = torch.stack([z[:, s:s + piece + 2 * margin] for s in starts[first:first + batch_size]])  # (b, D, L)
        out.append(model.decoder(batch)[:, 0, margin * hop:(margin + piece) * hop])  # (b, piece * hop)
    return torch.cat(out).reshape(-1)[:S * hop]


# ---- stems in the input's format: Eq. 10's masks on every channel at the file's rate ----

def interpolate(x, position, dim):
    """x sampled at fractional indices `position` along `dim` (linear; clamped to the ends)."""
    position = position.clamp(0, x.shape[dim] - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=x.shape[dim] - 1)
    weight = (position - low).to(x.real.dtype).reshape([-1] + [1] * (x.dim() - dim - 1))
    return x.index_select(dim, low) * (1 - weight) + x.index_select(dim, high) * weight


@torch.no_grad()
def refine_channels(mixture, stems, channels, rate, channel_rate, offset=0, channel_offset=0):
    """Eq. 10 for the user's file: masks from the model-rate mixture (T,) and estimates (J, T), applied to
    each of the C channels (C, T') of the original at `channel_rate` -> (J, C, T') refined stems.

    The masks are read off at each bin and frame of the channels' own STFT (same 128 ms frames), by
    linear interpolation in frequency and time. Above the model's Nyquist frequency (8 kHz at 16 kHz)
    the estimates hold nothing, so every bin there takes the mask of the model's top bin: the highs of
    the original are shared as the top of the model's band was. offset, channel_offset: where the two
    segments start in the whole file (at their rates), so frames sit on the whole file's hops.
    """
    J, T = stems.shape
    M, _, lead = masks(mixture, stems, offset)  # (N, F, frames) at `rate`
    fft_size = 4 * round(FFT_SIZE * channel_rate / rate / 4)  # the same duration at `channel_rate`
    hop, channel_lead = fft_size // 4, channel_offset % (fft_size // 4)
    X = stft(F.pad(channels.float(), (channel_lead, 0)), fft_size)  # (C, F', frames')
    bins = torch.arange(X.shape[1], dtype=torch.float64) * (channel_rate / fft_size) / (rate / FFT_SIZE)  # model bin of each bin
    centres = (torch.arange(X.shape[2], dtype=torch.float64) * hop - channel_lead + channel_offset) * rate / channel_rate
    frames = (centres - offset + lead) / (FFT_SIZE // 4)  # model frame under each frame's centre
    M = interpolate(interpolate(M, bins, 1), frames, 2)  # (N, F', frames')
    C, T2 = channels.shape
    y = istft((M[:J, None] * X[None]).flatten(0, 1), fft_size, channel_lead + T2)  # (J * C, lead + T')
    return y[:, channel_lead:].reshape(J, C, T2)  # (J, C, T')


def refine_native(path, segment, waves, rate, file_rate, file_frames):
    """The kept part of a segment in the input's own rate and channels: (J, C, samples), the Eq. 10 masks
    of the model-rate estimates `waves` (J, len(segment.audio)) applied to each channel of the original;
    then that part of the original (C, samples) and its first and last frames in the file."""
    first = segment.start * file_rate // rate  # the kept part, in the file's frames
    last = min(file_frames, (segment.start + segment.length) * file_rate // rate)
    if segment.start + segment.length >= model_length(path, rate):
        last = file_frames  # the last segment keeps the file's end
    context = 2 * round(FFT_SIZE * file_rate / rate)  # what a frame of the refinement reaches
    a, b = max(0, first - context), min(file_frames, last + context)
    channels = read_frames(path, a, b - a).T * np.float32(input_gain(path))  # (C, b - a)
    refined = refine_channels(torch.from_numpy(segment.audio), torch.from_numpy(waves), torch.from_numpy(channels),
                              rate, file_rate, offset=segment.start - segment.offset, channel_offset=a)  # Eq. 10
    return refined[..., first - a:last - a].numpy(), channels[:, first - a:last - a], first, last
