"""Token layouts and masks for BERT on audio tokens: pure functions, explicit randomness.

Papers: "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
Devlin et al., 2019 (arXiv:1810.04805) for the 15% / 80-10-10 masking; "MaskGIT: Masked
Generative Image Transformer", Chang et al., 2022 (arXiv:2202.04200) and "VampNet", Garcia et
al., 2023 (arXiv:2307.04686) for masking ratios drawn from a cosine schedule, up to 100%.

Every function returns new tensors and never edits its input (a pitfall of the code this
project descends from); all randomness comes from an explicit `torch.Generator`, so tests can
pin it. Labels follow PyTorch's cross-entropy convention: -100 where there is nothing to predict.

Vocabulary (see `Vocabulary`): ids 0..K-1 are codebook indices, then PAD, MASK, SEP and one
separator per stem ("SEP_bass", ...). The per-stem separator both separates the two halves of
the Eq. 8 layout and says which stem is wanted, so one model serves every stem.

Shapes: B batch, L sequence length, M frames (tokens) per segment, K codebook size.
"""
import math
from dataclasses import dataclass

import torch

IGNORE = -100  # label of a position that is not predicted
MASK_FRACTION = 0.15  # BERT: share of the maskable positions chosen for prediction
SPLIT = (0.8, 0.1, 0.1)  # BERT: of those, MASK / random code / unchanged

# segment ids of the Eq. 8 layout (single-source sequences are all TARGET)
CONTEXT, SEPARATOR, TARGET = 0, 1, 2


@dataclass(frozen=True)
class Vocabulary:
    """Token ids: K codes, then PAD, MASK, SEP, then one separator token per stem."""
    num_codes: int
    stems: tuple = ()

    @property
    def pad(self):
        return self.num_codes

    @property
    def mask(self):
        return self.num_codes + 1

    @property
    def sep(self):
        return self.num_codes + 2

    def stem_separator(self, stem):
        return self.num_codes + 3 + self.stems.index(stem)

    @property
    def size(self):
        return self.num_codes + 3 + len(self.stems)


def rank_positions(allowed, generator):
    """A uniformly random order of the allowed positions of each row: (B, L) bool -> (B, L) long.

    rank[b, l] in 0..n_b-1 for the n_b allowed positions of row b (a random permutation of them),
    and >= n_b for positions that are not allowed. Taking `rank < n` picks exactly n positions,
    which is how every mask below gets exact counts instead of per-position coin flips.
    """
    scores = torch.rand(allowed.shape, generator=generator, device=allowed.device)
    scores = scores.masked_fill(~allowed, 2.0)  # not allowed: sorted after every allowed one
    order = scores.argsort(dim=1)  # (B, L) positions by score
    return order.argsort(dim=1)  # (B, L) the rank of each position


def bert_mask(tokens, vocab, generator):
    """BERT masking (Devlin 2019): (inputs, labels), both (B, L).

    In each row, exactly round(15% of the maskable positions) are chosen (at least one); of those,
    round(80%) become MASK, round(10%) random *codebook* indices (never a special token), and the
    rest stay unchanged. Labels hold the original codes at chosen positions, -100 elsewhere. Only
    codes are maskable (PAD, SEP and the stem separators are never chosen).
    """
    maskable = tokens < vocab.num_codes  # (B, L)
    rank = rank_positions(maskable, generator)  # (B, L)
    available = maskable.sum(dim=1, keepdim=True).double()  # (B, 1); float64 rounds as Python does (190 x 15% -> 28)
    chosen_count = (available * MASK_FRACTION).round().clamp(min=1).minimum(available)
    masked_count = (chosen_count * SPLIT[0]).round()
    random_count = (chosen_count * SPLIT[1]).round()
    chosen = rank < chosen_count  # (B, L)
    to_mask = rank < masked_count
    to_random = (rank >= masked_count) & (rank < masked_count + random_count)
    random_codes = torch.randint(0, vocab.num_codes, tokens.shape, generator=generator, device=tokens.device)
    inputs = torch.where(to_mask, torch.full_like(tokens, vocab.mask), tokens)
    inputs = torch.where(to_random, random_codes, inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def middle_mask(tokens, gap, vocab):
    """Eq. 7: exactly the `gap` central tokens of each row replaced by MASK: (inputs, labels), (B, L) each.

    The gap is tokens[:, start : start + gap] with start = (L - gap) // 2 (not one token longer,
    a pitfall of the code this project descends from). `gap`: one length for every row, or a (B,)
    tensor of one per row (training's span masks: gaps of the lengths inpainting is asked for).
    """
    B, L = tokens.shape
    gap = torch.as_tensor(gap, device=tokens.device).reshape(-1, 1)  # (B or 1, 1)
    if not ((gap > 0) & (gap <= L)).all():
        raise ValueError(f"gap must be in 1..{L}, got {gap.flatten().tolist()}")
    start = (L - gap) // 2
    frames = torch.arange(L, device=tokens.device)  # (L,)
    in_gap = (frames >= start) & (frames < start + gap)  # (B or 1, L)
    inputs = tokens.masked_fill(in_gap, vocab.mask)
    labels = torch.where(in_gap, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def separation_layout(mixture, stem, separator):
    """Eq. 8: i^mix_1..i^mix_M, SEP_stem, i^stem_1..i^stem_M -> (tokens, segments, positions).

    mixture, stem: (B, M) token ids (the stem part may already hold MASKs); separator: one SEP id
    for every row, or a (B,) tensor of one per row. Mixture frame s and stem frame s share position
    s, so attention can align them; the separator sits at position 0 in its own segment. Returns
    tokens, segments and positions, each (B, 2M + 1).
    """
    B, M = mixture.shape
    device = mixture.device
    separators = torch.as_tensor(separator, dtype=mixture.dtype, device=device).reshape(-1, 1).expand(B, 1)  # (B, 1)
    tokens = torch.cat([mixture, separators, stem], dim=1)  # (B, 2M + 1)
    segments = torch.cat([torch.full((M,), CONTEXT), torch.tensor([SEPARATOR]), torch.full((M,), TARGET)])
    frames = torch.arange(M)
    positions = torch.cat([frames, torch.tensor([0]), frames])
    return tokens, segments.to(device).expand(B, -1), positions.to(device).expand(B, -1)


def cosine_mask(tokens, vocab, generator):
    """MaskGIT's training mask: (inputs, labels), both (B, L).

    Per row, u ~ U(0, 1) and ceil(cos(pi/2 * u) * n) of the row's n maskable positions (at least one)
    become MASK; labels hold their codes. The cosine makes high ratios likely, up to 100%: the state
    multi-step decoding starts from (`decoding.maskgit_fill`), and the middle of it.
    """
    B = tokens.shape[0]
    maskable = tokens < vocab.num_codes  # (B, L)
    u = torch.rand(B, 1, generator=generator, device=tokens.device)
    available = maskable.sum(dim=1, keepdim=True)  # (B, 1)
    count = torch.ceil(torch.cos(math.pi / 2 * u) * available).clamp(min=1).minimum(available)
    chosen = rank_positions(maskable, generator) < count  # (B, L)
    inputs = tokens.masked_fill(chosen, vocab.mask)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def hidden_frames(inputs, labels, vocab):
    """(B, L) bool: the frames whose own latents a single-source item must not show, the ones where
    something is predicted or masked (a frame's latent would give it away)."""
    return (labels != IGNORE) | (inputs == vocab.mask)
