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

Frames of Q codes (residual quantization, Eq. 9): with Q > 1 token tensors carry a last axis of
Q levels, (B, L, Q); PAD, SEP and the stem separators fill every level of their frame, MASK may
stand at any level. BERT's masking then picks frames (all levels of a chosen frame together), and
`level_mask` is the masking of SoundStorm (Borsos et al., 2023, arXiv:2305.09636) and VampNet:
pick a level, mask a cosine share of its frames and every frame of the finer levels. With Q = 1
tensors are (B, L) and every function is what it was before levels existed.

Shapes: B batch, L sequence length, M frames (tokens) per segment, K codebook size, Q levels.
"""
import math
from dataclasses import dataclass

import torch

IGNORE = -100  # label of a position that is not predicted
MASK_FRACTION = 0.15  # BERT: share of the maskable positions chosen for prediction
SPLIT = (0.8, 0.1, 0.1)  # BERT: of those, MASK / random code / unchanged

# segment ids of the Eq. 8 layout (and of single-source sequences, which are all TARGET)
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


def bert_mask(tokens, vocab, generator, maskable=None):
    """BERT masking (Devlin 2019): (inputs, labels), both (B, L), or (B, L, Q) for frames of Q codes.

    In each row, exactly round(15% of the maskable positions) are chosen (at least one); of
    those, round(80%) become MASK, round(10%) a random *codebook* index (never a special token),
    and the rest stay unchanged. Labels hold the original token at chosen positions, -100
    elsewhere. `maskable` (B, L) bool defaults to every codebook token (PAD, SEP and the stem
    separators are never chosen). With Q levels a position is a frame: all its levels are
    chosen, masked, replaced (each by its own random code) or kept together.
    """
    frames = tokens if tokens.dim() == 2 else tokens[..., 0]  # (B, L) level 1 says what a frame is
    if maskable is None:
        maskable = frames < vocab.num_codes
    rank = rank_positions(maskable, generator)  # (B, L)
    available = maskable.sum(dim=1, keepdim=True).double()  # (B, 1); float64 rounds as Python does (190 x 15% -> 28)
    chosen_count = (available * MASK_FRACTION).round().clamp(min=1).minimum(available)
    masked_count = (chosen_count * SPLIT[0]).round()
    random_count = (chosen_count * SPLIT[1]).round()
    chosen = rank < chosen_count
    to_mask = rank < masked_count
    to_random = (rank >= masked_count) & (rank < masked_count + random_count)
    if tokens.dim() == 3:  # a frame's Q levels go together
        chosen, to_mask, to_random = chosen[..., None], to_mask[..., None], to_random[..., None]
    random_codes = torch.randint(0, vocab.num_codes, tokens.shape, generator=generator, device=tokens.device)
    inputs = torch.where(to_mask, torch.full_like(tokens, vocab.mask), tokens)
    inputs = torch.where(to_random, random_codes, inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def middle_mask(tokens, gap, vocab):
    """Eq. 7: exactly the `gap` central tokens of each row replaced by MASK: (inputs, labels).

    The gap is tokens[start : start + gap] with start = (L - gap) // 2 (not one token longer,
    a pitfall of the code this project descends from).
    """
    B, L = tokens.shape[:2]
    if not 0 < gap <= L:
        raise ValueError(f"gap must be in 1..{L}, got {gap}")
    start = (L - gap) // 2
    in_gap = torch.zeros(L, dtype=torch.bool, device=tokens.device)
    in_gap[start:start + gap] = True
    in_gap = in_gap.expand(B, L) if tokens.dim() == 2 else in_gap[:, None].expand(tokens.shape)  # every level of a gap frame
    inputs = tokens.masked_fill(in_gap, vocab.mask)
    labels = torch.where(in_gap, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def separation_layout(mixture, stem, separator):
    """Eq. 8: i^mix_1..i^mix_M, SEP_stem, i^stem_1..i^stem_M -> (tokens, segments, positions).

    mixture, stem: (B, M) token ids, or (B, M, Q) (the stem part may already hold MASKs). Mixture
    frame s and stem frame s share position s, so attention can align them; the separator sits at
    position 0 in its own segment, on every level. Returns tokens (B, 2M + 1) or (B, 2M + 1, Q),
    segments and positions (B, 2M + 1).
    """
    B, M = mixture.shape[:2]
    device = mixture.device
    separators = torch.full((B, 1, *mixture.shape[2:]), separator, dtype=mixture.dtype, device=device)
    tokens = torch.cat([mixture, separators, stem], dim=1)  # (B, 2M + 1)
    segments = torch.cat([torch.full((M,), CONTEXT), torch.tensor([SEPARATOR]), torch.full((M,), TARGET)])
    frames = torch.arange(M)
    positions = torch.cat([frames, torch.tensor([0]), frames])
    return tokens, segments.to(device).expand(B, -1), positions.to(device).expand(B, -1)


def cosine_mask(tokens, vocab, generator, maskable=None, first_level_share=None, context_known=False):
    """MaskGIT training mask: (inputs, labels) with a random share of the maskable tokens masked.

    Per row, u ~ U(0, 1) and ceil(cos(pi/2 * u) * n) of its n maskable positions become MASK
    (at least one). The cosine makes high ratios likely, up to 100%: the state every stem token
    starts in at inference. Labels hold the original token at masked positions, -100 elsewhere.
    Frames of Q > 1 codes are masked level by level instead: `level_mask` (`context_known` is its).
    """
    if tokens.dim() == 3:
        return level_mask(tokens, vocab, generator, maskable, first_level_share, context_known)
    if maskable is None:
        maskable = tokens < vocab.num_codes
    B = tokens.shape[0]
    u = torch.rand(B, 1, generator=generator, device=tokens.device)
    available = maskable.sum(dim=1, keepdim=True)  # (B, 1)
    count = torch.ceil(torch.cos(math.pi / 2 * u) * available).clamp(min=1).minimum(available)
    chosen = rank_positions(maskable, generator) < count  # (B, L)
    inputs = tokens.masked_fill(chosen, vocab.mask)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def level_mask(tokens, vocab, generator, maskable=None, first_level_share=None, context_known=False):
    """Level masking of frames of Q codes (SoundStorm, VampNet): (inputs, labels), both (B, L, Q).

    Per row: a level q ~ U{1..Q} (or, with `first_level_share` p, level 1 with probability p and
    the others uniformly: the coarse level, which inference decodes from nothing, trained more
    often than 1/Q of the time), u ~ U(0, 1); ceil(cos(pi/2 * u) * n) of its n maskable frames
    (at least one) become MASK at level q, and *every* maskable frame becomes MASK at the finer
    levels q+1..Q; the coarser levels stay. Labels: the level-q codes of the masked frames only.
    This is what coarse-to-fine decoding meets: while level q is decoded the levels above it are
    known and those below it are still masked. `maskable` (B, L) bool: frames, default every code.

    `context_known`: only the chosen frames are masked at the finer levels, the others stay whole.
    That is what decoding a gap meets (inpainting: the frames around it are known at every level),
    where separation meets the default (no frame of the stem is known).
    """
    B, L, Q = tokens.shape
    if maskable is None:
        maskable = tokens[..., 0] < vocab.num_codes  # (B, L)
    if first_level_share is None or Q == 1:
        level = torch.randint(0, Q, (B, 1, 1), generator=generator, device=tokens.device)  # the level predicted
    else:
        first = torch.rand(B, 1, 1, generator=generator, device=tokens.device) < first_level_share
        finer = torch.randint(1, Q, (B, 1, 1), generator=generator, device=tokens.device)
        level = torch.where(first, 0, finer)  # level 1 with probability p, else one of 2..Q alike
    u = torch.rand(B, 1, generator=generator, device=tokens.device)
    available = maskable.sum(dim=1, keepdim=True)  # (B, 1)
    count = torch.ceil(torch.cos(math.pi / 2 * u) * available).clamp(min=1).minimum(available)
    chosen = rank_positions(maskable, generator) < count  # (B, L) frames masked at that level
    levels = torch.arange(Q, device=tokens.device)  # (Q,)
    at_level = chosen[..., None] & (levels == level)  # (B, L, Q)
    finer = (chosen if context_known else maskable)[..., None] & (levels > level)  # (B, L, Q)
    masked = at_level | finer  # and the finer levels: of every frame, or of the chosen ones
    inputs = tokens.masked_fill(masked, vocab.mask)
    labels = torch.where(at_level, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def gap_mask(tokens, vocab, generator, first_level_share=None):
    """Inpainting's training mask: (inputs, labels, gap), one gap per row at a random place.

    Per row, a gap of n ~ U{1..L/2} frames (inference fills at most half the context) starts
    uniformly where it fits; inside it the cosine mask (`cosine_mask`, restricted to the gap's
    codes), the frames outside it untouched. Scattered masks alone never show BERT what a long
    gap is: each masked frame has known neighbours whose latents give it away. With frames of
    Q > 1 codes this is what coarse-to-fine decoding of a gap meets: at level q a cosine share of
    the gap's frames masked and every gap frame masked at the finer levels, the rest whole.
    gap: (B, L) bool, the frames whose latents an item must hide (all of them, as at inference).
    """
    B, L = tokens.shape[:2]
    device = tokens.device
    length = torch.randint(1, max(1, L // 2) + 1, (B, 1), generator=generator, device=device)
    start = (torch.rand(B, 1, generator=generator, device=device) * (L - length + 1)).long()  # (B, 1)
    frames = torch.arange(L, device=device)
    gap = (frames >= start) & (frames < start + length)  # (B, L)
    codes = (tokens if tokens.dim() == 2 else tokens[..., 0]) < vocab.num_codes
    inputs, labels = cosine_mask(tokens, vocab, generator, maskable=gap & codes, first_level_share=first_level_share)
    return inputs, labels, gap


def hidden_frames(inputs, labels, vocab):
    """(B, L) bool: the frames whose own latents a single-source item must not show, the ones
    where something is predicted or masked (a frame's latent would give away every level of it)."""
    hidden = (labels != IGNORE) | (inputs == vocab.mask)
    return hidden if hidden.dim() == 2 else hidden.any(dim=-1)
