"""Tests for losses.py: Eq. 3 by hand, Eq. 6 zero for equal inputs and growing with the error."""
import torch

from losses import ENERGY_FLOOR, reconstruction_loss, spectral_loss, total_loss


def test_reconstruction_loss_is_energy_normalised_mse():
    x = torch.tensor([[[1.0, -1.0, 0.5, 0.0]]])
    x_hat = torch.tensor([[[0.5, -1.0, 0.5, 1.0]]])
    mse = (0.25 + 0 + 0 + 1.0) / 4
    energy = (1 + 1 + 0.25 + 0) / 4 + ENERGY_FLOOR
    assert torch.isclose(reconstruction_loss(x, x_hat), torch.tensor(mse / energy))


def test_reconstruction_loss_is_scale_invariant_per_chunk():
    torch.manual_seed(0)
    x, noise = torch.randn(1, 1, 4000), torch.randn(1, 1, 4000)
    loud = reconstruction_loss(x, x + 0.1 * noise)
    quiet = reconstruction_loss(0.1 * x, 0.1 * (x + 0.1 * noise))
    assert torch.isclose(loud, quiet, rtol=0.01)


def test_spectral_loss_zero_for_equal_and_grows_with_difference():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8192) * 0.3
    noise = torch.randn_like(x)
    assert spectral_loss(x, x).item() == 0.0
    values = [spectral_loss(x, x + scale * noise).item() for scale in (0.01, 0.03, 0.1, 0.3)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_spectral_loss_sees_what_waveform_mse_misses():
    # A phase-shifted copy has a large waveform error but the same magnitude spectrum.
    t = torch.arange(16384) / 16000
    x = torch.sin(2 * torch.pi * 440 * t).view(1, 1, -1)
    shifted = torch.sin(2 * torch.pi * 440 * t + 1.0).view(1, 1, -1)
    assert reconstruction_loss(x, shifted) > 0.5
    assert spectral_loss(x, shifted) < 0.05 * reconstruction_loss(x, shifted)


def test_total_loss_is_the_sum_of_its_parts():
    torch.manual_seed(0)
    x, x_hat = torch.randn(2, 1, 4096), torch.randn(2, 1, 4096)
    vq = torch.tensor(0.7)
    loss, parts = total_loss(x, x_hat, vq)
    assert torch.isclose(loss, parts["recon"] + parts["spectral"] + vq)
