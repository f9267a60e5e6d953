"""Reading and writing audio: any rate, any channel count, partial reads, clear errors.

The models work on mono float32 waveforms in [-1, 1] at one sample rate. `read_audio` gets any
file libsndfile can read (wav, flac, ogg, mp3, ...) into that form: it reads only the frames
asked for (a 1 s chunk of a 5-minute file costs 1 s of decoding), averages the channels to mono
and resamples with a polyphase filter (`scipy.signal.resample_poly`). Anything wrong with the
file becomes a `UserError` naming it.
"""
import contextlib
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from files import UserError, atomic_write

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")
OUTPUT_SUFFIXES = (".wav", ".flac", ".ogg")


def audio_info(path):
    """Return (sample_rate, frames, channels) of an audio file, or raise UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")
    try:
        info = sf.info(str(path))
    except Exception as error:  # libsndfile's message is useful but multi-line at times
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a readable audio file ({reason})") from None
    if info.frames <= 0:
        raise UserError(f"{path}: audio file holds no samples")
    return info.samplerate, info.frames, info.channels


def resample(x, from_rate, to_rate):
    """Resample a (..., T) array with a polyphase low-pass filter; a no-op at equal rates."""
    if from_rate == to_rate:
        return x
    g = gcd(int(from_rate), int(to_rate))
    return resample_poly(x, int(to_rate) // g, int(from_rate) // g, axis=-1).astype(np.float32)


def read_frames(path, start=0, frames=-1):
    """(T, channels) float32: `frames` frames from `start`, at the file's rate; UserError for an
    unreadable file and for NaN or infinite samples."""
    audio_info(path)
    try:
        x, _ = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: could not decode audio ({reason})") from None
    if not np.isfinite(x).all():
        raise UserError(f"{path}: audio contains NaN or infinite samples")
    return x


def read_audio(path, sample_rate, start=0, frames=-1):
    """(T,) mono float32 at `sample_rate`: `frames` frames from `start` (at the file's rate), as `read_frames`."""
    x = read_frames(path, start, frames).mean(axis=1)  # (T,) mix down to mono
    return resample(x, audio_info(path)[0], sample_rate)


def check_output_format(path):
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"{path}: unsupported output format '{suffix}' (use {', '.join(OUTPUT_SUFFIXES)})")


@contextlib.contextmanager
def audio_writer(path, sample_rate, channels=1, like=None):
    """Write a file block by block: yields `write(block)`, a block being (T,) mono or (channels, T);
    each block is clipped to [-1, 1]. `like`: an audio file whose sample format (16-bit, 24-bit,
    float...) the output takes where its container allows it, so copied samples keep every bit.

    The blocks go to a temporary file that is renamed onto `path` only when the `with` block
    ends without an error (files.atomic_write): a long output never exists half-written.
    """
    check_output_format(path)
    container = Path(path).suffix.lower()[1:].upper()  # WAV, FLAC or OGG (OUTPUT_SUFFIXES)
    subtype = like and sf.info(str(like)).subtype
    subtype = subtype if subtype and sf.check_format(container, subtype) else None  # else the container's default
    with atomic_write(path) as tmp, sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=channels,
                                                 format=container, subtype=subtype) as file:
        yield lambda x: file.write(np.clip(np.asarray(x, dtype=np.float32).reshape(channels, -1).T, -1.0, 1.0))


def write_audio(path, x, sample_rate):
    """Write a mono waveform atomically (temporary file, then rename); clips to [-1, 1]."""
    with audio_writer(path, sample_rate) as write:
        write(x)
