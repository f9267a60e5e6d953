"""Checkpoints: written atomically, checked on load, self-describing.

A checkpoint is a dict {"format": FORMAT, "kind": "vqvae" | "bert", "config": asdict(model config),
"model": state_dict, ...training state}. The config travels with the weights (as in nanoGPT), so
`infer.py` rebuilds a model from the file alone; `kind` refuses a BERT passed as a VQ-VAE in one
line. A checkpoint of another `format` is refused with one line naming the format it needs (and the
last commit that reads it): there is no silent conversion. Format 3: one code per frame, tokens (S,).
"""
from pathlib import Path

import torch

from files import UserError, atomic_write
from vqvae import VQVAE, VQVAEConfig

FORMAT = 3  # the checkpoint layout this code reads and writes
READERS = {1: "9f53cb0", 2: "fe96be8"}  # the last commit that reads each earlier format


def save_checkpoint(path, checkpoint):
    """torch.save to a temporary file, then rename: a crash never leaves a half checkpoint."""
    with atomic_write(path) as tmp:
        torch.save({"format": FORMAT, **checkpoint}, tmp)


def load_checkpoint(path, kind):
    """Load a checkpoint of the given kind onto the CPU, or raise UserError naming the file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint (train one first, e.g. `python train.py {kind}`)")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a readable checkpoint, truncated or corrupt ({reason})") from None
    if not isinstance(checkpoint, dict) or "kind" not in checkpoint or "model" not in checkpoint:
        raise UserError(f"{path}: not an audio-mlm checkpoint")
    if checkpoint["kind"] != kind:
        raise UserError(f"{path}: is a {checkpoint['kind']} checkpoint, expected a {kind} checkpoint")
    found = checkpoint.get("format", 1)
    if found != FORMAT:
        reader = f" or read it with commit {READERS[found]}" if found in READERS else ""
        raise UserError(f"{path}: checkpoint format {found}, this code needs format {FORMAT}; "
                        f"retrain it (`python train.py {kind}`){reader}")
    return checkpoint


def load_vqvae(path, device="cpu"):
    """Rebuild a VQ-VAE from its checkpoint alone (the config travels with the weights)."""
    checkpoint = load_checkpoint(path, "vqvae")
    try:
        model = VQVAE(VQVAEConfig(**checkpoint["config"]))
        model.load_state_dict(checkpoint["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        reason = str(error).strip().splitlines()[0][:120]
        raise UserError(f"{path}: VQ-VAE checkpoint does not match this code ({reason})") from None
    return model.to(device).eval()


def load_bert(path, vqvae, device="cpu"):
    """Rebuild a BERT from its checkpoint and check that it was trained on this VQ-VAE's tokens.

    Returns (model, vocabulary). The checkpoint records the fingerprint of the VQ-VAE whose tokens
    it learned (`tokens.vqvae_fingerprint`); any other tokenizer's codes would mean nothing to it.
    """
    from bert import AudioBERT, BERTConfig  # here, not at the top: a VQ-VAE user never needs them
    from masking import Vocabulary
    from tokens import vqvae_fingerprint

    checkpoint = load_checkpoint(path, "bert")
    if checkpoint.get("vqvae_fingerprint") != vqvae_fingerprint(vqvae):
        raise UserError(f"{path}: this BERT was trained on the tokens of another VQ-VAE "
                        f"({checkpoint.get('vqvae_path', 'unknown')}); pass that one with --vqvae")
    try:
        config = BERTConfig(**checkpoint["config"])
        model = AudioBERT(config, vqvae.quantizer.normalized_codebook().detach().cpu())
        model.load_state_dict(checkpoint["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        reason = str(error).strip().splitlines()[0][:120]
        raise UserError(f"{path}: BERT checkpoint does not match this code ({reason})") from None
    vocab = Vocabulary(config.num_codes, tuple(checkpoint["stems"]))
    return model.to(device).eval(), vocab
