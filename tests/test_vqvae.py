"""Tests for vqvae.py: any length and any k, gradients to the encoder, checkpoint round trip,
and an overfit-one-batch check that the whole tokenizer can learn."""
import math

import torch
from hypothesis import given, settings, strategies as st

from checkpoint import save_checkpoint
from checkpoint import load_vqvae
from losses import total_loss
from metrics import si_sdr
from vqvae import VQVAE, VQVAEConfig
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
    pieces = model.encode_in_pieces(x, piece=7, margin=12, batch_size=3)
    assert pieces.shape == whole.shape == (S, 4)
    inner = slice(12, max(12, S - 12))
    assert torch.allclose(pieces[inner], whole[inner], atol=1e-5)
    indices = torch.randint(0, 16, (S,))
    wave = model.decode_in_pieces(indices, piece=7, margin=12, batch_size=3)
    single = model.decode(indices[None])[0, 0]
    assert wave.shape == single.shape == (S * 2 ** k,)
    assert torch.allclose(wave[12 * 2 ** k:(S - 12) * 2 ** k], single[12 * 2 ** k:(S - 12) * 2 ** k], atol=1e-5)
