"""masking.py: exact BERT proportions, codebook-only replacements, specials never chosen, Eq. 7, Eq. 8."""
import torch
from hypothesis import given, settings, strategies as st

from masking import (CONTEXT, IGNORE, SEPARATOR, TARGET, Vocabulary, bert_mask, cosine_mask, middle_mask,
                     separation_layout)

VOCAB = Vocabulary(num_codes=32, stems=("bass", "drums"))


def random_tokens(seed, B, L, num_codes=32):
    return torch.randint(0, num_codes, (B, L), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 4), L=st.integers(1, 300))
def test_bert_mask_counts_are_exact(seed, B, L):
    tokens = random_tokens(seed, B, L)
    before = tokens.clone()
    inputs, labels = bert_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    assert torch.equal(tokens, before), "masking must not edit its input"
    chosen = labels != IGNORE
    for b in range(B):
        n = max(1, round(0.15 * L))
        assert chosen[b].sum() == n
        assert (inputs[b] == VOCAB.mask).sum() == round(0.8 * n)
        assert torch.equal(labels[b][chosen[b]], tokens[b][chosen[b]])
    assert torch.equal(inputs[~chosen], tokens[~chosen]), "positions not chosen stay as they were"
    assert (inputs < VOCAB.num_codes).logical_or(inputs == VOCAB.mask).all(), "random codes are codebook ids"


def test_bert_mask_split_over_many_draws():
    """Over 2000 rows of 400: 15% chosen; of those 80% MASK, ~10% changed to another code, ~10% kept."""
    tokens = random_tokens(0, 2000, 400, num_codes=512)
    vocab = Vocabulary(512)
    inputs, labels = bert_mask(tokens, vocab, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE
    assert chosen.sum().item() == 2000 * 60  # 15% of 400 in every row
    per_position = chosen.float().mean(dim=0)  # (L,) no position is favoured
    assert (per_position - 0.15).abs().max() < 5 * (0.15 * 0.85 / 2000) ** 0.5
    masked = (inputs == vocab.mask) & chosen
    changed = chosen & ~masked & (inputs != tokens)
    assert masked.sum().item() == 2000 * 48  # 80% of 60
    # a random code equals the original 1/512 of the time, so "changed" is a little under 10%
    assert abs(changed.sum().item() / chosen.sum().item() - 0.1 * 511 / 512) < 0.003


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), M=st.integers(2, 60))
def test_pad_sep_and_stem_separators_are_never_chosen(seed, M):
    mixture, stem = random_tokens(seed, 3, M), random_tokens(seed + 1, 3, M)
    tokens, _, _ = separation_layout(mixture, stem, VOCAB.stem_separator("drums"))
    tokens = torch.cat([tokens, torch.full((3, 5), VOCAB.pad)], dim=1)  # padded
    for fn in (bert_mask, cosine_mask):
        inputs, labels = fn(tokens, VOCAB, torch.Generator().manual_seed(seed))
        special = tokens >= VOCAB.num_codes
        assert (labels[special] == IGNORE).all()
        assert torch.equal(inputs[special], tokens[special])


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), data=st.data())
def test_middle_mask_masks_exactly_the_central_gap(L, data):
    gap = data.draw(st.integers(1, L))
    tokens = random_tokens(L, 2, L)
    inputs, labels = middle_mask(tokens, gap, VOCAB)
    masked = (inputs == VOCAB.mask).nonzero()[:, 1].view(2, -1)[0]
    assert len(masked) == gap  # exactly P, not P + 1
    start = masked[0].item()
    assert torch.equal(masked, torch.arange(start, start + gap))
    assert start == (L - gap) // 2  # centred: the tokens left and right of it differ by at most one
    assert (labels != IGNORE).sum() == 2 * gap


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), M=st.integers(1, 100))
def test_separation_layout(B, M):
    mixture, stem = random_tokens(0, B, M), random_tokens(1, B, M)
    tokens, segments, positions = separation_layout(mixture, stem, VOCAB.stem_separator("bass"))
    assert tokens.shape == segments.shape == positions.shape == (B, 2 * M + 1)
    assert torch.equal(tokens[:, :M], mixture) and torch.equal(tokens[:, M + 1:], stem)
    assert (tokens[:, M] == VOCAB.stem_separator("bass")).all()
    assert (segments[:, :M] == CONTEXT).all() and (segments[:, M] == SEPARATOR).all() and (segments[:, M + 1:] == TARGET).all()
    assert torch.equal(positions[0, :M], positions[0, M + 1:]), "mixture frame s and stem frame s share a position"


def test_cosine_mask_reaches_every_ratio_up_to_all():
    tokens = random_tokens(0, 4000, 100)
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(0))
    ratio = (inputs == VOCAB.mask).float().mean(dim=1)
    assert ratio.min() <= 0.05 and ratio.max() == 1.0
    assert abs(ratio.mean().item() - 2 / torch.pi) < 0.02  # E[cos(pi u / 2)] = 2 / pi
    assert torch.equal(labels != IGNORE, inputs == VOCAB.mask)


def test_vocabulary_ids_are_distinct():
    ids = [VOCAB.pad, VOCAB.mask, VOCAB.sep] + [VOCAB.stem_separator(s) for s in VOCAB.stems]
    assert len(set(ids)) == len(ids) and min(ids) == VOCAB.num_codes and max(ids) == VOCAB.size - 1
