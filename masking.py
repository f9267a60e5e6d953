"""Token layouts and masks for BERT on audio tokens: pure functions, explicit randomness.

Papers: "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
Devlin et al., 2019 (arXiv:1810.04805) for the 15% / 80-10-10 masking; "MaskGIT: Masked
Generative Image Transformer", Chang et al., 2022 (arXiv:2202.04200) and "VampNet", Garcia et
al., 2023 (arXiv:2307.04686) for masking ratios drawn from a cosine schedule, which matches
training to inference, where *every* stem token starts masked.

Every function returns new tensors and never edits its input (a pitfall of the code this
project descends from); all randomness comes from an explicit `torch.Generator`, so tests can
pin it. Labels follow PyTorch's cross-entropy convention: -100 where there is nothing to predict.

Vocabulary (see `Vocabulary`): ids 0..K-1 are codebook indices, then PAD, MASK, SEP and one
separator per stem ("SEP_bass", ...). The per-stem separator both separates the two halves of
the Eq. 8 layout and says which stem is wanted, so one model serves every stem.

Frames of Q codes (residual quantization, Eq. 9): token tensors always carry a last axis of Q
levels, (B, L, Q), Q = 1 the ordinary case; PAD, SEP and the stem separators fill every level of
their frame, MASK may stand at any level. BERT's masking picks frames (all levels of a chosen frame
together); `cosine_mask` is the level masking of SoundStorm (Borsos et al., 2023, arXiv:2305.09636)
and VampNet: pick a level, mask a cosine share of its frames and the finer levels below them.

Shapes: B batch, L sequence length, M frames (tokens) per segment, K codebook size, Q levels.
"""
import math
from dataclasses import dataclass

import torch

IGNORE = -100  # label of a position that is not predicted
MASK_FRACTION = 0.15  # BERT: share of the maskable positions chosen for prediction
SPLIT = (0.8, 0.1, 0.1)  # BERT: of those, MASK / random code / unchanged

# Level masking trains level 1 in this share of the items (Q > 1), not 1/Q: inference decodes level 1
# from nothing, and it decides most of what a separated stem sounds like (at 1/Q the k = 7, Q = 8 BERT
# learned nothing beyond the unigram guess: docs/experiments/long-context-k7q8.md).
FIRST_LEVEL_SHARE = 0.5

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
    """BERT masking (Devlin 2019) of frames: (inputs, labels), both (B, L, Q).

    In each row, exactly round(15% of the maskable frames) are chosen (at least one); of those,
    round(80%) become MASK, round(10%) random *codebook* indices (never a special token), and the
    rest stay unchanged, all levels of a frame together. Labels hold the original codes at chosen
    frames, -100 elsewhere. Only frames of codes are maskable (PAD, SEP and the stem separators are
    never chosen).
    """
    maskable = tokens[..., 0] < vocab.num_codes  # (B, L) level 1 says what a frame is
    rank = rank_positions(maskable, generator)  # (B, L)
    available = maskable.sum(dim=1, keepdim=True).double()  # (B, 1); float64 rounds as Python does (190 x 15% -> 28)
    chosen_count = (available * MASK_FRACTION).round().clamp(min=1).minimum(available)
    masked_count = (chosen_count * SPLIT[0]).round()
    random_count = (chosen_count * SPLIT[1]).round()
    chosen = (rank < chosen_count)[..., None]  # (B, L, 1): a frame's Q levels go together
    to_mask = (rank < masked_count)[..., None]
    to_random = ((rank >= masked_count) & (rank < masked_count + random_count))[..., None]
    random_codes = torch.randint(0, vocab.num_codes, tokens.shape, generator=generator, device=tokens.device)
    inputs = torch.where(to_mask, torch.full_like(tokens, vocab.mask), tokens)
    inputs = torch.where(to_random, random_codes, inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def middle_mask(tokens, gap, vocab):
    """Eq. 7: exactly the `gap` central frames of each row replaced by MASK, at every level: (inputs, labels).

    The gap is tokens[:, start : start + gap] with start = (L - gap) // 2 (not one token longer,
    a pitfall of the code this project descends from). `gap`: one length for every row, or a (B,)
    tensor of one per row (training's span masks: gaps of the lengths inpainting is asked for).
    """
    B, L, Q = tokens.shape
    gap = torch.as_tensor(gap, device=tokens.device).reshape(-1, 1)  # (B or 1, 1)
    if not ((gap > 0) & (gap <= L)).all():
        raise ValueError(f"gap must be in 1..{L}, got {gap.flatten().tolist()}")
    start = (L - gap) // 2
    frames = torch.arange(L, device=tokens.device)  # (L,)
    in_gap = ((frames >= start) & (frames < start + gap))[..., None]  # (B or 1, L, 1), broadcast over levels
    inputs = tokens.masked_fill(in_gap, vocab.mask)
    labels = torch.where(in_gap, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def separation_layout(mixture, stem, separator):
    """Eq. 8: i^mix_1..i^mix_M, SEP_stem, i^stem_1..i^stem_M -> (tokens, segments, positions).

    mixture, stem: (B, M, Q) token ids (the stem part may already hold MASKs). Mixture frame s and
    stem frame s share position s, so attention can align them; the separator sits at position 0
    in its own segment, on every level. Returns tokens (B, 2M + 1, Q), segments and positions (B, 2M + 1).
    """
    B, M, Q = mixture.shape
    device = mixture.device
    separators = torch.full((B, 1, Q), separator, dtype=mixture.dtype, device=device)
    tokens = torch.cat([mixture, separators, stem], dim=1)  # (B, 2M + 1, Q)
    segments = torch.cat([torch.full((M,), CONTEXT), torch.tensor([SEPARATOR]), torch.full((M,), TARGET)])
    frames = torch.arange(M)
    positions = torch.cat([frames, torch.tensor([0]), frames])
    return tokens, segments.to(device).expand(B, -1), positions.to(device).expand(B, -1)


def cosine_mask(tokens, vocab, generator, context_known=False, whole_first_level=False):
    """MaskGIT training mask over frames of Q codes, level by level: (inputs, labels), both (B, L, Q).

    Per row: a level q (level 1 with probability FIRST_LEVEL_SHARE when Q > 1, else one of 2..Q
    alike) and u ~ U(0, 1); ceil(cos(pi/2 * u) * n) of the row's n maskable frames (at least one)
    become MASK at level q, and the levels finer than q become MASK at *every* maskable frame; the
    coarser levels stay. Labels: the level-q codes of the masked frames only. The cosine makes high
    ratios likely, up to 100%: the state every stem token starts in at inference; and this is what
    coarse-to-fine decoding meets: while level q is decoded the levels above it are known and those
    below it are still masked. With Q = 1 it is MaskGIT's mask.

    `context_known`: only the chosen frames are masked at the finer levels, the others stay whole:
    what decoding a gap meets (inpainting: the frames around it are known at every level).
    `whole_first_level`: a row that predicts level 1 masks every frame (ratio 100%): the state
    one-shot separation starts from (the stem half of Eq. 8 in training).
    """
    B, L, Q = tokens.shape
    device = tokens.device
    maskable = tokens[..., 0] < vocab.num_codes  # (B, L) frames of codes
    first = torch.rand(B, 1, 1, generator=generator, device=device) < (FIRST_LEVEL_SHARE if Q > 1 else 1.0)
    finer = 1 + (torch.rand(B, 1, 1, generator=generator, device=device) * (Q - 1)).long()  # one of 2..Q alike
    level = torch.where(first, 0, finer)  # (B, 1, 1) the level predicted
    u = torch.rand(B, 1, generator=generator, device=device)
    if whole_first_level:
        u = u.masked_fill(level.view(B, 1) == 0, 0.0)  # cos(0) = 1: all of them
    available = maskable.sum(dim=1, keepdim=True)  # (B, 1)
    count = torch.ceil(torch.cos(math.pi / 2 * u) * available).clamp(min=1).minimum(available)
    chosen = rank_positions(maskable, generator) < count  # (B, L) frames masked at that level
    levels = torch.arange(Q, device=device)  # (Q,)
    at_level = chosen[..., None] & (levels == level)  # (B, L, Q)
    below = (chosen if context_known else maskable)[..., None] & (levels > level)  # (B, L, Q) the finer levels
    inputs = tokens.masked_fill(at_level | below, vocab.mask)
    labels = torch.where(at_level, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def hidden_frames(inputs, labels, vocab):
    """(B, L) bool: the frames whose own latents a single-source item must not show, the ones where
    something is predicted or masked (a frame's latent would give away every level of it)."""
    return ((labels != IGNORE) | (inputs == vocab.mask)).any(dim=-1)
