"""The two tasks on token sequences of any length: separation (Eq. 8) and inpainting (Eq. 7).

Both run BERT over windows of its context and let `decoding.maskgit_fill` fill the MASKs:
- separation: the mixture's S tokens are cut into windows of M = (context - 1) // 2 frames
  that tile it edge to edge (the last one overlaps its neighbour to end with the file); in each,
  the layout is mixture, SEP_stem, M MASKs (every stem token masked, as at training's 100% end)
  with the mixture latents at both halves; a frame two windows hold keeps the prediction of the
  one whose centre is nearest. Every stem is separated in the same pass: the sequences of all
  stems of a window sit in the same batch (one BERT call for the stems of a few windows, not one
  per stem; the tokens are those of one stem at a time). The VQ-VAE then decodes each stem
  sequence in overlapping pieces that equal a single pass (`inputs.decode_in_pieces`), so there is
  no seam to click, and `refine.py` (Eq. 10) shares the mixture among the decoded stems.
- inpainting: a window of the context centred on the gap, the gap's tokens masked, the latents
  of the audio around it given (the gap's are hidden).

Two decoder inputs per stem frame come out of `separate_all`: BERT's tokens, and the predicted
latent z of Eq. 11 (BERT's latent head; `infer.py separate --decode latent`, the default, runs
that alone). Where BERT hesitates between codes, the argmax commits to one of them; the latent
keeps what they share (docs/experiments/latent-head.md).

Shapes: S tokens of a whole file, M frames per window, D code dim, J stems, B batch, K codebook size.
"""
import numpy as np
import torch

from decoding import maskgit_fill
from masking import TARGET, separation_layout

# how infer.py and evaluate.py decode (docs/experiments/decoding.md): one-shot argmax was best for
# separation; for inpainting one sampled step beat eight at every gap length (argmax collapses a
# long gap onto a few codes)
SEPARATE_STEPS = 1
INPAINT_STEPS, INPAINT_TEMPERATURE = 1, 1.0


def separation_inputs(mixture, features, separator, vocab):
    """Inference inputs for (B, M) mixture tokens and (B, M, D) latents: every stem token MASK.

    separator: the SEP_stem id of one stem for every row, or a (B,) tensor of one id per row.
    """
    stem = torch.full_like(mixture, vocab.mask)
    tokens, segments, positions = separation_layout(mixture, stem, separator)  # Eq. 8, SEP_stem per row
    zero = torch.zeros_like(features[:, :1])
    return {"tokens": tokens, "segments": segments, "positions": positions,
            "features": torch.cat([features, zero, features], dim=1)}


def window_starts(total, window):
    """Starts of windows that tile 0..total edge to edge (the last one ends at `total`, overlapping its
    neighbour). Half-overlapping windows, twice the BERT calls, separated no better on validation
    (docs/experiments/window-overlap.md)."""
    if total <= window:
        return [0]
    return list(range(0, total - window, window)) + [total - window]


def window_owners(total, window):
    """`window_starts` and, for each of the `total` frames, the window it is taken from: of the windows
    that hold it, the one whose centre is nearest. Returns (starts (W,), owner (total,))."""
    starts = np.array(window_starts(total, window))
    frame = np.arange(total)[:, None]
    inside = (frame >= starts[None, :]) & (frame < starts[None, :] + window)  # (total, W)
    return starts, np.where(inside, np.abs(frame - (starts[None, :] + window / 2)), np.inf).argmin(axis=1)


@torch.no_grad()
def separate_all(bert, vocab, mixture, features, stems, steps=1, batch_size=16, progress=None, tokens=True):
    """(S,) mixture tokens and (S, D) latents -> {"tokens": (J, S) predicted tokens of each of the J
    `stems` (`maskgit_fill`), "latent": (J, S, D) their predicted latents (Eq. 11)}.

    With `tokens=False` only "latent" is computed: the latent head's output, without the logits
    and the choice of codes that decoding the latent does not use.

    The Eq. 8 sequences of every window and every stem are stacked into batches of `batch_size`
    sequences, window by window (all stems of a window in the same batch). `progress(done, total)`
    is called with windows done.
    """
    device = bert.codebook.device
    S, J = mixture.shape[0], len(stems)
    M = min((bert.config.max_positions - 1) // 2, S)
    starts, owner = window_owners(S, M)
    separators = torch.tensor([vocab.stem_separator(stem) for stem in stems])  # (J,)
    items = [(w, j) for w in range(len(starts)) for j in range(J)]  # (window, stem) pairs
    D = features.shape[-1]
    result = {"latent": torch.empty(J, S, D)}
    if tokens:
        result["tokens"] = torch.empty(J, S, dtype=torch.long)
    for first in range(0, len(items), batch_size):
        batch = items[first:first + batch_size]
        mix = torch.stack([mixture[starts[w]:starts[w] + M] for w, _ in batch]).to(device)  # (B, M)
        feats = torch.stack([features[starts[w]:starts[w] + M] for w, _ in batch]).to(device).float()  # (B, M, D)
        inputs = separation_inputs(mix, feats, separators[[j for _, j in batch]], vocab)
        if not tokens:  # the latent head needs no decoding: one pass
            found = {"latent": bert.latent(bert.hidden_states(**inputs, keep=slice(M + 1, None)))}  # (B, M, D) the stem half
        else:
            filled, latents = maskgit_fill(bert, inputs, vocab.mask, steps, record=True)  # argmax
            found = {"tokens": filled[:, M + 1:], "latent": latents[:, M + 1:]}  # the stem half
        for i, (w, j) in enumerate(batch):
            frames = np.nonzero(owner[starts[w]:starts[w] + M] == w)[0]
            for name, values in found.items():
                result[name][j, starts[w] + frames] = values[i, frames].cpu().to(result[name].dtype)
        if progress:
            progress(-(-(first + len(batch)) // J), len(starts))
    return result


def single_source_inputs(tokens, features=None, hidden=None):
    """(B, L) tokens of one source, the mixture or a stem (MASKs included) -> model inputs with
    positions 0..L-1, every position in segment TARGET.

    features (B, L, D): the source's own latents, zeroed where `hidden` (B, L) is True (the
    positions to predict): what is known of the audio around a gap is given, the gap is not.
    """
    B, L = tokens.shape
    inputs = {"tokens": tokens, "segments": torch.full((B, L), TARGET, dtype=tokens.dtype, device=tokens.device),
              "positions": torch.arange(L, device=tokens.device).expand(B, L)}
    if features is not None:
        inputs["features"] = features if hidden is None else features.masked_fill(hidden[..., None], 0.0)  # (B, L, D)
    return inputs


@torch.no_grad()
def inpaint_tokens(bert, vocab, tokens, features, gap_start, gap_length, steps=1, temperature=0.0, generator=None):
    """(S,) tokens and (S, D) latents with tokens[gap_start : gap_start + gap_length] unknown ->
    (S,) filled tokens. BERT sees a window of its context centred on the gap (clipped to the
    file), with the latents of the audio around the gap; only the gap changes.
    """
    S, L = tokens.shape[0], min(bert.config.max_positions, tokens.shape[0])
    start = int(np.clip(gap_start + gap_length // 2 - L // 2, 0, S - L))
    window = tokens[start:start + L].clone()
    window[gap_start - start:gap_start - start + gap_length] = vocab.mask
    device = bert.codebook.device
    hidden = (window == vocab.mask)[None]  # (1, L) the gap's latents are not given
    inputs = single_source_inputs(window[None], features[None, start:start + L].float(), hidden)
    filled = maskgit_fill(bert, {key: value.to(device) for key, value in inputs.items()}, vocab.mask, steps, temperature,
                          generator)
    out = tokens.clone()
    out[start:start + L] = filled[0].cpu()
    return out
