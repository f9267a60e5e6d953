"""Tests for vqvae.py: any length and any k, gradients to the encoder, checkpoint round trip,
an overfit-one-batch check that the whole tokenizer can learn; the numbers of the single-codebook
model as it was before residual quantization came and went."""
import math

import torch
from hypothesis import given, settings, strategies as st

from checkpoint import save_checkpoint
from checkpoint import load_vqvae
from inputs import decode_in_pieces, encode_in_pieces
from losses import total_loss
from metrics import si_sdr
from vqvae import VQVAE, ResidualBlock, VQVAEConfig
from dataclasses import asdict

TINY = dict(num_codes=16, code_dim=4, base_channels=2, max_channels=8, bottleneck_blocks=1)


def tiny_model(k, **overrides):
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(num_downsamples=k, **{**TINY, **overrides})).eval()


MODELS = {k: tiny_model(k) for k in range(1, 9)}


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 8), length=st.integers(1, 700))
def test_encode_decode_lengths_for_every_k(k, length):
    model = MODELS[k]
    x = torch.randn(2, 1, length) * 0.3
    indices = model.encode(x)
    assert indices.shape == (2, math.ceil(length / 2 ** k))
    assert indices.min() >= 0 and indices.max() < model.config.num_codes
    assert model.decode(indices, length).shape == (2, 1, length)
    x_hat, _, forward_indices, _ = model(x)
    assert x_hat.shape == x.shape
    assert torch.equal(forward_indices, indices)


def test_decoder_gradient_reaches_every_encoder_weight():
    model = tiny_model(3).train()
    x = torch.randn(2, 1, 256)
    x_hat, vq_loss, _, _ = model(x)
    loss, _ = total_loss(x, x_hat, vq_loss)
    loss.backward()
    for name, parameter in model.encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model(4)
    model.train()(torch.randn(2, 1, 512))  # data init changes the codebook buffers too
    model.eval()
    path = tmp_path / "vqvae.pt"
    save_checkpoint(path, {"kind": "vqvae", "config": asdict(model.config), "model": model.state_dict()})
    loaded = load_vqvae(path)
    x = torch.randn(1, 1, 1000)
    assert torch.equal(model.encode(x), loaded.encode(x))
    assert torch.equal(model.decode(model.encode(x)), loaded.decode(loaded.encode(x)))


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(num_downsamples=2, num_codes=32, code_dim=8, base_channels=8,
                              max_channels=32, bottleneck_blocks=1)).train()
    t = torch.arange(1024) / 8000
    x = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0)]).unsqueeze(1)  # (2, 1, T)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        x_hat, vq_loss, _, _ = model(x)
        loss, parts = total_loss(x, x_hat, vq_loss)
        if step == 0:
            first = parts["recon"].item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x_hat = model.decode(model.encode(x), 1024)
    assert parts["recon"].item() < 0.05 * first
    assert si_sdr(x[0, 0], x_hat[0, 0]) > 10.0


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 6), length=st.integers(1, 3000))
def test_pieces_match_a_single_pass_away_from_the_file_edges(k, length):
    """encode_in_pieces / decode_in_pieces (batched, overlapping) give the single-pass result
    everywhere but at the file's first and last frames, where zero margins stand in for padding."""
    model = MODELS[k]
    x = torch.randn(length, generator=torch.Generator().manual_seed(length)) * 0.3
    S = math.ceil(length / 2 ** k)
    whole = model.encode_latents(x.view(1, 1, -1))[0]  # (S, D)
    pieces = encode_in_pieces(model, x, piece=7, margin=12, batch_size=3)
    assert pieces.shape == whole.shape == (S, 4)
    inner = slice(12, max(12, S - 12))
    assert torch.allclose(pieces[inner], whole[inner], atol=1e-5)
    indices = torch.randint(0, 16, (S,))
    wave = decode_in_pieces(model, indices, piece=7, margin=12, batch_size=3)
    single = model.decode(indices[None])[0, 0]
    assert wave.shape == single.shape == (S * 2 ** k,)
    assert torch.allclose(wave[12 * 2 ** k:(S - 12) * 2 ** k], single[12 * 2 ** k:(S - 12) * 2 ** k], atol=1e-5)


def test_the_tokenizer_gives_the_numbers_of_the_single_codebook_model():
    """Numbers of the single-codebook code before residual quantization existed (commit 36e19e1),
    same seed: training loss, tokens and decoded audio (commits 5496f98 to fe96be8 kept its weights
    at level 1 of a residual quantizer)."""
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(num_downsamples=3, **TINY))
    keys = model.state_dict().keys()
    assert len(keys) == 55 and {"quantizer.codebook", "quantizer.steps_unused"} <= set(keys)
    x = torch.randn(2, 1, 400, generator=torch.Generator().manual_seed(1)) * 0.3
    _, loss, indices, _ = model.train()(x)
    assert abs(loss.item() - 0.4414820969104767) < 1e-5
    assert indices[0, :10].tolist() == [12, 4, 1, 3, 6, 5, 3, 3, 8, 6]
    model.eval()
    indices = model.encode(x)
    assert indices.shape == (2, 50)
    assert indices[0].tolist() == [12, 4, 1, 3, 6, 5, 3, 3, 8, 6, 7, 1, 0, 1, 1, 10, 9, 7, 3, 1, 0, 5, 14, 14, 10, 10,
                                   14, 2, 7, 12, 7, 9, 10, 8, 3, 1, 3, 1, 9, 2, 3, 9, 9, 8, 3, 0, 2, 6, 12, 0]
    assert abs(model.decode(indices, 400).abs().sum().item() - 318.6041564941406) < 1e-3


def test_tokens_round_trip_through_a_checkpoint(tmp_path):
    model = tiny_model(4, bottleneck_blocks=5)
    bottleneck = [m.conv.dilation[0] for m in model.encoder.layers if isinstance(m, ResidualBlock)][-5:]
    assert bottleneck == [1, 3, 9, 27, 1]  # the token-rate blocks' dilations cycle
    model.train()(torch.randn(2, 1, 512))  # data init of the codebook
    model.eval()
    x = torch.randn(1, 1, 1000) * 0.3
    indices = model.encode(x)
    assert indices.shape == (1, 63) and indices.max() < 16
    x_hat, _, forward_indices, _ = model(x)
    assert torch.equal(forward_indices, indices) and torch.allclose(x_hat, model.decode(indices, 1000), atol=1e-5)
    assert decode_in_pieces(model, indices[0], piece=7, margin=12).shape == (63 * 16,)
    path = tmp_path / "vqvae.pt"
    save_checkpoint(path, {"kind": "vqvae", "config": asdict(model.config), "model": model.state_dict()})
    loaded = load_vqvae(path)
    assert loaded.config == model.config and torch.equal(loaded.encode(x), indices)
