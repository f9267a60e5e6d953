"""The VQ-VAE tokenizer: waveform -> S = ceil(T / 2^k) code indices -> waveform.

Paper: "Neural Discrete Representation Learning", van den Oord et al., 2017 (arXiv:1711.00937);
the audio encoder/decoder shape follows "Jukebox", Dhariwal et al., 2020 (arXiv:2005.00341):
stride-2 conv blocks with dilated residual blocks, a mirror decoder. One codebook (Eq. 1,
`quantizer.VectorQuantizer`): a frame's token is one code index, token arrays are (B, S).

Design for a CPU: a conv costs channels^2 per time step, so the channel count is kept small
where the signal is long (16 at full rate) and doubled at each halving of the time axis, up
to `max_channels`. Every level then costs about the same, and a deep tokenizer (k = 8) still
has wide layers where its tokens are.

Shapes: B batch, T samples, S tokens, C channels, D code dim.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from quantizer import VectorQuantizer


@dataclass
class VQVAEConfig:
    num_downsamples: int = 4      # k: stride-2 blocks, S = T / 2^k tokens
    num_codes: int = 512          # K: codebook size
    code_dim: int = 64            # D: code vector size
    sample_rate: int = 16000      # the rate the model was trained at
    base_channels: int = 16       # channels at full time resolution
    max_channels: int = 256       # cap on channels as the time axis shrinks
    bottleneck_blocks: int = 2    # residual blocks at the token rate, on each side (dilations 1, 3, 9, 27, 1, ...)
    beta: float = 0.25            # commitment weight, Eq. 2
    cosine: bool = True           # L2-normalised code lookup
    use_ema: bool = False         # EMA codebook update instead of the Eq. 4 gradient
    dead_after: int = 50          # steps unused before a code is re-seeded

    def channels(self, level):
        """Channel count after `level` halvings of the time axis."""
        return min(self.base_channels * 2 ** level, self.max_channels)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(conv3_dilated(act(x)))): widens the receptive field at constant length."""

    def __init__(self, channels, dilation):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.project = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        return x + self.project(F.silu(self.conv(F.silu(x))))


class Encoder(nn.Module):
    """(B, 1, T) waveform -> (B, D, T / 2^k) latents h."""

    def __init__(self, config):
        super().__init__()
        k, c = config.num_downsamples, config.channels
        layers = [nn.Conv1d(1, c(0), 7, padding=3)]
        for level in range(k):
            layers += [ResidualBlock(c(level), dilation=3 ** (level % 3)),
                       nn.SiLU(),
                       nn.Conv1d(c(level), c(level + 1), 4, stride=2, padding=1)]  # T -> T/2
        layers += [ResidualBlock(c(k), dilation=3 ** (i % 4)) for i in range(config.bottleneck_blocks)]
        layers += [nn.SiLU(), nn.Conv1d(c(k), config.code_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class Decoder(nn.Module):
    """(B, D, S) code vectors -> (B, 1, S * 2^k) waveform; the encoder in reverse."""

    def __init__(self, config):
        super().__init__()
        k, c = config.num_downsamples, config.channels
        layers = [nn.Conv1d(config.code_dim, c(k), 3, padding=1)]
        layers += [ResidualBlock(c(k), dilation=3 ** (i % 4)) for i in range(config.bottleneck_blocks)]
        for level in reversed(range(k)):
            layers += [nn.SiLU(),
                       nn.ConvTranspose1d(c(level + 1), c(level), 4, stride=2, padding=1),  # S -> 2S
                       ResidualBlock(c(level), dilation=3 ** (level % 3))]
        layers += [nn.SiLU(), nn.Conv1d(c(0), 1, 7, padding=3)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z):
        return self.layers(z)


class VQVAE(nn.Module):
    def __init__(self, config):
        super().__init__()
        if not 1 <= config.num_downsamples <= 12:
            raise ValueError(f"num_downsamples (k) must be in 1..12, got {config.num_downsamples}")
        self.config = config
        self.hop = 2 ** config.num_downsamples  # samples per token
        self.encoder = Encoder(config)
        self.quantizer = VectorQuantizer(config.num_codes, config.code_dim, beta=config.beta, cosine=config.cosine,
                                         use_ema=config.use_ema, dead_after=config.dead_after)
        self.decoder = Decoder(config)
        self.init_weights()

    def init_weights(self):
        """He (Kaiming) normal weights and zero biases for every conv.

        PyTorch's default init shrinks the signal at each layer, so at the encoder's output the
        biases dominate and all latents point the same way (mean cosine similarity 0.999 on our
        data): the cosine lookup then sends every frame to one code and the codebook collapses
        in 50 steps. With this init the mean cosine similarity is about 0.01.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def pad(self, x):
        """Right-pad (B, 1, T) with zeros to a multiple of 2^k, so any length works."""
        T = x.shape[-1]
        return F.pad(x, (0, (-T) % self.hop))  # (B, 1, S * 2^k)

    def encode_latents(self, x):
        """(B, 1, T) -> continuous pre-quantisation latents h: (B, S, D)."""
        return self.encoder(self.pad(x)).transpose(1, 2)  # (B, S, D)

    def forward(self, x):
        """x: (B, 1, T) -> (reconstruction (B, 1, T), vq_loss, indices (B, S), stats)."""
        B, _, T = x.shape
        h = self.encode_latents(x)  # (B, S, D)
        quantized, vq_loss, indices, stats = self.quantizer(h)  # (B, S, D)
        x_hat = self.decoder(quantized.transpose(1, 2))[..., :T]  # (B, 1, T)
        return x_hat, vq_loss, indices, stats

    def lookup(self, indices):
        """Token indices (..., S) -> the decoder's input vectors (..., S, D)."""
        return self.quantizer.lookup(indices)

    @torch.no_grad()
    def encode(self, x):
        """(B, 1, T) waveform -> (B, S) token indices, S = ceil(T / 2^k) (Eq. 1)."""
        h = self.encode_latents(x)
        _, _, indices, _ = self.quantizer(h)
        return indices

    @torch.no_grad()
    def decode(self, indices, num_samples=None):
        """(B, S) token indices -> (B, 1, num_samples) waveform (default S * 2^k samples)."""
        return self.decode_vectors(self.lookup(indices), num_samples)

    @torch.no_grad()
    def decode_vectors(self, vectors, num_samples=None):
        """(B, S, D) decoder inputs (code vectors, or latents: Eq. 11) -> (B, 1, T)."""
        x_hat = self.decoder(vectors.transpose(1, 2))  # (B, 1, S * 2^k)
        return x_hat if num_samples is None else x_hat[..., :num_samples]
