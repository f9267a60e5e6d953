"""Speed benchmark: tokenizer and BERT training throughput, encode/decode and separation speed.

    python bench.py [--vqvae runs/vqvae.pt] [--bert runs/bert.pt] [--seconds 10] [--device auto]
                    [--threads 2] [--json bench.json]

Without checkpoints it times untrained models of the default configurations (speed does not
depend on the weights). Each timing is the median of several runs after one warm-up run.
Reported: VQ-VAE training samples/s (batch 16 x 8192 samples, the default), BERT training
tokens/s (batch 16 x 512 tokens, or frames of Q codes with a residual tokenizer, one level
targeted per item as in level masking), encode and decode real-time factors, separating every stem of a
30 s mixture as `infer.py separate` does (one batched BERT pass, decoding, Eq. 10 refinement) with 1
and 8 decoding steps, with `--index-tracks N` the time to index a
Slakh2100-shaped tree of N tracks and to draw batches from it, with `--long-file-minutes M` the
time and peak memory of `infer.py reconstruct` on an M-minute 44.1 kHz stereo file, and peak memory (CUDA: allocator peak; CPU: the
process's peak resident size). Speed is measured here, never by timed assertions in the tests.
"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from bert import AudioBERT, BERTConfig
from checkpoint import load_bert, load_vqvae
from cli import ArgumentParser, amp_dtype, autocast, pick_device, run_main
from data import ChunkSampler, find_tracks
from files import UserError, atomic_write
from losses import total_loss
from masking import IGNORE, Vocabulary
import synth
from refine import refine
from tasks import separate_all
from tokens import encode_waveform
from vqvae import VQVAE, VQVAEConfig


def median_seconds(function, repeats, device):
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


def time_separation(bert, vqvae, vocab, mixture, features, audio, steps, device):
    """Seconds to separate every stem of a mix as `infer.py separate` does: one batched BERT pass over
    all stems, decoding each stem, then Eq. 10 (refine.py). Returns each part and the total."""
    start = time.perf_counter()
    with torch.inference_mode(), autocast(device):
        tokens = separate_all(bert, vocab, mixture, features, vocab.stems, steps=steps)  # (J, S), on the CPU
    separated = time.perf_counter()
    with torch.inference_mode(), autocast(device):
        waves = torch.stack([vqvae.decode_in_pieces(t.to(device)).float().cpu() for t in tokens])  # (J, T)
    decoded = time.perf_counter()
    refine(audio, waves)
    end = time.perf_counter()
    return {"bert": separated - start, "decode": decoded - separated, "refine": end - decoded, "total": end - start}


def load_models(args, device):
    if Path(args.vqvae).exists():
        vqvae, source = load_vqvae(args.vqvae, device), args.vqvae
    else:
        vqvae, source = VQVAE(VQVAEConfig()).to(device).eval(), "untrained default VQ-VAE"
    if Path(args.bert).exists():
        bert, vocab = load_bert(args.bert, vqvae, device)
        source += f", {args.bert}"
    else:
        vocab = Vocabulary(vqvae.config.num_codes, ("bass", "drums", "guitar", "piano"))
        config = BERTConfig(num_codes=vqvae.config.num_codes, code_dim=vqvae.config.code_dim,
                            num_special=vocab.size - vocab.num_codes, codebooks=vqvae.config.codebooks)
        bert = AudioBERT(config, vqvae.quantizer.code_vectors().detach()).to(device).eval()
        source += ", untrained default BERT"
    return vqvae, bert, vocab, source


# ---- dataset scale: a tree shaped like Slakh2100, as many tracks as it has ----

SLAKH_LIKE_CLASSES = ("Bass", "Drums", "Guitar", "Piano", "Strings (continued)", "Organ", "Synth Lead", "Brass",
                      "Guitar", "Piano", "Chromatic Percussion", "Reed")  # 12 stems, two classes twice


def fake_slakh(root, num_tracks, seconds=10.0, rate=44100):
    """train/TrackNNNNN/{mix.flac, stems/S00..S11.flac, metadata.yaml}. Every audio file is a hard
    link to one FLAC of noise (so the tree costs no disk); the metadata files are all real."""
    source = root / "noise.flac"
    sf.write(source, np.random.default_rng(0).normal(0, 0.1, int(seconds * rate)).astype(np.float32), rate)
    for n in range(num_tracks):
        folder = root / "train" / f"Track{n + 1:05d}"
        (folder / "stems").mkdir(parents=True)
        os.link(source, folder / "mix.flac")
        stems = {}
        for i, inst_class in enumerate(SLAKH_LIKE_CLASSES):
            os.link(source, folder / "stems" / f"S{i:02d}.flac")
            stems[f"S{i:02d}"] = {"inst_class": inst_class, "is_drum": inst_class == "Drums", "program_num": i,
                                  "audio_rendered": i != 7, "midi_program_name": inst_class, "plugin_name": "x.nkm"}
        (folder / "metadata.yaml").write_text(yaml.safe_dump({"audio_dir": "stems", "UUID": f"{n:032x}", "stems": stems}))


def time_dataset_index(num_tracks, sample_rate=16000):
    """Seconds to index a Slakh-sized tree once, and to draw a training batch from it afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        fake_slakh(root, num_tracks)
        start = time.perf_counter()
        tracks = find_tracks(root, "train")  # the index: built once per run, never per step
        index = time.perf_counter() - start
        sampler = ChunkSampler(tracks, sample_rate, 16384, seed=0)
        start = time.perf_counter()
        sampler.sample(16)  # the first batch also reads each drawn track's length (then cached on the track)
        first = time.perf_counter() - start
        batch = median_seconds(lambda: sampler.sample(16), 5, torch.device("cpu"))
    return {"tracks": num_tracks, "index_seconds": index, "first_batch_seconds": first, "batch_seconds": batch}


# ---- long files: infer.py streams them in segments ----

def time_long_file(minutes, vqvae_path):
    """Reconstruct a `minutes`-long 44.1 kHz stereo FLAC of synthetic music through `infer.py`:
    returns the wall time and the peak resident memory of that process."""
    if not Path(vqvae_path).exists():
        raise UserError(f"{vqvae_path}: --long-file-minutes needs a trained VQ-VAE (python train.py vqvae)")
    rate, need = 44100, int(minutes * 60 * 44100)
    rng = np.random.default_rng(0)
    tracks = [synth.generate_track(rng, rate)["mix"] for _ in range(4)]
    with tempfile.TemporaryDirectory() as folder:
        path, written, i = Path(folder) / "long.flac", 0, 0
        with sf.SoundFile(path, "w", samplerate=rate, channels=2) as out:  # written block by block too
            while written < need:
                x = tracks[i % len(tracks)][:need - written]
                out.write(np.stack([x, 0.8 * x], axis=1))
                written, i = written + len(x), i + 1
        code, errors, seconds, peak = run_measured([sys.executable, Path(__file__).parent / "infer.py", "reconstruct",
                                                    path, "-o", Path(folder) / "out.wav", "--vqvae", vqvae_path])
    if code != 0:
        raise UserError(f"infer.py reconstruct failed on the long file: {errors.strip()}")
    return {"minutes": minutes, "seconds": seconds, "peak_memory_mb": peak}


def run_measured(command, cwd=None, env=None):
    """Run a command: (exit code, its stderr, wall seconds, its peak resident memory in MB).

    The peak is the child's own high-water mark, polled from /proc while it runs; getrusage's
    RUSAGE_CHILDREN would report this process's size at the fork instead, if larger.
    """
    with tempfile.TemporaryFile("w+") as errors:
        start, peak = time.perf_counter(), 0.0
        process = subprocess.Popen(list(map(str, command)), cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                   stderr=errors, text=True)
        while process.poll() is None:
            peak = max(peak, high_water_mb(process.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        errors.seek(0)
        return process.returncode, errors.read(), seconds, peak


def high_water_mb(pid):
    """Peak resident memory of a running process so far (Linux: VmHWM in /proc/PID/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):  # it just exited, or no /proc
        pass
    return 0.0


def main():
    parser = ArgumentParser(description="Time training and inference of the tokenizer and BERT.")
    parser.add_argument("--vqvae", default="runs/vqvae.pt", help="VQ-VAE to time (default: an untrained default model if missing)")
    parser.add_argument("--bert", default="runs/bert.pt", help="BERT to time (default: an untrained default model if missing)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the encode/decode test signal in seconds")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    parser.add_argument("--skip-separation", action="store_true", help="skip the (slow) 30 s separation timing")
    parser.add_argument("--index-tracks", type=int, default=0,
                        help="also time indexing a Slakh2100-shaped tree of this many tracks (2100 = Slakh; 0 = skip)")
    parser.add_argument("--long-file-minutes", type=float, default=0,
                        help="also time `infer.py reconstruct` on a 44.1 kHz stereo file this long, with its peak memory (0 = skip)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1 or args.seconds <= 0:
        raise UserError("--repeats and --threads must be at least 1 and --seconds positive")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    vqvae, bert, vocab, source = load_models(args, device)
    rate, hop = vqvae.config.sample_rate, vqvae.hop
    print(f"models: {source}; k = {vqvae.config.num_downsamples}, {rate} Hz; device {device} "
          f"({args.threads} threads), mixed precision {amp_dtype(device) or 'none (fp32)'}")
    results = {"device": str(device), "threads": args.threads, "precision": str(amp_dtype(device))}

    # ---- training throughput (one optimizer step each, on random data) ----
    def timed_training(model, loss_of):
        """Median seconds of one forward + backward + optimizer step."""
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step():
            with autocast(device):
                loss = loss_of()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.train()
        seconds = median_seconds(step, args.repeats, device)
        model.eval()
        return seconds

    x = torch.randn(16, 1, 8192, device=device) * 0.1

    def vqvae_loss():
        x_hat, vq_loss, _, _ = vqvae(x)
        return total_loss(x, x_hat, vq_loss)[0]

    seconds = timed_training(vqvae, vqvae_loss)
    results["vqvae_train_samples_per_s"] = x.numel() / seconds
    print(f"VQ-VAE training   {x.numel() / seconds:10.0f} samples/s ({1 / seconds:.2f} steps/s of 16 x 8192)")

    L, Q = bert.config.max_positions, bert.config.codebooks
    frame = () if Q == 1 else (Q,)  # a residual tokenizer's frames of Q codes (Eq. 9)
    tokens = torch.randint(0, vocab.num_codes, (16, L, *frame), device=device)  # (B, L) or (B, L, Q)
    targets = tokens
    if Q > 1:  # training predicts one level per item (masking.level_mask): target a random level of each row
        level = torch.randint(0, Q, (16, 1, 1), device=device)
        targets = tokens.masked_fill(torch.arange(Q, device=device) != level, IGNORE)  # (B, L, Q)
    batch = {"tokens": tokens, "segments": torch.full((16, L), 2, device=device),
             "positions": torch.arange(L, device=device).expand(16, L), "targets": targets}
    seconds = timed_training(bert, lambda: bert(**batch)[1])
    results["bert_train_tokens_per_s"] = 16 * L / seconds  # frames with Q > 1
    print(f"BERT training     {16 * L / seconds:10.0f} {'tokens' if Q == 1 else 'frames'}/s ({1 / seconds:.2f} steps/s "
          f"of 16 x {L}" + (")" if Q == 1 else f" frames of {Q} codes)"))

    # ---- inference: encode, decode, separate ----
    # the paths infer.py takes: overlapping 2 s pieces, batched (VQVAE.encode_in_pieces / decode_in_pieces)
    signal = np.random.default_rng(0).normal(0, 0.1, int(args.seconds * rate)).astype(np.float32)
    with torch.inference_mode(), autocast(device):
        indices, _, _ = encode_waveform(vqvae, signal, device)
        encode = median_seconds(lambda: encode_waveform(vqvae, signal, device), args.repeats, device)
        decode = median_seconds(lambda: vqvae.decode_in_pieces(indices.to(device)), args.repeats, device)
    for name, value in (("encode", encode), ("decode", decode), ("encode + decode", encode + decode)):
        results[f"{name.replace(' + ', '_')}_realtime_factor"] = args.seconds / value
        print(f"{name:<17} {args.seconds / value:10.1f}x real time ({value * 1000:.0f} ms for {args.seconds:g} s)")

    if not args.skip_separation:
        S = int(30 * rate) // hop
        mixture = torch.randint(0, vocab.num_codes, (S, *frame))  # (S,) or (S, Q)
        features = torch.nn.functional.normalize(torch.randn(S, vqvae.config.code_dim), dim=-1)
        audio = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, S * hop).astype(np.float32))
        for steps in (1, 8):
            parts = time_separation(bert, vqvae, vocab, mixture, features, audio, steps, device)
            results[f"separate_30s_all_stems_{steps}_steps"] = parts
            print(f"separate 30 s     {parts['total']:10.1f} s for all {len(vocab.stems)} stems, {steps} decoding step(s), "
                  f"refined ({30 / parts['total']:.1f}x real time; BERT {parts['bert']:.1f} s, decoding "
                  f"{parts['decode']:.1f} s, Eq. 10 {parts['refine']:.2f} s)")
    if args.index_tracks > 0:
        index = time_dataset_index(args.index_tracks)
        results["dataset_index"] = index
        print(f"dataset index     {index['index_seconds']:10.1f} s to index {args.index_tracks} Slakh-style tracks once; "
              f"then {index['batch_seconds'] * 1000:.0f} ms per batch of 16 x 16384 samples "
              f"(first batch {index['first_batch_seconds'] * 1000:.0f} ms)")
    if args.long_file_minutes > 0:
        long = time_long_file(args.long_file_minutes, args.vqvae)
        results["long_file"] = long
        print(f"long file         {long['seconds']:10.1f} s to reconstruct {args.long_file_minutes:g} min of 44.1 kHz stereo, "
              f"peak memory {long['peak_memory_mb']:.0f} MB ({args.long_file_minutes * 60 / long['seconds']:.0f}x real time)")
    results["peak_memory_mb"] = peak_memory_mb(device)
    print(f"peak memory       {results['peak_memory_mb']:10.0f} MB")
    if args.json:
        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    run_main(main)
