"""masking.py: exact BERT proportions, codebook-only replacements, specials never chosen, Eq. 7, Eq. 8,
MaskGIT's cosine mask."""
import torch
from hypothesis import example, given, settings, strategies as st

from masking import (CONTEXT, IGNORE, SEPARATOR, TARGET, Vocabulary, bert_mask, cosine_mask, hidden_frames, middle_mask,
                     separation_layout)

VOCAB = Vocabulary(num_codes=32, stems=("bass", "drums"))


def random_tokens(seed, B, L, num_codes=32):
    return torch.randint(0, num_codes, (B, L), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 4), L=st.integers(1, 300))
@example(seed=0, B=1, L=190)  # 15% of 190 is 28.5 in float32 but 28.499... in Python: rounds to 28
def test_bert_mask_counts_are_exact(seed, B, L):
    tokens = random_tokens(seed, B, L)
    before = tokens.clone()
    inputs, labels = bert_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    assert inputs.shape == labels.shape == (B, L)
    assert torch.equal(tokens, before), "masking must not edit its input"
    chosen, masked = labels != IGNORE, inputs == VOCAB.mask  # (B, L)
    n = max(1, round(0.15 * L))
    assert (chosen.sum(dim=1) == n).all() and (masked.sum(dim=1) == round(0.8 * n)).all()
    assert torch.equal(labels[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen]), "positions not chosen stay as they were"
    assert (inputs[~masked] < VOCAB.num_codes).all(), "random codes are codebook ids"
    assert torch.equal(hidden_frames(inputs, labels, VOCAB), chosen)


def test_bert_mask_split_over_many_draws():
    """Over 2000 rows of 400: 15% chosen; of those 80% MASK, ~10% changed to another code, ~10% kept."""
    tokens = random_tokens(0, 2000, 400, num_codes=512)
    vocab = Vocabulary(512)
    inputs, labels = bert_mask(tokens, vocab, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE  # (B, L)
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
    special = tokens >= VOCAB.num_codes
    for fn in (bert_mask, cosine_mask):
        inputs, labels = fn(tokens, VOCAB, torch.Generator().manual_seed(seed))
        assert (labels[special] == IGNORE).all()
        assert torch.equal(inputs[special], tokens[special])
        assert (labels != IGNORE).any(dim=1).all(), "every row predicts something"


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), data=st.data())
def test_middle_mask_masks_exactly_the_central_gap(L, data):
    gap = data.draw(st.integers(1, L))
    tokens = random_tokens(L, 2, L)
    inputs, labels = middle_mask(tokens, gap, VOCAB)
    masked = inputs == VOCAB.mask  # (2, L)
    where = masked[0].nonzero()[:, 0]
    assert len(where) == gap  # exactly P, not P + 1
    start = where[0].item()
    assert torch.equal(where, torch.arange(start, start + gap))
    assert start == (L - gap) // 2  # centred: the tokens left and right of it differ by at most one
    assert torch.equal(masked[1], masked[0])
    assert torch.equal(labels[masked], tokens[masked]) and (labels[~masked] == IGNORE).all()
    assert torch.equal(inputs[~masked], tokens[~masked])


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), data=st.data())
def test_span_masks_hide_exactly_each_rows_requested_central_frames(L, data):
    """Training's span masks: `middle_mask` with one gap length per row hides exactly those frames."""
    gaps = data.draw(st.lists(st.integers(1, L), min_size=1, max_size=4))
    tokens = random_tokens(L, len(gaps), L)
    inputs, labels = middle_mask(tokens, torch.tensor(gaps), VOCAB)
    for b, gap in enumerate(gaps):
        masked = inputs[b] == VOCAB.mask  # (L,)
        start = (L - gap) // 2
        assert torch.equal(masked.nonzero()[:, 0], torch.arange(start, start + gap))
        assert torch.equal(labels[b][masked], tokens[b][masked]) and (labels[b][~masked] == IGNORE).all()
        assert torch.equal(inputs[b][~masked], tokens[b][~masked])


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
    assert torch.equal(positions[0, :M], torch.arange(M)) and positions[0, M] == 0


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


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 6), L=st.integers(2, 80))
def test_cosine_mask_masks_a_cosine_share_of_the_codes_and_predicts_exactly_those(seed, B, L):
    tokens = random_tokens(seed, B, L)
    tokens[:, -1] = VOCAB.pad  # a padded position is never masked
    before = tokens.clone()
    generator = torch.Generator().manual_seed(seed)
    inputs, labels = cosine_mask(tokens, VOCAB, generator)
    assert torch.equal(tokens, before), "masking must not edit its input"
    masked = inputs == VOCAB.mask  # (B, L)
    u = torch.rand(B, 1, generator=torch.Generator().manual_seed(seed))  # the ratio's draw, as cosine_mask makes it
    expected = torch.ceil(torch.cos(torch.pi / 2 * u) * (L - 1)).clamp(min=1)[:, 0]
    assert torch.equal(masked.sum(dim=1), expected.long())
    assert torch.equal(labels != IGNORE, masked) and torch.equal(labels[masked], tokens[masked])
    assert not masked[:, -1].any() and torch.equal(inputs[~masked], tokens[~masked])
    assert torch.equal(hidden_frames(inputs, labels, VOCAB), masked)
