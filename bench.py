"""Speed benchmark: tokenizer and BERT training throughput, encode/decode and separation speed.

    python bench.py [--vqvae pretrained/vqvae.pt] [--bert pretrained/bert.pt] [--device auto] [--json bench.json]

Without checkpoints it times untrained default models (speed does not depend on the weights). Each
figure is the median of REPEATS runs after a warm-up (separating a 30 s mix: one run after a
warm-up): VQ-VAE training samples/s (16 x 8192), BERT training frames/s (16 x 512), encode and decode
real-time factors, separating every stem of a 30 s mix as `infer.py separate` does, and peak memory
(CUDA: allocator peak; CPU: peak resident size). Speed is measured here, never in the tests.
"""
import json
import resource
import time

import numpy as np
import torch

from bert import AudioBERT, BERTConfig
from checkpoint import load_bert, load_vqvae
from cli import ArgumentParser, add_device_flag, amp_dtype, autocast, pick_device, run_main
from files import atomic_write
from inputs import decode_in_pieces
from losses import total_loss
from masking import Vocabulary
from refine import refine
from tasks import separate_all
from tokens import encode_waveform
from vqvae import VQVAE, VQVAEConfig


REPEATS = 5  # timed runs of each measurement, after one warm-up; the median is reported
SIGNAL_SECONDS = 10.0  # length of the encode/decode test signal


def median_seconds(function, device, repeats=REPEATS):
    def timed():
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start
    timed()  # warm-up: allocations, oneDNN / cuDNN kernel selection
    return sorted(timed() for _ in range(repeats))[repeats // 2]


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def time_separation(bert, vqvae, vocab, mixture, features, audio, device):
    """Seconds to separate every stem of a mix as `infer.py separate` does: one batched BERT pass over
    all stems (their latents, Eq. 11), decoding each stem, then Eq. 10 (refine.py). Returns each part
    and the total."""
    start = time.perf_counter()
    with torch.inference_mode(), autocast(device):
        latents = separate_all(bert, vocab, mixture, features, vocab.stems, tokens=False)["latent"]  # (J, S, D), on the CPU
    separated = time.perf_counter()
    with torch.inference_mode(), autocast(device):
        waves = torch.stack([decode_in_pieces(vqvae, h.to(device)).float().cpu() for h in latents])  # (J, T)
    decoded = time.perf_counter()
    refine(audio, waves)
    end = time.perf_counter()
    return {"bert": separated - start, "decode": decoded - separated, "refine": end - decoded, "total": end - start}


def load_models(args, device):
    if args.vqvae:
        vqvae, source = load_vqvae(args.vqvae, device), args.vqvae
    else:
        vqvae, source = VQVAE(VQVAEConfig()).to(device).eval(), "untrained default VQ-VAE"
    if args.bert:
        bert, vocab = load_bert(args.bert, vqvae, device)
        source += f", {args.bert}"
    else:
        vocab = Vocabulary(vqvae.config.num_codes, ("bass", "drums", "guitar", "piano"))
        config = BERTConfig(num_codes=vqvae.config.num_codes, code_dim=vqvae.config.code_dim,
                            num_special=vocab.size - vocab.num_codes)
        bert = AudioBERT(config, vqvae.quantizer.normalized_codebook().detach()).to(device).eval()
        source += ", untrained default BERT"
    return vqvae, bert, vocab, source


def main():
    parser = ArgumentParser(description="Time training and inference of the tokenizer and BERT.")
    parser.add_argument("--vqvae", default=None, help="VQ-VAE checkpoint to time (default: an untrained default model)")
    parser.add_argument("--bert", default=None, help="BERT checkpoint to time, trained on that VQ-VAE (default: an untrained default model)")
    add_device_flag(parser)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    device = pick_device(args.device)
    vqvae, bert, vocab, source = load_models(args, device)
    rate, hop = vqvae.config.sample_rate, vqvae.hop
    print(f"models: {source}; k = {vqvae.config.num_downsamples}, {rate} Hz; device {device} "
          f"({torch.get_num_threads()} threads), mixed precision {amp_dtype(device) or 'none (fp32)'}")
    results = {"device": str(device), "threads": torch.get_num_threads(), "precision": str(amp_dtype(device))}

    # ---- training throughput (one optimizer step each, on random data) ----
    def timed_training(model, loss_of, repeats=REPEATS):
        """Median seconds of one forward + backward + optimizer step (after one warm-up step)."""
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step():
            with autocast(device):
                loss = loss_of()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.train()
        seconds = median_seconds(step, device, repeats)
        model.eval()
        return seconds

    x = torch.randn(16, 1, 8192, device=device) * 0.1

    def vqvae_loss():
        x_hat, vq_loss, _, _ = vqvae(x)
        return total_loss(x, x_hat, vq_loss)[0]

    seconds = timed_training(vqvae, vqvae_loss)
    results["vqvae_train_samples_per_s"] = x.numel() / seconds
    print(f"VQ-VAE training   {x.numel() / seconds:10.0f} samples/s ({1 / seconds:.2f} steps/s of 16 x 8192)")

    L = bert.config.max_positions
    tokens = torch.randint(0, vocab.num_codes, (16, L), device=device)  # (B, L)
    batch = {"tokens": tokens, "segments": torch.full((16, L), 2, device=device),
             "positions": torch.arange(L, device=device).expand(16, L), "targets": tokens}
    seconds = timed_training(bert, lambda: bert(**batch)[1]["loss"])
    results["bert_train_frames_per_s"] = 16 * L / seconds
    print(f"BERT training     {16 * L / seconds:10.0f} frames/s ({1 / seconds:.2f} steps/s of 16 x {L} frames)")

    # ---- inference: encode, decode, separate ----
    # the paths infer.py takes: overlapping 2 s pieces, batched (inputs.encode_in_pieces / decode_in_pieces)
    signal = np.random.default_rng(0).normal(0, 0.1, int(SIGNAL_SECONDS * rate)).astype(np.float32)
    with torch.inference_mode(), autocast(device):
        indices, _, _ = encode_waveform(vqvae, signal, device)
        encode = median_seconds(lambda: encode_waveform(vqvae, signal, device), device)
        decode = median_seconds(lambda: decode_in_pieces(vqvae, indices.to(device)), device)
    for name, value in (("encode", encode), ("decode", decode), ("encode + decode", encode + decode)):
        results[f"{name.replace(' + ', '_')}_realtime_factor"] = SIGNAL_SECONDS / value
        print(f"{name:<17} {SIGNAL_SECONDS / value:10.1f}x real time ({value * 1000:.0f} ms for {SIGNAL_SECONDS:g} s)")

    S = int(30 * rate) // hop
    mixture = torch.randint(0, vocab.num_codes, (S,))  # (S,)
    features = torch.nn.functional.normalize(torch.randn(S, vqvae.config.code_dim), dim=-1)
    audio = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, S * hop).astype(np.float32))
    time_separation(bert, vqvae, vocab, mixture, features, audio, device)  # warm-up
    parts = time_separation(bert, vqvae, vocab, mixture, features, audio, device)
    results["separate_30s_all_stems"] = parts
    print(f"separate 30 s     {parts['total']:10.1f} s for all {len(vocab.stems)} stems, refined "
          f"({30 / parts['total']:.1f}x real time; BERT {parts['bert']:.1f} s, decoding "
          f"{parts['decode']:.1f} s, Eq. 10 {parts['refine']:.2f} s)")
    results["peak_memory_mb"] = peak_memory_mb(device)
    print(f"peak memory       {results['peak_memory_mb']:10.0f} MB")
    if args.json:
        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    run_main(main)
