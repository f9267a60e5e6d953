"""Vector quantizer: nearest-code lookup, straight-through gradients, codebook health.

Paper: "Neural Discrete Representation Learning", van den Oord, Vinyals, Kavukcuoglu, 2017
(arXiv:1711.00937). Dead-code restart as in "Jukebox: A Generative Model for Music",
Dhariwal et al., 2020 (arXiv:2005.00341). Cosine (L2-normalised) code lookup as in
"Vector-quantized Image Modeling with Improved VQGAN", Yu et al., 2021 (arXiv:2110.04627).
Reference implementations read: karpathy/deep-vector-quantization, zalandoresearch/pytorch-vq-vae.

Departures from the 2017 paper, each measured to matter on this project's data:
- cosine lookup (on by default): encoder outputs and codes are L2-normalised before Eq. 1,
  so every code lives on the unit sphere and none can drift out of reach of the encoder.
  A plain Euclidean codebook lost 463 of 512 codes by step 200 in our prototype.
- the codebook is initialised from the first training batch's encoder outputs, and codes unused
  for `dead_after` steps are re-seeded from the current batch (dead-code restart).
- optional EMA codebook update (the paper's appendix) instead of the Eq. 4 gradient (`--ema`).

Residual quantization (Eq. 9, frames of Q codes, as in SoundStream) was built, measured and removed:
at equal CPU minutes its longer context separated the pitched stems no better than one codebook
(docs/experiments/long-context-latent.md; `git show fe96be8:quantizer.py` has it).

Shapes: B batch, S tokens, D code dim, K codebook size, N = B * S vectors.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class VectorQuantizer(nn.Module):
    def __init__(self, num_codes, code_dim, beta=0.25, cosine=True, use_ema=False,
                 ema_decay=0.99, dead_after=50):
        super().__init__()
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta  # weight of the commitment loss, Eq. 2
        self.cosine = cosine
        self.use_ema = use_ema
        self.ema_decay = ema_decay
        self.dead_after = dead_after
        codebook = torch.randn(num_codes, code_dim)  # (K, D)
        if use_ema:
            # EMA codebook: buffers updated in place, never re-created as Parameters.
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_cluster_size", torch.ones(num_codes))  # (K,)
            self.register_buffer("ema_code_sum", codebook.clone())  # (K, D)
        else:
            self.codebook = nn.Parameter(codebook)  # learned by the Eq. 4 codebook loss
        # Steps since each code was last chosen; drives the dead-code restart.
        self.register_buffer("steps_unused", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(False))  # set by the first training batch

    def normalized_codebook(self):
        """The codebook as used for lookup: L2-normalised rows when `cosine`, else as stored."""
        return F.normalize(self.codebook, dim=-1) if self.cosine else self.codebook  # (K, D)

    def nearest_codes(self, flat):
        """Eq. 1: j = argmin_i ||h - e_i||^2, computed by expansion (no N x K x D tensor)."""
        codebook = self.normalized_codebook()
        distances = (flat.pow(2).sum(1, keepdim=True)              # (N, 1)  ||h||^2
                     - 2 * flat @ codebook.t()                     # (N, K)  -2 h.e
                     + codebook.pow(2).sum(1)[None, :])            # (1, K)  ||e||^2
        return distances.argmin(dim=1)  # (N,)

    def forward(self, h):
        """h: (B, S, D) encoder outputs. Returns (quantized, loss, indices, stats).

        quantized (B, S, D) carries the straight-through gradient to h; loss is
        L_codebook + beta * L_commit (Eq. 4 and 5); indices (B, S) are the tokens.
        """
        B, S, D = h.shape
        # Distances and losses in fp32 even under autocast: argmin over 512 codes in bf16
        # would pick ties and wrong neighbours.
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.float()
            if self.cosine:
                h = F.normalize(h, dim=-1)
            flat = h.reshape(B * S, D)  # (N, D)
            if self.training and not bool(self.initialized):
                self.initialize_from(flat)
            indices = self.nearest_codes(flat)  # (N,)
            codes = self.normalized_codebook()[indices].view(B, S, D)  # (B, S, D)  Q(h)

            if self.use_ema:
                codebook_loss = torch.zeros((), device=h.device)  # the EMA update replaces Eq. 4
            else:
                codebook_loss = (h.detach() - codes).pow(2).sum(-1).mean()  # Eq. 4, sg on h
            commitment_loss = (h - codes.detach()).pow(2).sum(-1).mean()  # Eq. 5, sg on Q(h)
            loss = codebook_loss + self.beta * commitment_loss

            # Straight-through estimator: the forward pass sees Q(h), the backward pass copies
            # the decoder's gradient onto h unchanged (d quantized / d h = identity).
            quantized = h + (codes - h).detach()  # (B, S, D)

            counts = torch.bincount(indices, minlength=self.num_codes).float()  # (K,)
            if self.training:
                if self.use_ema:
                    self.ema_update(flat, indices, counts)
                self.restart_dead_codes(flat, counts)
        probs = counts / counts.sum()
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        stats = {"perplexity": perplexity.detach(),
                 "codes_used": (counts > 0).float().mean().detach(),
                 "codebook_loss": codebook_loss.detach(),
                 "commitment_loss": commitment_loss.detach()}
        return quantized, loss, indices.view(B, S), stats

    # ---- codebook maintenance (training only, no gradients) ----

    @torch.no_grad()
    def initialize_from(self, flat):
        """Data initialisation: the codebook starts as K encoder outputs of the first batch."""
        picks = torch.randint(0, flat.shape[0], (self.num_codes,), device=flat.device)
        self.codebook.data.copy_(flat[picks])
        if self.use_ema:
            self.ema_code_sum.copy_(flat[picks])
            self.ema_cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def ema_update(self, flat, indices, counts):
        """EMA codebook (van den Oord 2017, appendix A.1), with Laplace smoothing of the sizes.

        N_i <- decay N_i + (1 - decay) n_i;  m_i <- decay m_i + (1 - decay) sum_{j(h)=i} h;
        e_i = m_i / N_i.  Sums by index_add_, not by a dense N x K one-hot.
        """
        decay = self.ema_decay
        code_sum = torch.zeros_like(self.ema_code_sum).index_add_(0, indices, flat)  # (K, D)
        self.ema_cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_code_sum.mul_(decay).add_(code_sum, alpha=1 - decay)
        n = self.ema_cluster_size.sum()
        eps = 1e-5
        smoothed = (self.ema_cluster_size + eps) / (n + self.num_codes * eps) * n  # (K,)
        self.codebook.copy_(self.ema_code_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, flat, counts):
        """Dead-code restart (Jukebox): a code unused for `dead_after` steps is re-seeded
        from a random encoder output of the current batch, so no part of the codebook is wasted."""
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        dead = (self.steps_unused >= self.dead_after).nonzero().squeeze(1)  # (n_dead,)
        if dead.numel() == 0:
            return
        picks = torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)
        self.codebook.data[dead] = flat[picks]
        if self.use_ema:
            self.ema_code_sum[dead] = flat[picks]
            self.ema_cluster_size[dead] = 1.0
        self.steps_unused[dead] = 0

    def lookup(self, indices):
        """Code vectors for token indices: (...,) -> (..., D). The decoder's input."""
        return self.normalized_codebook()[indices]
