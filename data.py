"""Datasets on disk, random training chunks, fixed evaluation chunks, and the embedded default.

Three on-disk layouts are recognised (`detect_layout`) and read into `Track`s (`find_tracks`),
each mapping source names to the audio file(s) of that source:
- Slakh2100 (Manilow et al., WASPAA 2019, arXiv:1909.08494), e.g. its flac_redux release:
  `{train,validation,test}/TrackNNNNN/` with `mix.flac`, `stems/Sxx.flac` and `metadata.yaml`. The
  four benchmark stems are chosen by each stem's `inst_class` (Bass, Drums, Guitar, Piano; `is_drum`
  also means drums); stems of one class are summed; unrendered or missing stems are skipped.
- MUSDB18-HQ (Rafii et al., 2019, doi:10.5281/zenodo.3338373): `{train,test}/<Artist - Title>/` with
  `mixture.wav` and `vocals.wav drums.wav bass.wav other.wav`; every 10th training track in name
  order is validation.
- Any other folder of audio files (searched recursively): every file is a track with the single
  source "mix", in a split by a stable hash of its relative path (about 90/5/5%; with 3 files or
  more no split is empty, with fewer every split is all of them).
Without a dataset the project trains on its embedded one (`synth.py`), written once in the Slakh
layout to `data/synthetic-v{version}-sr{rate}-seed{seed}`. Reading is partial (`read_source` decodes
only the chunk it returns), mono, resampled.
"""
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

import synth
from audio import AUDIO_SUFFIXES, audio_info, read_audio
from files import UserError

STEMS = ("bass", "drums", "guitar", "piano")
DEFAULT_SAMPLE_RATE = 16000
SPLITS = ("train", "validation", "test")
SLAKH_CLASSES = {"Bass": "bass", "Drums": "drums", "Guitar": "guitar", "Piano": "piano"}
MUSDB_SOURCES = ("vocals", "drums", "bass", "other")
MUSDB_VALIDATION_EVERY = 10  # every 10th MUSDB training track (in name order) is validation
FOLDER_SHARES = (0.90, 0.05, 0.05)  # train, validation, test for a plain folder of audio files


# ---- the embedded default dataset ----

def default_data_dir(sample_rate, seed=0):
    """Cache folder of the synthetic dataset: <repo>/data/, or $AUDIO_MLM_DATA_CACHE if set.

    The generator's version is in the name, so a dataset written by an older generator is never reused.
    """
    parent = os.environ.get("AUDIO_MLM_DATA_CACHE") or Path(__file__).resolve().parent / "data"
    return Path(parent) / f"synthetic-v{synth.GENERATOR_VERSION}-sr{int(sample_rate)}-seed{int(seed)}"


def embedded_dataset(sample_rate=DEFAULT_SAMPLE_RATE, seed=0, num_tracks=synth.DEFAULT_NUM_TRACKS):
    """Path of the synthetic dataset (Slakh layout) at `sample_rate`, generating it on first use."""
    root = default_data_dir(sample_rate, seed)
    if not synth.is_complete(root, sample_rate, seed, num_tracks):
        print(f"data: rendering the embedded dataset in {root} (first use, about 2 minutes) ...", end="", flush=True)
        start = time.time()
        synth.write_synthetic_dataset(root, sample_rate, seed, num_tracks)
        print(f" done in {time.time() - start:.1f} s", flush=True)
    return root


# ---- finding tracks ----

@dataclass
class Track:
    name: str
    split: str
    sources: dict  # source name ("mix", "bass", ...) -> list[Path], summed when read
    duration: float = field(default=None, repr=False, compare=False)  # cached by track_duration


def has_audio(root):
    return any(path.suffix.lower() in AUDIO_SUFFIXES for path in root.rglob("*") if path.is_file())


def detect_layout(root):
    """'slakh', 'musdb' or 'folder'; UserError for a missing folder or one with no audio."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: is a file, not a dataset folder")
    if any(any((root / split).glob("*/metadata.yaml")) for split in SPLITS):
        return "slakh"
    if any(any((root / split).glob("*/mixture.wav")) for split in ("train", "test")):
        return "musdb"
    if has_audio(root):
        return "folder"
    raise UserError(f"{root}: no audio files found (expected Slakh2100, MUSDB18-HQ, or a folder "
                    f"of {'/'.join(AUDIO_SUFFIXES)} files)")


def find_tracks(root, split):
    """The tracks of one split ('train', 'validation' or 'test') of the dataset in `root`."""
    if split not in SPLITS:
        raise UserError(f"{root}: unknown split '{split}' (use one of {', '.join(SPLITS)})")
    root = Path(root)
    layout = detect_layout(root)
    tracks = {"slakh": slakh_tracks, "musdb": musdb_tracks, "folder": folder_tracks}[layout](root, split)
    if not tracks:
        raise UserError(f"{root}: the {split} split of this {layout} dataset has no tracks")
    return tracks


def slakh_tracks(root, split):
    """Tracks of root/split/*/ with metadata.yaml: the mix plus our four stems, by inst_class."""
    tracks = []
    for folder in sorted(path.parent for path in (root / split).glob("*/metadata.yaml")):
        metadata_path = folder / "metadata.yaml"
        try:
            # the C loader when PyYAML has it: the same safe loader as yaml.safe_load, ~10x faster
            safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            metadata = yaml.load(metadata_path.read_text(), Loader=safe_loader)
        except yaml.YAMLError as error:
            raise UserError(f"{metadata_path}: not valid YAML ({str(error).splitlines()[0]})") from None
        if not (folder / "mix.flac").exists():
            raise UserError(f"{folder}: Slakh track without mix.flac")
        sources = {"mix": [folder / "mix.flac"]}
        audio_dir = folder / (metadata or {}).get("audio_dir", "stems")
        for stem_id, info in sorted(((metadata or {}).get("stems") or {}).items()):
            stem = "drums" if info.get("is_drum") else SLAKH_CLASSES.get(info.get("inst_class"))
            path = audio_dir / f"{stem_id}.flac"
            if stem is not None and info.get("audio_rendered", True) and path.exists():
                sources.setdefault(stem, []).append(path)
        tracks.append(Track(folder.name, split, sources))
    return tracks


def musdb_tracks(root, split):
    """Tracks of root/{train,test}/*/ with mixture.wav; validation = every 10th training track."""
    if split == "test":
        folders = sorted(path.parent for path in (root / "test").glob("*/mixture.wav"))
    else:
        train = sorted(path.parent for path in (root / "train").glob("*/mixture.wav"))
        validation = set(train[::MUSDB_VALIDATION_EVERY])
        folders = [f for f in train if (f in validation) == (split == "validation")]
    tracks = []
    for folder in folders:
        sources = {"mix": [folder / "mixture.wav"]}
        for name in MUSDB_SOURCES:
            if (folder / f"{name}.wav").exists():
                sources[name] = [folder / f"{name}.wav"]
        tracks.append(Track(folder.name, split, sources))
    return tracks


def folder_split(files, root):
    """Split files by a stable hash of their relative path; no split is empty when there are 3+."""
    if len(files) < 3:
        return {split: list(files) for split in SPLITS}

    def share(path):  # a number in [0, 1) that depends on the relative path only
        digest = hashlib.sha1(path.relative_to(root).as_posix().encode()).hexdigest()
        return int(digest[:12], 16) / 16**12

    splits = {split: [] for split in SPLITS}
    for path in sorted(files, key=share):
        x = share(path)
        split = "train" if x < FOLDER_SHARES[0] else "validation" if x < sum(FOLDER_SHARES[:2]) else "test"
        splits[split].append(path)
    while any(not splits[split] for split in SPLITS):  # top up an empty split from the largest one
        empty = next(split for split in SPLITS if not splits[split])
        largest = max(SPLITS, key=lambda split: len(splits[split]))
        splits[empty].append(splits[largest].pop())  # the file with the highest share
    return {split: sorted(paths) for split, paths in splits.items()}


def folder_tracks(root, split):
    """Every audio file under root is a track with the single source "mix"."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [Track(path.relative_to(root).as_posix(), split, {"mix": [path]})
            for path in folder_split(files, root)[split]]


def dataset_sources(tracks):
    """Names of the sources any of the tracks has: "mix" first, then the others in sorted order."""
    names = {name for track in tracks for name in track.sources}
    return ("mix",) + tuple(sorted(names - {"mix"}))


# ---- reading audio ----

def track_duration(track):
    """Length of the track's mixture in seconds (from the file header; cached on the track)."""
    if track.duration is None:
        rate, frames, _ = audio_info(track.sources["mix"][0])
        track.duration = frames / rate
    return track.duration


def read_file_chunk(path, sample_rate, start, length):
    """Samples [start, start + length) of `path` at `sample_rate`, decoding only that part.

    resample_poly maps input frame i to output sample i*up/down, so we start reading on a frame
    that is a multiple of `down` (an exact output sample) and read a margin of whole blocks on both
    sides, wider than the resampling filter, so the chunk equals the same slice of the whole file
    resampled. Past the end of the file the chunk is zero-padded.
    """
    file_rate, file_frames, _ = audio_info(path)
    common = np.gcd(int(file_rate), int(sample_rate))
    up, down = int(sample_rate) // common, int(file_rate) // common  # `up` samples per `down` frames
    # resample_poly's filter reaches 10 * max(up, down) upsampled samples = 10 / min(up, down) blocks
    margin = 0 if up == down else 10 // min(up, down) + 2  # in blocks
    first_block = max(0, start // up - margin)
    last_block = -(-(start + length) // up) + margin
    first_frame = first_block * down
    out = np.zeros(length, dtype=np.float32)
    if first_frame >= file_frames:
        return out
    frames = min(last_block * down, file_frames) - first_frame
    x = read_audio(path, sample_rate, first_frame, frames)  # (T',) starting at sample first_block*up
    x = x[start - first_block * up:][:length]
    out[: len(x)] = x
    return out


def read_source(track, source, sample_rate, start_seconds, duration_seconds):
    """(T,) float32, T = round(duration_seconds * sample_rate): the source's files summed, mono; zeros
    when the track lacks the source, and past the end of a file."""
    start, length = round(start_seconds * sample_rate), round(duration_seconds * sample_rate)
    out = np.zeros(length, dtype=np.float32)
    for path in track.sources.get(source, []):
        out += read_file_chunk(path, sample_rate, start, length)
    return out


def is_silent(x, silence_db):
    """True if the RMS of x is below `silence_db` dB relative to full scale."""
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12) < silence_db


# ---- chunks for training and evaluation ----

class ChunkSampler:
    """Random training chunks (B, 1, T) from the mixtures and the stems of a list of tracks.

    Each chunk: a track uniformly at random, one of its sources (among `sources`; None means all
    the dataset has) uniformly at random, a uniform offset. Chunks quieter than `silence_db` dBFS
    are drawn again, at most `max_retries` times, after which the last one is kept. All the
    randomness comes from the sampler's own generator, so a seed gives the same batches.
    """

    def __init__(self, tracks, sample_rate, chunk_length, sources=None, seed=0, silence_db=-50.0,
                 max_retries=20):
        wanted = set(dataset_sources(tracks) if sources is None else sources)
        self.choices = [(track, sorted(wanted & set(track.sources))) for track in tracks]
        self.choices = [(track, names) for track, names in self.choices if names]
        if not self.choices:
            raise UserError(f"no track has any of the sources {sorted(wanted)}")
        self.sample_rate, self.chunk_length = sample_rate, chunk_length
        self.silence_db, self.max_retries = silence_db, max_retries
        self.rng = np.random.default_rng(seed)

    def draw(self):
        track, names = self.choices[self.rng.integers(len(self.choices))]
        source = names[self.rng.integers(len(names))]
        last_start = max(0, int(track_duration(track) * self.sample_rate) - self.chunk_length)
        start = int(self.rng.integers(last_start + 1))
        return read_source(track, source, self.sample_rate, start / self.sample_rate,
                           self.chunk_length / self.sample_rate)

    def sample(self, batch_size):
        chunks = []
        for _ in range(batch_size):
            for _ in range(self.max_retries + 1):
                chunk = self.draw()
                if not is_silent(chunk, self.silence_db):
                    break
            chunks.append(chunk)
        return torch.from_numpy(np.stack(chunks))[:, None, :]  # (B, 1, T)


def eval_chunks(tracks, sample_rate, chunk_length, sources=None, chunks_per_track=2, silence_db=-50.0):
    """Fixed held-out chunks [(track name, source, (T,) waveform)] for validation and test metrics.

    For every track and every one of `sources` it has (None: all the dataset has), `chunks_per_track`
    offsets evenly spaced over the track (centred in equal parts of it); near-silent chunks are left out.
    """
    sources = dataset_sources(tracks) if sources is None else sources
    chunks = []
    for track in tracks:
        total = int(track_duration(track) * sample_rate)
        for source in sources:
            if source not in track.sources:
                continue
            for k in range(chunks_per_track):
                centre = (k + 0.5) * total / chunks_per_track
                start = int(np.clip(centre - chunk_length / 2, 0, max(0, total - chunk_length)))
                x = read_source(track, source, sample_rate, start / sample_rate, chunk_length / sample_rate)
                if not is_silent(x, silence_db):
                    chunks.append((track.name, source, x))
    return chunks
