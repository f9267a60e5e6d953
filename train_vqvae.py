"""Training the tokenizer: `python train.py vqvae --k 4` (train.py dispatches here).

The loop is one readable function in a fixed order (as nanoGPT's): learning rate, evaluation +
checkpoint, forward/backward, gradient clipping, optimizer step, logging. Two checkpoints are
kept, both written atomically: `vqvae.pt`, the best so far by *validation* loss (the test split
is only scored once, at the end), and `vqvae-last.pt`, the latest state for `--resume`.
"""
import time
from dataclasses import asdict
from pathlib import Path

import torch

import distributed
from checkpoint import load_checkpoint, save_checkpoint
from cli import amp_dtype, autocast, pick_device
from data import DEFAULT_SAMPLE_RATE, ChunkSampler, embedded_dataset, find_tracks
from evaluation import evaluate_reconstruction, held_out_chunks, print_reconstruction, write_json
from files import UserError, check_writable, refuse_existing
from losses import total_loss
from training import (RERUN_HINT, add_run_arguments, append_csv, catch_ctrl_c, check_run_arguments,
                      optimizer_step, pace, report_stop, restore, set_learning_rate, silent,
                      stop_if_diverged, training_state)
from vqvae import VQVAE, VQVAEConfig

DEFAULT_STEPS = 1500  # `python train.py vqvae` (9.4 dB SI-SDR at k = 4: README, Results)
# the model and chunk sizes: the README's, or with --tiny the tests' (a model that trains in seconds)
SIZES = {"chunk_length": 8192, "codebook_size": 512, "code_dim": 64, "base_channels": 16, "max_channels": 256}
TINY_SIZES = {"chunk_length": 1024, "codebook_size": 16, "code_dim": 4, "base_channels": 2, "max_channels": 8}
VQVAE_LOG = ["step", "loss", "recon", "spectral", "vq", "perplexity", "codes_used", "lr", "val_loss", "val_si_sdr_db"]


def add_vqvae_arguments(parser):
    parser.add_argument("--k", type=int, default=4, help="stride-2 blocks: S = T / 2^k tokens (1..12)")
    parser.add_argument("--data", default=None, help="dataset folder: Slakh2100, MUSDB18-HQ or plain audio files "
                        "(default: the embedded synthetic dataset, generated on first use)")
    parser.add_argument("--ema", action="store_true", help="EMA codebook update instead of the codebook loss")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (Adam)")
    parser.add_argument("--batch-size", type=int, default=16, help="chunks per step (per rank under torchrun)")
    parser.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help="model sample rate in Hz")
    parser.add_argument("--tiny", action="store_true", help="a tiny model on short chunks, trained in seconds (the tests')")
    add_run_arguments(parser, "vqvae", DEFAULT_STEPS, "output folder (checkpoint at OUT/vqvae.pt)")


def check_vqvae_arguments(args):
    vars(args).update(TINY_SIZES if args.tiny else SIZES)
    check_run_arguments(args, DEFAULT_STEPS, [
        ("--k", args.k, 1), ("--batch-size", args.batch_size, 1), ("--sample-rate", args.sample_rate, 1000)])
    if args.k > 12:
        raise UserError(f"--k must be at most 12, got {args.k}")
    if args.chunk_length < 2 ** args.k:
        raise UserError(f"--k {args.k}: a token (2^k = {2 ** args.k} samples) is longer than a training chunk "
                        f"({args.chunk_length} samples)")


def train_vqvae(args):
    check_vqvae_arguments(args)
    rank, world_size, device = distributed.setup(pick_device(args.device))
    log = print if rank == 0 else silent
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    out = Path(args.out)
    best_path, last_path, log_path = out / "vqvae.pt", out / "vqvae-last.pt", out / "vqvae-log.csv"
    if not args.resume:  # never replace an earlier run's checkpoints by accident
        refuse_existing([best_path, last_path], args.overwrite, RERUN_HINT)
    check_writable([best_path, last_path, log_path])
    config = VQVAEConfig(num_downsamples=args.k, num_codes=args.codebook_size, code_dim=args.code_dim,
                         sample_rate=args.sample_rate, use_ema=args.ema,
                         base_channels=args.base_channels, max_channels=args.max_channels)

    # ---- data ----
    data_root = Path(args.data) if args.data else embedded_dataset(args.sample_rate)
    train_tracks = find_tracks(data_root, "train")
    sources = sorted({source for track in train_tracks for source in track.sources})
    shard = train_tracks[rank::world_size] if len(train_tracks) >= world_size else train_tracks  # this rank's tracks
    sampler = ChunkSampler(shard, args.sample_rate, args.chunk_length, sources=sources, seed=args.seed + rank)
    val_chunks = held_out_chunks(data_root, "validation", args.sample_rate, chunks_per_track=2)

    # ---- model, optimizer, state ----
    model = VQVAE(config).to(device)
    trained = distributed.wrap(model, device)  # DDP across ranks under torchrun, else the model itself
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device, args.dtype) == torch.float16)
    step, best_val = 0, float("inf")
    if not args.resume:
        log_path.unlink(missing_ok=True)  # a fresh run starts a fresh log
    else:
        checkpoint = load_checkpoint(last_path, "vqvae")
        saved = checkpoint["config"]
        if saved != asdict(config):
            changed = [k for k, v in asdict(config).items() if saved.get(k) != v]
            raise UserError(f"{last_path}: trained with other settings ({', '.join(changed)}); "
                            f"resume with the same flags or use another --out")
        step, best_val = restore(checkpoint, model, optimizer, scaler, args, last_path, log)
        if world_size == 1:
            sampler.rng.bit_generator.state = checkpoint["sampler_rng"]

    parameters = sum(p.numel() for p in model.parameters())
    log(f"config: {asdict(config)}")
    log(f"data: {data_root} ({len(train_tracks)} train tracks, sources {', '.join(sources)}); "
        f"device: {device}, mixed precision: {amp_dtype(device, args.dtype)}; {parameters / 1e6:.2f}M parameters")
    log(f"{args.steps} steps x {args.batch_size} chunks x {world_size} rank(s) x {args.chunk_length} samples; "
        f"one token = {model.hop} samples = {1000 * model.hop / args.sample_rate:.2f} ms")

    def save(path):
        save_checkpoint(path, {"kind": "vqvae", "config": asdict(config), "sampler_rng": sampler.rng.bit_generator.state,
                               "args": vars(args), **training_state(model, optimizer, scaler, step, best_val)})

    interrupted = catch_ctrl_c()  # Ctrl-C: finish the current step, save, and say how to resume

    # ---- training loop ----
    started, last_log, stopped, first_step, last_step = time.time(), time.time(), False, step, step
    while step < args.steps and not (stopped := distributed.any_rank(bool(interrupted), device)):
        lr = set_learning_rate(optimizer, step, args)  # warmup, then cosine decay

        if step > 0 and step % args.eval_every == 0 and rank == 0:
            val = evaluate_reconstruction(model, val_chunks, device)
            model.train()
            if val["loss"] < best_val:
                best_val = val["loss"]
                save(best_path)
            save(last_path)
            append_csv(log_path, VQVAE_LOG, {"step": step, "val_loss": val["loss"], "val_si_sdr_db": val["si_sdr_db"]})
            print(f"step {step}: validation loss {val['loss']:.4f}, SI-SDR {val['si_sdr_db']:.2f} dB, "
                  f"codes used {100 * val['codes_used_fraction']:.0f}% (best {best_val:.4f})")

        model.train()
        x = sampler.sample(args.batch_size).to(device)  # (B, 1, T)
        with autocast(device, args.dtype):
            x_hat, vq_loss, _, stats = trained(x)
        loss, parts = total_loss(x, x_hat, vq_loss)  # Eq. 2
        stop_if_diverged(loss, step, out, device)
        optimizer_step(loss, model, optimizer, scaler)
        # Data initialisation and dead-code restarts re-seed codes from each rank's own batch:
        # rank 0's codebook is the one every rank keeps, so the copies never drift apart.
        for tensor in [*model.quantizer.parameters(), *model.quantizer.buffers()]:
            distributed.broadcast_from_main(tensor.data)
        step += 1

        if (step % 50 == 0 or step == 1) and rank == 0:
            append_csv(log_path, VQVAE_LOG, {"step": step, "loss": loss.item(), "recon": parts["recon"].item(),
                                             "spectral": parts["spectral"].item(), "vq": parts["vq"].item(),
                                             "perplexity": stats["perplexity"].item(),
                                             "codes_used": stats["codes_used"].item(), "lr": lr})
            print(f"step {step:5d} | loss {loss.item():.4f} recon {parts['recon']:.4f} "
                  f"spectral {parts['spectral']:.4f} vq {parts['vq']:.4f} | perplexity "
                  f"{stats['perplexity']:.0f} used {100 * stats['codes_used']:.0f}% | lr {lr:.2e} | "
                  f"{pace(step, args.steps, first_step, started, last_log, last_step)}", flush=True)
            last_log, last_step = time.time(), step

    # ---- end: final checkpoint, then score the best model on the test split ----
    if world_size > 1:
        del trained  # the DDP wrapper goes before the process group, or gloo may abort at exit
        if not distributed.finish(model, log):
            return
    val = evaluate_reconstruction(model, val_chunks, device)
    if val["loss"] < best_val:
        best_val = val["loss"]
        save(best_path)
    save(last_path)
    minutes = report_stop(stopped, step, started, last_path, best_path, best_val)
    best = load_checkpoint(best_path, "vqvae")
    model.load_state_dict(best["model"])
    test_chunks = held_out_chunks(data_root, "test", args.sample_rate, chunks_per_track=4)
    results = evaluate_reconstruction(model, test_chunks, device)
    print_reconstruction(results, "held-out test split")
    write_json(out / "vqvae-test.json", {"reconstruction": results, "train_minutes": minutes, "steps": step})
