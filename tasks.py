"""The two tasks on token sequences of any length: separation (Eq. 8) and inpainting (Eq. 7).

Both run BERT over windows of its context and let `decoding.maskgit_fill` fill the MASKs:
- separation: the mixture's S tokens are cut into windows of M = (context - 1) // 2 frames,
  half overlapping; in each, the layout is mixture, SEP_stem, M MASKs (every stem token masked,
  as at training's 100% end) with the mixture latents at both halves; each frame keeps the
  prediction of the window whose centre is nearest, so no window edge is ever used where a
  better-centred window exists. The VQ-VAE then decodes the whole stem sequence in overlapping
  pieces that equal a single pass (`VQVAE.decode_in_pieces`), so there is no seam to click.
- inpainting: a window of the context centred on the gap, the gap's tokens masked, the latents
  of the audio around it given (the gap's are hidden).

Shapes: S tokens of a whole file, M frames per window, D code dim.
"""
import numpy as np
import torch

from decoding import maskgit_fill
from masking import TARGET, separation_layout


def separation_inputs(mixture, features, separator, vocab):
    """Inference inputs for (B, M) mixture tokens and (B, M, D) latents: every stem token MASK."""
    stem = torch.full_like(mixture, vocab.mask)
    tokens, segments, positions = separation_layout(mixture, stem, separator)
    zero = torch.zeros_like(features[:, :1])
    return {"tokens": tokens, "segments": segments, "positions": positions,
            "features": torch.cat([features, zero, features], dim=1)}


def window_starts(total, window):
    """Starts of half-overlapping windows covering 0..total (the last one ends at `total`)."""
    if total <= window:
        return [0]
    hop = max(1, window // 2)
    starts = list(range(0, total - window, hop))
    return starts + [total - window]


@torch.no_grad()
def separate_tokens(bert, vocab, mixture, features, stem, steps=1, temperature=0.0, batch_size=16,
                    progress=None):
    """(S,) mixture tokens and (S, D) latents -> (S,) predicted tokens of `stem`."""
    device = bert.codebook.device
    S = mixture.shape[0]
    M = min((bert.config.max_positions - 1) // 2, S)
    starts = window_starts(S, M)
    centres = np.array(starts) + M / 2
    owner = np.abs(np.arange(S)[:, None] - centres[None, :]).argmin(axis=1)  # (S,) best window per frame
    result = torch.empty(S, dtype=torch.long)
    separator = vocab.stem_separator(stem)
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first:first + batch_size]
        mix = torch.stack([mixture[a:a + M] for a in batch_starts]).to(device)  # (B, M)
        feats = torch.stack([features[a:a + M] for a in batch_starts]).to(device).float()  # (B, M, D)
        filled = maskgit_fill(bert, separation_inputs(mix, feats, separator, vocab), vocab.mask, steps,
                              temperature)[:, M + 1:].cpu()  # (B, M) the stem half
        for i, a in enumerate(batch_starts):
            frames = np.nonzero(owner[a:a + M] == first + i)[0]
            result[a + frames] = filled[i, frames]
        if progress:
            progress(min(first + batch_size, len(starts)), len(starts))
    return result


def single_source_inputs(tokens, features=None, hidden=None):
    """(B, L) tokens of one source (MASKs included) -> model inputs with positions 0..L-1.

    features (B, L, D): the source's own latents, zeroed where `hidden` (B, L) is True (the
    positions to predict): what is known of the audio around a gap is given, the gap is not.
    """
    B, L = tokens.shape
    inputs = {"tokens": tokens, "segments": torch.full_like(tokens, TARGET),
              "positions": torch.arange(L, device=tokens.device).expand(B, L)}
    if features is not None:
        inputs["features"] = features.masked_fill(hidden[..., None], 0.0)  # (B, L, D)
    return inputs


@torch.no_grad()
def inpaint_tokens(bert, vocab, tokens, features, gap_start, gap_length, steps=8, temperature=0.0):
    """(S,) tokens and (S, D) latents with tokens[gap_start : gap_start + gap_length] unknown ->
    (S,) filled tokens. BERT sees a window of its context centred on the gap (clipped to the
    file), with the latents of the audio around the gap; only the gap changes.
    """
    S, L = tokens.shape[0], min(bert.config.max_positions, tokens.shape[0])
    start = int(np.clip(gap_start + gap_length // 2 - L // 2, 0, S - L))
    window = tokens[start:start + L].clone()
    window[gap_start - start:gap_start - start + gap_length] = vocab.mask
    device = bert.codebook.device
    inputs = single_source_inputs(window[None], features[None, start:start + L].float(), window[None] == vocab.mask)
    filled = maskgit_fill(bert, {key: value.to(device) for key, value in inputs.items()}, vocab.mask, steps, temperature)
    out = tokens.clone()
    out[start:start + L] = filled[0].cpu()
    return out
