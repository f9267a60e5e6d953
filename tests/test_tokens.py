"""tokens.py: the token cache (codes and latents of every source) and the training batches drawn
from it, with tiny untrained tokenizers."""
import numpy as np
import pytest
import torch

from data import find_tracks, read_source
from masking import IGNORE, Vocabulary
from test_data import RATE, sine, slakh_track
from tokens import BatchMaker, TokenCache, build_token_cache, encode_waveform
from vqvae import VQVAE, VQVAEConfig

STEMS = ("bass", "drums", "guitar", "piano")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Slakh-layout tracks of 1 s at 8 kHz with the four stems: 2 train, 1 validation."""
    root = tmp_path_factory.mktemp("tokens") / "slakh"
    for split, name, pitch in (("train", "Track00001", 1.0), ("train", "Track00002", 1.5), ("validation", "Track00003", 2.0)):
        slakh_track(root / split / name, {
            "S00": ("Bass", False, True, sine(55 * pitch, 1.0, amplitude=0.2)),
            "S01": ("Drums", True, True, sine(100 * pitch, 1.0, amplitude=0.1)),
            "S02": ("Guitar", False, True, sine(220 * pitch, 1.0, amplitude=0.2)),
            "S03": ("Piano", False, True, sine(440 * pitch, 1.0, amplitude=0.2)),
        })
    return root


def tokenizer():
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(num_downsamples=3, num_codes=16, code_dim=4, sample_rate=RATE, base_channels=2,
                             max_channels=8, bottleneck_blocks=1)).eval()


def test_cache_holds_codes_and_latents_of_every_source(dataset, tmp_path):
    model = tokenizer()
    folder = build_token_cache(model, dataset, "train", tmp_path / "cache", STEMS, "cpu")
    cache = TokenCache(folder, "train")
    N = 2 * RATE // 8  # two tracks of 1 s, 8 samples per frame
    assert cache.tokens.shape == (5, N) and cache.features.shape == (5, N, 4)
    assert cache.sources == ["mix", *STEMS]
    bass = read_source(find_tracks(dataset, "train")[0], "bass", RATE, 0.0, 1.0)
    tokens, latents, _ = encode_waveform(model, bass, "cpu")
    assert tokens.shape == (N // 2,)
    assert np.array_equal(cache.tokens[1, :N // 2], tokens.numpy())  # the first track's bass
    assert torch.equal(cache.latents(1, 0, N // 2), latents.half().float())
    assert cache.latents(0, 0, N // 2).abs().sum() > 0, "the mixture's latents are kept too"
    counts = cache.code_counts(16)
    assert counts.shape == (16,) and counts.sum() == 5 * N
    bass_counts = cache.code_counts(16, source="bass")
    assert np.array_equal(bass_counts, np.bincount(cache.tokens[1], minlength=16)) and bass_counts.sum() == N


def test_batches_mask_as_inference_meets_them_and_hide_latents_of_masked_frames(dataset, tmp_path):
    model = tokenizer()
    folder = build_token_cache(model, dataset, "train", tmp_path / "cache", STEMS, "cpu")
    cache, vocab = TokenCache(folder, "train"), Vocabulary(16, STEMS)
    batch = BatchMaker(cache, vocab, STEMS, context=41, seed=0, mlm_share=0.5).sample(16)
    assert batch["tokens"].shape == batch["targets"].shape == (16, 41)
    assert batch["features"].shape == (16, 41, 4) and batch["padding"].shape == batch["segments"].shape == (16, 41)
    separation, mlm = slice(0, 8), slice(8, 16)
    M = 20
    assert (batch["tokens"][separation, :M] < 16).all(), "the mixture half is never masked"
    assert (batch["targets"][separation, :M + 1] == IGNORE).all()
    chosen = batch["targets"] != IGNORE  # (16, 41)
    for b in range(8, 11):  # a third of the mlm items: BERT's 15% of the frames
        assert chosen[b].sum() == round(0.15 * 41)
    for b in range(11, 14):  # a third: a cosine share of the frames, every one of them MASK
        assert 1 <= chosen[b].sum() <= 41 and torch.equal(batch["tokens"][b] == vocab.mask, chosen[b])
    for b in range(14, 16):  # the last third: a central span of 41 // 16 to 41 // 2 frames
        span = chosen[b].nonzero()[:, 0]
        P = len(span)
        assert 2 <= P <= 20 and torch.equal(span, torch.arange((41 - P) // 2, (41 - P) // 2 + P))
        assert torch.equal(batch["tokens"][b] == vocab.mask, chosen[b])
    masked_frames = (batch["tokens"][mlm] == vocab.mask) | (batch["targets"][mlm] != IGNORE)
    assert (batch["features"][mlm][masked_frames] == 0).all(), "a masked frame's latent would give it away"
    assert (batch["features"][mlm][~masked_frames].abs().sum(-1) > 0).all()


def test_span_lengths_cover_the_gaps_inpainting_is_asked_for(dataset, tmp_path):
    """Span items draw every gap length from context // 16 to context // 2 (the longest BERT fills)."""
    model = tokenizer()
    folder = build_token_cache(model, dataset, "train", tmp_path / "cache", STEMS, "cpu")
    maker = BatchMaker(TokenCache(folder, "train"), Vocabulary(16, STEMS), STEMS, context=41, seed=0, mlm_share=1.0)
    lengths = set()
    for _ in range(150):
        targets = maker.mlm_batch(6)["targets"][4:]  # (2, 41): the span items
        lengths.update((targets != IGNORE).sum(dim=1).tolist())
    assert lengths == set(range(2, 21))


def source_of(cache, features):
    """The rows of the cache with a window whose latents match `features` (L, D) wherever they are shown."""
    L = len(features)
    shown = features.abs().sum(-1) > 0  # (L,) the frames whose latents the item shows
    found = set()
    for row in range(len(cache.sources)):
        latents = cache.latents(row, 0, cache.tokens.shape[1])  # (N, D)
        windows = latents.unfold(0, L, 1).transpose(1, 2)  # (N - L + 1, L, D)
        if (windows[:, shown] == features[shown]).all(dim=-1).all(dim=-1).any():
            found.add(cache.sources[row])
    return found


def test_separation_items_carry_the_named_stems_latents_as_eq11_targets(dataset, tmp_path):
    """`latents` holds, at the stem half of each Eq. 8 item, the latents of the stem its separator
    names (Eq. 11's targets, at the frames the batch's `features` never show); zeros elsewhere."""
    model = tokenizer()
    folder = build_token_cache(model, dataset, "train", tmp_path / "cache", STEMS, "cpu")
    cache, vocab = TokenCache(folder, "train"), Vocabulary(16, STEMS)
    batch = BatchMaker(cache, vocab, STEMS, context=41, seed=3, mlm_share=0.5).sample(16)
    M, latents = 20, batch["latents"]
    assert latents.shape == batch["features"].shape == (16, 41, 4)
    assert (latents[:8, :M + 1] == 0).all(), "the mixture half: none"
    separators = {vocab.stem_separator(stem): stem for stem in STEMS}
    assert (batch["tokens"][:8, M + 1:] == vocab.mask).all(), "every stem frame masked, as separation starts"
    assert (batch["targets"][:8, M + 1:] != IGNORE).all()
    for b in range(8):
        assert (latents[b, M + 1:].abs().sum(-1) > 0).all()
        assert source_of(cache, latents[b, M + 1:]) == {separators[batch["tokens"][b, M].item()]}
        assert source_of(cache, batch["features"][b, M + 1:]) == {"mix"}


def test_masked_modelling_items_predict_the_latents_of_exactly_their_chosen_frames(dataset, tmp_path):
    """Eq. 11 for inpainting: in every single-source item, `latents` holds the source's own latent at
    each frame whose codes are predicted (masked, replaced or kept; spans included) and zero at every
    other frame; the frames it is given at are the ones `features` hides."""
    model = tokenizer()
    folder = build_token_cache(model, dataset, "train", tmp_path / "cache", STEMS, "cpu")
    cache = TokenCache(folder, "train")
    batch = BatchMaker(cache, Vocabulary(16, STEMS), STEMS, context=41, seed=5, mlm_share=1.0).sample(9)
    chosen = batch["targets"] != IGNORE  # (9, 41)
    given = batch["latents"].abs().sum(-1) > 0  # (9, 41)
    assert torch.equal(given, chosen), "a target at every predicted frame and nowhere else"
    assert (batch["features"][given] == 0).all(), "and never shown as an input there"
    checked = 0
    for b in range(9):
        whole = batch["latents"][b] + batch["features"][b]  # the source's latents, shown or predicted
        assert (whole.abs().sum(-1) > 0).all()
        if (batch["features"][b].abs().sum(-1) > 0).any():  # (a cosine share of 100% shows nothing)
            assert source_of(cache, whole) == source_of(cache, batch["features"][b])
            checked += 1
    assert checked >= 6
