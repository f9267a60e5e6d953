"""The token cache and BERT training batches: a dataset tokenized once, frame-aligned, memory-mapped.

`build_token_cache` runs the VQ-VAE over every track of a split, for the mixture and each stem
(a stem a track lacks is encoded as silence), and writes, per split:
- `{split}-tokens.npy`: (n_sources, N) uint16 code ids, all tracks concatenated (N frames);
- `{split}-features.npy`: (n_sources, N, D) float16, the L2-normalised pre-quantisation latents,
  BERT's continuous input beside the token ids (about 330 GB for all of Slakh2100 at k = 4);
- `{split}-active.npy`: (n_sources, N) bool, frame RMS above -45 dBFS (is the stem playing?);
- `{split}.json`: track names, their start frame in N, the source order, the VQ-VAE fingerprint.
Frame s of every source covers the same 2^k samples. The folder is named by a fingerprint of the
VQ-VAE weights and the dataset path, so a new tokenizer never reads an old cache; arrays are
memory-mapped. `BatchMaker` draws training batches from a cache: separation items in the Eq. 8
layout and single-source items for masked modelling.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cli import autocast
from data import find_tracks, read_source, track_duration
from files import UserError, atomic_write
from inputs import encode_in_pieces
from masking import CONTEXT, IGNORE, bert_mask, cosine_mask, hidden_frames, middle_mask
from tasks import separation_inputs, single_source_inputs

ACTIVE_DB = -45.0  # a frame whose RMS is below this (dBFS) counts as silent
CACHE_VERSION = 6  # part of the cache folder's name: a new layout never reads an old cache


def vqvae_fingerprint(model):
    """A short hash of the VQ-VAE's weights: which tokenizer a cache or a BERT belongs to."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def encode_waveform(model, wave, device):
    """(T,) waveform -> tokens (S,) int64, L2-normalised latents (S, D) float32, active (S,) bool.

    S = ceil(T / 2^k). The encoder runs over overlapping 2 s pieces in batches
    (`inputs.encode_in_pieces`): bounded memory for a file of any length, and twice the speed.
    """
    hop = model.hop
    frames = -(-len(wave) // hop)
    wave = np.pad(np.asarray(wave, dtype=np.float32), (0, frames * hop - len(wave)))
    with autocast(device):  # as infer.py encodes: the cache holds the tokens a user's files get
        h = encode_in_pieces(model, torch.from_numpy(wave).to(device)).float()  # (S, D)
    _, _, indices, _ = model.quantizer(h[None])
    rms = np.sqrt(np.mean(wave.reshape(-1, hop) ** 2, axis=1))  # (S,)
    return indices[0].cpu(), F.normalize(h, dim=-1).cpu(), 20 * np.log10(rms + 1e-12) > ACTIVE_DB


def encode_track(model, track, sources, device):
    """Tokens (n_sources, S) uint16, features (n_sources, S, D) float16, activity (n_sources, S) of a track."""
    rate, hop = model.config.sample_rate, model.hop
    frames = int(np.ceil(track_duration(track) * rate / hop))
    tokens = np.zeros((len(sources), frames), dtype=np.uint16)
    features = np.zeros((len(sources), frames, model.config.code_dim), dtype=np.float16)
    active = np.zeros((len(sources), frames), dtype=bool)
    for i, source in enumerate(sources):
        wave = read_source(track, source, rate, 0.0, frames * hop / rate)
        indices, latents, active[i] = encode_waveform(model, wave, device)
        tokens[i], features[i] = indices.numpy(), latents.numpy()
    return tokens, features, active


def cache_folder(root, data_root, fingerprint):
    """root/token-cache/<hash of the dataset path and the VQ-VAE fingerprint>."""
    key = f"{Path(data_root).resolve()}|{fingerprint}|{CACHE_VERSION}"
    return Path(root) / "token-cache" / hashlib.sha1(key.encode()).hexdigest()[:12]


def build_token_cache(model, data_root, split, folder, stems, device):
    """Tokenize one split into `folder` (skipped when already there); returns the folder."""
    folder = Path(folder)
    meta_path = folder / f"{split}.json"
    if meta_path.exists():
        return folder
    tracks = find_tracks(data_root, split)
    sources = ("mix",) + tuple(stems)
    model.eval()
    parts = [encode_track(model, track, sources, device) for track in tracks]
    starts = np.cumsum([0] + [p[0].shape[1] for p in parts])
    for name, index in (("tokens", 0), ("features", 1), ("active", 2)):  # frames are axis 1 of each
        with atomic_write(folder / f"{split}-{name}.npy") as tmp:
            np.save(tmp, np.concatenate([p[index] for p in parts], axis=1))
    meta = {"sources": list(sources), "tracks": [t.name for t in tracks], "starts": starts.tolist(),
            "fingerprint": vqvae_fingerprint(model), "hop": model.hop,
            "sample_rate": model.config.sample_rate}
    with atomic_write(meta_path) as tmp:  # written last: its presence means the cache is complete
        tmp.write_text(json.dumps(meta))
    return folder


class TokenCache:
    """One split of a token cache, memory-mapped."""

    def __init__(self, folder, split):
        folder = Path(folder)
        meta_path = folder / f"{split}.json"
        if not meta_path.exists():
            raise UserError(f"{folder}: no token cache for the {split} split")
        self.meta = json.loads(meta_path.read_text())
        self.sources = self.meta["sources"]
        self.tokens = np.load(folder / f"{split}-tokens.npy", mmap_mode="r")  # (n_sources, N)
        self.features = np.load(folder / f"{split}-features.npy", mmap_mode="r")  # (n_sources, N, D)
        self.active = np.load(folder / f"{split}-active.npy", mmap_mode="r")  # (n_sources, N)
        self.starts = np.asarray(self.meta["starts"])  # track t spans starts[t]:starts[t+1]

    def track_range(self, t):
        return int(self.starts[t]), int(self.starts[t + 1])

    def latents(self, row, start, end):
        """(end - start, D) float32 features of one source."""
        return torch.from_numpy(self.features[row, start:end].astype(np.float32))

    def code_counts(self, num_codes, source=None):
        """How often each code occurs, over every source (or the one named): the unigram distribution, (K,)."""
        row = None if source is None else self.sources.index(source)
        tokens = np.asarray(self.tokens if row is None else self.tokens[row:row + 1])  # (sources, frames)
        return np.bincount(tokens.reshape(-1), minlength=num_codes)


def separation_item(mixture, stem, features, stem_features, separators, vocab):
    """Training separation sequences: the inputs inference meets (`tasks.separation_inputs`, Eq. 8,
    every stem frame MASK), every stem code a target, the stem's latents Eq. 11's targets (leaving some
    stem frames visible taught less: docs/experiments/separation-training.md). mixture, stem: (B, M)
    ids; features, stem_features: (B, M, D); separators: (B,) SEP_stem ids -> (B, 2M + 1) tensors."""
    B, M = mixture.shape
    zeros = torch.zeros(B, M + 1, features.shape[-1], dtype=features.dtype)
    return {**separation_inputs(mixture, features, separators, vocab),
            "targets": torch.cat([torch.full((B, M + 1), IGNORE, dtype=stem.dtype), stem], dim=1),
            "latents": torch.cat([zeros, stem_features], dim=1)}


class BatchMaker:
    """Random training batches from a TokenCache, with their own numpy and torch generators.

    A share `mlm_share` of each batch is single-source masked modelling over a window of the whole
    context (`mlm_batch`); the rest is separation in the Eq. 8 layout, each item a random stem in a
    window of M = (context - 1) // 2 frames where that stem is playing in at least a quarter of the
    frames (drawn again up to 20 times), so "silence everywhere" is not a winning guess.
    """

    def __init__(self, cache, vocab, stems, context, seed=0, mlm_share=0.25):
        self.cache, self.vocab, self.stems, self.context = cache, vocab, list(stems), context
        self.frames = (context - 1) // 2  # M
        self.mlm_share = mlm_share
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        lengths = np.diff(cache.starts)
        self.tracks = [t for t in range(len(lengths)) if lengths[t] >= context]
        if not self.tracks:
            raise UserError(f"every track is shorter than the context of {context} tokens")

    def window(self, length):
        t = self.tracks[self.rng.integers(len(self.tracks))]
        start, end = self.cache.track_range(t)
        offset = start + int(self.rng.integers(end - start - length + 1))
        return offset, offset + length

    def separation_batch(self, batch_size):
        items, mix_row = [], self.cache.sources.index("mix")
        for _ in range(batch_size):
            name = self.stems[self.rng.integers(len(self.stems))]
            row = self.cache.sources.index(name)
            for _ in range(20):
                a, b = self.window(self.frames)
                if self.cache.active[row, a:b].mean() >= 0.25:
                    break
            items.append((self.cache.tokens[mix_row, a:b], self.cache.tokens[row, a:b], self.cache.latents(mix_row, a, b),
                          self.cache.latents(row, a, b), self.vocab.stem_separator(name)))
        mixture, stem, features, stem_features, separators = zip(*items)
        mixture = torch.from_numpy(np.stack(mixture).astype(np.int64))  # (B, M)
        stem = torch.from_numpy(np.stack(stem).astype(np.int64))  # (B, M)
        features, stem_features = torch.stack(features), torch.stack(stem_features)  # (B, M, D) each
        return separation_item(mixture, stem, features, stem_features, torch.tensor(separators), self.vocab)

    def mlm_batch(self, batch_size):
        """Single-source windows of the whole context, positions 0..L-1, in three equal parts: BERT's
        15% masking; a cosine share of scattered frames (`cosine_mask`); and a span of L/16 to L/2 central frames (`middle_mask`: the gaps inpainting
        fills, 0.03 to 0.26 s at k = 4). The features of every chosen frame (masked, replaced or kept)
        are hidden, the others are the source's own; the chosen frames' own latents are the targets of
        Eq. 11, so the latent head learns to fill a gap as it learned to separate. The mixture and
        every stem are drawn alike."""
        rows = self.rng.integers(len(self.cache.sources), size=batch_size)
        windows = [self.window(self.context) for _ in range(batch_size)]
        tokens = torch.from_numpy(np.stack([self.cache.tokens[r, a:b] for r, (a, b) in zip(rows, windows)]).astype(np.int64))
        first, second, L = (batch_size + 2) // 3, (batch_size + 2) // 3 + (batch_size + 1) // 3, self.context  # thirds
        spans = torch.randint(max(1, L // 16), L // 2 + 1, (batch_size - second,), generator=self.generator)
        masked = [bert_mask(tokens[:first], self.vocab, self.generator),
                  cosine_mask(tokens[first:second], self.vocab, self.generator),
                  middle_mask(tokens[second:], spans, self.vocab)]
        inputs, labels = (torch.cat(parts) for parts in zip(*masked))  # (B, L) each
        features = torch.stack([self.cache.latents(r, a, b) for r, (a, b) in zip(rows, windows)])  # (B, L, D)
        hidden = hidden_frames(inputs, labels, self.vocab)  # (B, L)
        chosen = (labels != IGNORE)[..., None]  # (B, L, 1) the frames predicted
        return {**single_source_inputs(inputs, features, hidden=hidden), "targets": labels,
                "latents": features * chosen}  # Eq. 11's targets: the chosen frames' latents, zero elsewhere

    def sample(self, batch_size):
        """A training batch; the separation part is padded to the context length with PAD."""
        n_mlm = int(round(batch_size * self.mlm_share))
        parts = []
        if batch_size - n_mlm > 0:
            parts.append(pad_to(self.separation_batch(batch_size - n_mlm), self.context, self.vocab.pad))
        if n_mlm > 0:
            parts.append(pad_to(self.mlm_batch(n_mlm), self.context, self.vocab.pad))
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def pad_to(batch, length, pad_id):
    """Right-pad every (B, L, ...) tensor of a batch to `length`; adds `padding` (B, length) bool."""
    B, L = batch["tokens"].shape[:2]
    extra = length - L
    fill = {"tokens": pad_id, "segments": CONTEXT, "positions": 0, "targets": IGNORE, "features": 0.0, "latents": 0.0}
    out = {}
    for key, value in batch.items():
        out[key] = F.pad(value, (0, 0) * (value.dim() - 2) + (0, extra), value=fill[key])  # along L, axis 1
    out["padding"] = torch.arange(length).expand(B, length) >= L
    return out
