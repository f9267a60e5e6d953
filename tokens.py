"""The token cache and BERT training batches: a dataset tokenized once, frame-aligned, memory-mapped.

`build_token_cache` runs the VQ-VAE over every track of a split, for the mixture and each stem
(a stem a track lacks is encoded as silence), and writes, per split:
- `{split}-tokens.npy`: (n_sources, N) uint16 code ids, all tracks concatenated (N frames); with a
  residual tokenizer of Q > 1 levels (Eq. 9), (n_sources, N, Q);
- `{split}-features.npy`: (n_latent_sources, N, D) float16, the L2-normalised pre-quantisation
  latents (what the quantizer compares with the codebook): BERT's continuous input beside the
  token ids, for the mixture in separation and for the visible positions in masked modelling.
  Every source's by default; with `stem_latents=False` the mixture's only (a fifth of the size,
  which matters at Slakh2100 scale: ~330 GB at k = 4 with every stem's), and single-source items
  of a stem then see its tokens only;
- `{split}-active.npy`: (n_sources, N) bool, frame RMS above -45 dBFS (is the stem playing?);
- `{split}.json`: track names, their start frame in N, the source order, the sources with latents,
  Q, the VQ-VAE fingerprint.
Frame s of every source and of the features covers the same 2^k samples, so the stem frame s
lines up with the mixture frame s. The cache folder is named by a fingerprint of the VQ-VAE
weights and the dataset path, so a new tokenizer gets a new cache and an old one is never
silently reused; arrays are opened with `mmap_mode="r"`, so a large dataset is never all in RAM.

`BatchMaker` draws training batches from a cache: separation items in the Eq. 8 layout (a
window where the wanted stem is playing) and single-source items for plain masked modelling.
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
from masking import CONTEXT, IGNORE, TARGET, bert_mask, cosine_mask, gap_mask, hidden_frames, separation_layout
from tasks import single_source_inputs

ACTIVE_DB = -45.0  # a frame whose RMS is below this (dBFS) counts as silent
CACHE_VERSION = 4  # part of the cache folder's name: a new layout never reads an old cache


def vqvae_fingerprint(model):
    """A short hash of the VQ-VAE's weights: which tokenizer a cache or a BERT belongs to."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def encode_waveform(model, wave, device):
    """(T,) waveform -> tokens (S,) int64 ((S, Q) if Q > 1), L2-normalised latents (S, D) float32,
    active (S,) bool.

    S = ceil(T / 2^k). The encoder runs over overlapping 2 s pieces in batches
    (`VQVAE.encode_in_pieces`): bounded memory for a file of any length, and twice the speed.
    """
    hop = model.hop
    frames = -(-len(wave) // hop)
    wave = np.pad(np.asarray(wave, dtype=np.float32), (0, frames * hop - len(wave)))
    with autocast(device):  # as infer.py encodes: the cache holds the tokens a user's files get
        h = model.encode_in_pieces(torch.from_numpy(wave).to(device)).float()  # (S, D)
    _, _, indices, _ = model.quantizer(h[None])
    rms = np.sqrt(np.mean(wave.reshape(-1, hop) ** 2, axis=1))  # (S,)
    return indices[0].cpu(), F.normalize(h, dim=-1).cpu(), 20 * np.log10(rms + 1e-12) > ACTIVE_DB


def encode_track(model, track, sources, latent_sources, device):
    """Tokens (n_sources, S) uint16 ((n_sources, S, Q) if Q > 1), features (n_latent_sources, S, D)
    float16 of the `latent_sources`, activity (n_sources, S) of a track."""
    rate, hop, Q = model.config.sample_rate, model.hop, model.config.codebooks
    frames = int(np.ceil(track_duration(track) * rate / hop))
    tokens = np.zeros((len(sources), frames) + ((Q,) if Q > 1 else ()), dtype=np.uint16)
    features = np.zeros((len(latent_sources), frames, model.config.code_dim), dtype=np.float16)
    active = np.zeros((len(sources), frames), dtype=bool)
    for i, source in enumerate(sources):
        wave = read_source(track, source, rate, 0.0, frames * hop / rate)
        indices, latents, active[i] = encode_waveform(model, wave, device)
        tokens[i] = indices.numpy()
        if source in latent_sources:
            features[latent_sources.index(source)] = latents.numpy()
    return tokens, features, active


def cache_folder(root, data_root, fingerprint, stem_latents=True):
    """root/token-cache/<hash of the dataset path, the VQ-VAE fingerprint and which latents are kept>."""
    key = f"{Path(data_root).resolve()}|{fingerprint}|{CACHE_VERSION}" + ("" if stem_latents else "|mixture latents")
    return Path(root) / "token-cache" / hashlib.sha1(key.encode()).hexdigest()[:12]


def build_token_cache(model, data_root, split, folder, stems, device, stem_latents=True):
    """Tokenize one split into `folder` (skipped when already there); returns the folder.
    `stem_latents=False` keeps the latents of the mixture only (see the module docstring)."""
    folder = Path(folder)
    meta_path = folder / f"{split}.json"
    if meta_path.exists():
        return folder
    tracks = find_tracks(data_root, split)
    sources = ("mix",) + tuple(stems)
    latent_sources = sources if stem_latents else ("mix",)
    model.eval()
    parts = [encode_track(model, track, sources, latent_sources, device) for track in tracks]
    starts = np.cumsum([0] + [p[0].shape[1] for p in parts])
    for name, index in (("tokens", 0), ("features", 1), ("active", 2)):  # frames are axis 1 of each
        with atomic_write(folder / f"{split}-{name}.npy") as tmp:
            np.save(tmp, np.concatenate([p[index] for p in parts], axis=1))
    meta = {"sources": list(sources), "tracks": [t.name for t in tracks], "starts": starts.tolist(),
            "latent_sources": list(latent_sources), "codebooks": model.config.codebooks,
            "fingerprint": vqvae_fingerprint(model), "hop": model.hop, "sample_rate": model.config.sample_rate}
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
        self.latent_sources = self.meta["latent_sources"]
        self.tokens = np.load(folder / f"{split}-tokens.npy", mmap_mode="r")  # (n_sources, N) or (n_sources, N, Q)
        self.features = np.load(folder / f"{split}-features.npy", mmap_mode="r")  # (n_latent_sources, N, D)
        self.active = np.load(folder / f"{split}-active.npy", mmap_mode="r")  # (n_sources, N)
        self.starts = np.asarray(self.meta["starts"])  # track t spans starts[t]:starts[t+1]

    def track_range(self, t):
        return int(self.starts[t]), int(self.starts[t + 1])

    def latents(self, row, start, end):
        """(end - start, D) float32 features of one source (zeros for a source stored without)."""
        source = self.sources[row]
        if source not in self.latent_sources:
            return torch.zeros(end - start, self.features.shape[-1])
        return torch.from_numpy(self.features[self.latent_sources.index(source), start:end].astype(np.float32))

    def code_counts(self, num_codes, source=None):
        """How often each code occurs, over every source (or the one named): the unigram
        distribution, (K,), or (Q, K) for frames of Q codes (each level has its own codebook)."""
        row = None if source is None else self.sources.index(source)
        tokens = np.asarray(self.tokens if row is None else self.tokens[row:row + 1])  # (sources, frames[, Q])
        if tokens.ndim == 2:
            return np.bincount(tokens.reshape(-1), minlength=num_codes)
        return np.stack([np.bincount(tokens[..., q].reshape(-1), minlength=num_codes) for q in range(tokens.shape[-1])])


def separation_item(mixture, stem, features, separator, vocab, generator, masking, first_level_share=None):
    """One batch's separation sequences in the Eq. 8 layout, stem tokens masked for training.

    mixture, stem: (B, M) code ids, or (B, M, Q); features: (B, M, D) mixture latents. The stem
    part is masked by `masking` ("cosine": MaskGIT ratios up to 100%, level masking for Q > 1;
    "bert": the 15% procedure); the mixture part is never masked. Returns a dict of (B, 2M + 1)
    tensors ((B, 2M + 1, Q) tokens and targets) for `AudioBERT.forward`.
    """
    if masking == "cosine":
        stem_inputs, stem_labels = cosine_mask(stem, vocab, generator, first_level_share=first_level_share)
    else:
        stem_inputs, stem_labels = bert_mask(stem, vocab, generator)
    tokens, segments, positions = separation_layout(mixture, stem_inputs, separator)
    B, M = mixture.shape[:2]
    labels = torch.cat([torch.full((B, M + 1, *stem.shape[2:]), IGNORE, dtype=stem.dtype), stem_labels], dim=1)
    zero = torch.zeros(B, 1, features.shape[-1], dtype=features.dtype)
    # features at mixture frame s and at stem frame s: the frame-local conditioning
    return {"tokens": tokens, "segments": segments, "positions": positions,
            "features": torch.cat([features, zero, features], dim=1), "targets": labels}


class BatchMaker:
    """Random training batches from a TokenCache, with their own numpy and torch generators.

    A share `mlm_share` of each batch is single-source masked modelling over a window of the whole
    context (one gap in a share `gap_share` of those items, the rest BERT's 15% masking or a cosine
    ratio, half and half: `mlm_batch`; a share `mixture_share` of them from the mixture, the rest
    from the stems, or every source alike by default; with `mixture_segment` a mixture's items are
    in segment CONTEXT, as the mixture half of Eq. 8 is, and a stem's in TARGET); the rest is separation in
    the Eq. 8 layout, each item a random stem in a window of M = (context - 1) // 2 frames where
    that stem is playing in at least a quarter of the frames (drawn again up to 20 times), so
    "silence everywhere" is not a winning guess.
    """

    def __init__(self, cache, vocab, stems, context, seed=0, mlm_share=0.25, masking="cosine", first_level_share=None,
                 gap_share=0.0, mixture_share=None, mixture_segment=False):
        self.cache, self.vocab, self.stems, self.context = cache, vocab, list(stems), context
        self.frames = (context - 1) // 2  # M
        self.mlm_share, self.masking, self.first_level_share = mlm_share, masking, first_level_share
        self.gap_share, self.mixture_share, self.mixture_segment = gap_share, mixture_share, mixture_segment
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
        mixture, stem, features, separators = [], [], [], []
        mix_row = self.cache.sources.index("mix")
        for _ in range(batch_size):
            name = self.stems[self.rng.integers(len(self.stems))]
            row = self.cache.sources.index(name)
            for _ in range(20):
                a, b = self.window(self.frames)
                if self.cache.active[row, a:b].mean() >= 0.25:
                    break
            mixture.append(self.cache.tokens[mix_row, a:b])
            stem.append(self.cache.tokens[row, a:b])
            features.append(self.cache.latents(mix_row, a, b))
            separators.append(self.vocab.stem_separator(name))
        mixture = torch.from_numpy(np.stack(mixture).astype(np.int64))  # (B, M)
        stem = torch.from_numpy(np.stack(stem).astype(np.int64))  # (B, M)
        features = torch.stack(features)  # (B, M, D)
        items = [separation_item(mixture[i:i + 1], stem[i:i + 1], features[i:i + 1], separators[i],
                                 self.vocab, self.generator, self.masking, self.first_level_share)
                 for i in range(batch_size)]
        return {key: torch.cat([item[key] for item in items]) for key in items[0]}

    def mlm_batch(self, batch_size):
        """Single-source windows of the whole context, positions 0..L-1, masked three ways: a share
        `gap_share` of the items as one gap each (`gap_mask`: what inpainting meets), the rest half
        BERT's 15% and half a cosine share of scattered frames. The features of every chosen
        position (masked, replaced or kept), and of a whole gap, are hidden; the others are the
        source's own. With frames of Q > 1 codes the cosine items are level-masked as inpainting
        decodes a gap: the frames not chosen stay whole, with their latents (`level_mask`'s
        `context_known`)."""
        rows = self.rng.integers(len(self.cache.sources), size=batch_size)  # every source alike
        mix_row = self.cache.sources.index("mix")
        if self.mixture_share is not None and len(self.cache.sources) > 1:  # the mixture in that share, else a stem
            stem_rows = [r for r in range(len(self.cache.sources)) if r != mix_row]
            rows = np.where(self.rng.random(batch_size) < self.mixture_share, mix_row,
                            np.array(stem_rows)[self.rng.integers(len(stem_rows), size=batch_size)])
        windows = [self.window(self.context) for _ in range(batch_size)]
        tokens = torch.from_numpy(np.stack([self.cache.tokens[r, a:b] for r, (a, b) in zip(rows, windows)]).astype(np.int64))
        n_gap = int(round(batch_size * self.gap_share))
        half = (batch_size - n_gap) // 2
        bert_inputs, bert_labels = bert_mask(tokens[:half], self.vocab, self.generator)
        cos_inputs, cos_labels = cosine_mask(tokens[half:batch_size - n_gap], self.vocab, self.generator,  # Q > 1: as a gap is
                                             first_level_share=self.first_level_share, context_known=True)
        gap_inputs, gap_labels, gap = gap_mask(tokens[batch_size - n_gap:], self.vocab, self.generator, self.first_level_share)
        inputs, labels = torch.cat([bert_inputs, cos_inputs, gap_inputs]), torch.cat([bert_labels, cos_labels, gap_labels])
        in_gap = torch.cat([torch.zeros(batch_size - n_gap, tokens.shape[1], dtype=torch.bool), gap])  # (B, L)
        features = torch.stack([self.cache.latents(r, a, b) for r, (a, b) in zip(rows, windows)])  # (B, L, D)
        hidden = hidden_frames(inputs, labels, self.vocab) | in_gap
        segments = torch.tensor([CONTEXT if self.mixture_segment and r == mix_row else TARGET for r in rows])  # (B,)
        return {**single_source_inputs(inputs, features, hidden=hidden, segment=segments), "targets": labels}

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
    fill = {"tokens": pad_id, "segments": CONTEXT, "positions": 0, "targets": IGNORE, "features": 0.0}
    out = {}
    for key, value in batch.items():
        widths = (0, 0, 0, extra) if value.dim() == 3 else (0, extra)
        out[key] = F.pad(value, widths, value=fill[key])
    out["padding"] = torch.arange(length).expand(B, length) >= L
    return out
