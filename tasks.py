"""The two tasks on token sequences of any length: separation (Eq. 8) and inpainting (Eq. 7).

Both run BERT over windows of its context and let `decoding.maskgit_fill` fill the MASKs:
- separation: the mixture's S tokens are cut into windows of M = (context - 1) // 2 frames,
  half overlapping; in each, the layout is mixture, SEP_stem, M MASKs (every stem token masked,
  as at training's 100% end) with the mixture latents at both halves; each frame keeps the
  prediction of the window whose centre is nearest, so no window edge is ever used where a
  better-centred window exists. Every stem is separated in the same pass: the sequences of all
  stems of a window sit in the same batch (one BERT call for the stems of a few windows, not one
  per stem; the tokens are those of one stem at a time). The VQ-VAE then decodes each stem
  sequence in overlapping pieces that equal a single pass (`VQVAE.decode_in_pieces`), so there is
  no seam to click, and `refine.py` (Eq. 10) shares the mixture among the decoded stems.
- inpainting: a window of the context centred on the gap, the gap's tokens masked, the latents
  of the audio around it given (the gap's are hidden).

With a residual tokenizer (Eq. 9) tokens are frames of Q codes, (S, Q), and `maskgit_fill`
decodes each window coarse to fine; windows, layouts and features are per frame as with Q = 1.

Soft decoding (`separate_all(..., code_vectors=...)`): besides the tokens, each stem frame's
expected decoder input, sum over levels q and codes k of p(k) * c_qk with p BERT's distribution
at the step that revealed it. Where BERT hesitates between codes, the argmax commits to one of
them; the expectation keeps what they share (README, Results, "Decoding, soft separation ...").

Mixture prior (`separate_all(..., mixture_prior=lam)`): lam is added to the logit of the mixture's
own code at each stem frame (at every level), so a stem frame keeps the mixture's code unless
BERT is sure of another by more than a factor e^lam. Decoding the mixture's tokens as a stem is a
floor that BERT's guesses sometimes fall under (coarse frames, k = 7: README, Results); the prior
moves an unsure BERT towards that floor and leaves a sure one alone. lam = 0 is plain decoding.

Shapes: S tokens of a whole file, M frames per window, D code dim, J stems, B batch, Q levels.
"""
import numpy as np
import torch

from decoding import maskgit_fill
from masking import CONTEXT, TARGET, separation_layout


def separation_inputs(mixture, features, separator, vocab):
    """Inference inputs for (B, M) mixture tokens, or (B, M, Q) frames, and (B, M, D) latents:
    every stem token MASK.

    separator: the SEP_stem id of one stem for every row, or a (B,) tensor of one id per row.
    """
    B, M = mixture.shape[:2]
    stem = torch.full_like(mixture, vocab.mask)
    tokens, segments, positions = separation_layout(mixture, stem, vocab.sep)
    separator = torch.as_tensor(separator, device=tokens.device)
    tokens[:, M] = separator if tokens.dim() == 2 else separator[..., None]  # Eq. 8, SEP_stem per row (every level)
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
def separate_all(bert, vocab, mixture, features, stems, steps=1, temperature=0.0, batch_size=16, progress=None,
                 generator=None, reveal_noise=0.0, code_vectors=None, mixture_prior=0.0):
    """(S,) mixture tokens and (S, D) latents -> (J, S) predicted tokens of each of the J `stems`;
    (S, Q) frames of a residual tokenizer -> (J, S, Q), decoded coarse to fine (`maskgit_fill`).
    With `code_vectors` ((K, D), or (Q, K, D): `quantizer.code_vectors()`) also returns the
    expected decoder inputs (J, S, D) of soft decoding. `mixture_prior`: see the module text.

    The Eq. 8 sequences of every window and every stem are stacked into batches of `batch_size`
    sequences, window by window (all stems of a window in the same batch). `progress(done, total)`
    is called with windows done.
    """
    device = bert.codebook.device
    S, J = mixture.shape[0], len(stems)
    M = min((bert.config.max_positions - 1) // 2, S)
    starts = window_starts(S, M)
    centres = np.array(starts) + M / 2
    owner = np.abs(np.arange(S)[:, None] - centres[None, :]).argmin(axis=1)  # (S,) best window per frame
    separators = torch.tensor([vocab.stem_separator(stem) for stem in stems])  # (J,)
    items = [(w, j) for w in range(len(starts)) for j in range(J)]  # (window, stem) pairs
    result = torch.empty(J, *mixture.shape, dtype=torch.long)  # (J, S) or (J, S, Q)
    soft = None if code_vectors is None else torch.empty(J, S, code_vectors.shape[-1])  # (J, S, D)
    for first in range(0, len(items), batch_size):
        batch = items[first:first + batch_size]
        mix = torch.stack([mixture[starts[w]:starts[w] + M] for w, _ in batch]).to(device)  # (B, M)
        feats = torch.stack([features[starts[w]:starts[w] + M] for w, _ in batch]).to(device).float()  # (B, M, D)
        inputs = separation_inputs(mix, feats, separators[[j for _, j in batch]], vocab)
        filled = maskgit_fill(bert, inputs, vocab.mask, steps, temperature, generator, reveal_noise=reveal_noise,
                              probabilities=soft is not None,
                              logit_bias=mixture_bias(mix, bert.config.num_codes, mixture_prior) if mixture_prior else None)
        if soft is not None:
            filled, probs = filled
            expected = expected_vectors(probs[:, M + 1:], code_vectors.to(probs.device)).float().cpu()  # (B, M, D)
        filled = filled[:, M + 1:].cpu()  # (B, M) stem half
        for i, (w, j) in enumerate(batch):
            frames = np.nonzero(owner[starts[w]:starts[w] + M] == w)[0]
            result[j, starts[w] + frames] = filled[i, frames]
            if soft is not None:
                soft[j, starts[w] + frames] = expected[i, frames]
        if progress:
            progress(-(-(first + len(batch)) // J), len(starts))
    return result if soft is None else (result, soft)


def mixture_bias(mixture, num_codes, weight):
    """(B, M) mixture tokens, or (B, M, Q) frames -> the logit bias (B, 2M + 1, [Q,] K) of an Eq. 8
    sequence: `weight` on the mixture's code at each stem frame, 0 elsewhere."""
    B, M = mixture.shape[:2]
    bias = torch.zeros(B, 2 * M + 1, *mixture.shape[2:], num_codes, device=mixture.device)
    bias[:, M + 1:].scatter_(-1, mixture[..., None], weight)
    return bias


def expected_vectors(probs, code_vectors):
    """(B, M, K) or (B, M, Q, K) distributions, (K, D) or (Q, K, D) code vectors -> (B, M, D):
    the expected decoder input, summed over levels."""
    if probs.dim() == 3:
        return probs @ code_vectors.float()
    return torch.einsum("bmqk,qkd->bmd", probs, code_vectors.float())


def separate_tokens(bert, vocab, mixture, features, stem, **options):
    """(S,) mixture tokens and (S, D) latents -> (S,) predicted tokens of one `stem` (`separate_all`)."""
    return separate_all(bert, vocab, mixture, features, [stem], **options)[0]


def single_source_inputs(tokens, features=None, hidden=None, segment=TARGET):
    """(B, L) tokens of one source, or (B, L, Q) frames (MASKs included) -> model inputs with
    positions 0..L-1.

    segment: the segment id of every position, one for all rows or a (B,) tensor: TARGET, or
    CONTEXT for a mixture where the BERT tells them apart (`source_segment`).

    features (B, L, D): the source's own latents, zeroed where `hidden` (B, L) is True (the
    positions to predict): what is known of the audio around a gap is given, the gap is not.
    With frames, `hidden` may be (B, L, Q): a frame is hidden where any of its levels is.
    """
    B, L = tokens.shape[:2]
    segments = torch.as_tensor(segment, dtype=tokens.dtype, device=tokens.device).reshape(-1, 1).expand(B, L)
    inputs = {"tokens": tokens, "segments": segments,
              "positions": torch.arange(L, device=tokens.device).expand(B, L)}
    if features is not None:
        hidden = hidden if hidden.dim() == 2 else hidden.any(dim=-1)  # (B, L)
        inputs["features"] = features.masked_fill(hidden[..., None], 0.0)  # (B, L, D)
    return inputs


def source_segment(config, source):
    """The segment id of a single-source sequence of `source` ("mix" or a stem's name): CONTEXT,
    the segment of the mixture half of Eq. 8, for a mixture where the BERT was trained to tell
    mixtures from stems (`BERTConfig.mixture_segment`), else TARGET."""
    return CONTEXT if config.mixture_segment and source == "mix" else TARGET


@torch.no_grad()
def inpaint_tokens(bert, vocab, tokens, features, gap_start, gap_length, steps=8, temperature=0.0, generator=None,
                   reveal_noise=0.0):
    """(S,) tokens and (S, D) latents with tokens[gap_start : gap_start + gap_length] unknown ->
    (S,) filled tokens. BERT sees a window of its context centred on the gap (clipped to the
    file), with the latents of the audio around the gap; only the gap changes. The audio is
    taken for a mixture (a piece of music, not one instrument of it: `source_segment`).
    """
    S, L = tokens.shape[0], min(bert.config.max_positions, tokens.shape[0])
    start = int(np.clip(gap_start + gap_length // 2 - L // 2, 0, S - L))
    window = tokens[start:start + L].clone()
    window[gap_start - start:gap_start - start + gap_length] = vocab.mask
    device = bert.codebook.device
    inputs = single_source_inputs(window[None], features[None, start:start + L].float(), window[None] == vocab.mask,
                                  source_segment(bert.config, "mix"))
    filled = maskgit_fill(bert, {key: value.to(device) for key, value in inputs.items()}, vocab.mask, steps, temperature,
                          generator, reveal_noise=reveal_noise)
    out = tokens.clone()
    out[start:start + L] = filled[0].cpu()
    return out
