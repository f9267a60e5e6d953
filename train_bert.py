"""Training BERT on the tokens of a trained VQ-VAE: `python train.py bert` (train.py dispatches here).

The same loop as `train_vqvae.py`, over batches from the token cache (`tokens.py`): the dataset is
tokenized once, then every step draws windows of separation (Eq. 8) and single-source masked
modelling items. `bert.pt` is the best checkpoint by validation loss, `bert-last.pt` the latest.
"""
import time
from dataclasses import asdict
from pathlib import Path

import torch

import distributed
from bert import AudioBERT, BERTConfig
from checkpoint import load_checkpoint, load_vqvae, save_checkpoint
from cli import amp_dtype, autocast, pick_device
from data import dataset_sources, embedded_dataset, find_tracks
from files import UserError, check_writable, refuse_existing
from masking import Vocabulary
from tokens import BatchMaker, TokenCache, build_token_cache, cache_folder, vqvae_fingerprint
from pretrained import work_folder
from training import (RERUN_HINT, add_run_arguments, append_csv, catch_ctrl_c, check_run_arguments,
                      optimizer_step, pace, report_stop, restore, set_learning_rate, silent,
                      stop_if_diverged, training_state)

DEFAULT_STEPS = 2000  # `python train.py bert` (README)
MLM_SHARE = 0.375  # share of each batch that is single-source masked modelling (6 of 16), the rest separation (Eq. 8)
# the model sizes: the README's (context in frames; the Eq. 8 layout uses 2M + 1 of them), or with --tiny the tests'
SIZES = {"context": 512, "layers": 4, "width": 256, "heads": 4}
TINY_SIZES = {"context": 48, "layers": 1, "width": 16, "heads": 2}
BERT_LOG = ["step", "loss", "cross_entropy", "latent", "logit_scale", "lr", "val_loss", "val_cross_entropy", "val_latent"]


def add_bert_arguments(parser):
    parser.add_argument("--vqvae", default="runs/vqvae.pt", help="trained tokenizer (default runs/vqvae.pt)")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    parser.add_argument("--stems", default=None, help="comma-separated stems to separate (default: every stem of the dataset)")
    parser.add_argument("--latent-weight", type=float, default=BERTConfig.latent_weight,
                        help=f"lambda of Eq. 11: weight of the stem-latent loss beside the cross-entropy "
                             f"(default {BERTConfig.latent_weight:g}; 0 = predict codes only)")
    parser.add_argument("--init", default=None,
                        help="start from this BERT's weights (the same settings and VQ-VAE), e.g. pretrained/bert.pt, "
                             "with a fresh optimizer and schedule: fine-tuning")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step (per rank under torchrun)")
    parser.add_argument("--tiny", action="store_true", help="a tiny BERT with a short context, trained in seconds (the tests')")
    add_run_arguments(parser, "bert", DEFAULT_STEPS,
                      "output folder (checkpoint at OUT/bert.pt; the token cache goes beside the VQ-VAE)")


def check_bert_arguments(args):
    vars(args).update(TINY_SIZES if args.tiny else SIZES)
    check_run_arguments(args, DEFAULT_STEPS, [("--batch-size", args.batch_size, 1)])
    if not 0 <= args.latent_weight < float("inf"):
        raise UserError(f"--latent-weight must be a finite number >= 0, got {args.latent_weight}")


@torch.no_grad()
def validation_losses(model, batches, device):
    """The mean of each loss (total, cross-entropy, latent) over the fixed validation batches."""
    model.eval()
    totals = {}
    for batch in batches:
        with autocast(device):
            _, losses = model(**{key: value.to(device) for key, value in batch.items()})
        for name, value in losses.items():
            totals[name] = totals.get(name, 0.0) + value.item() / len(batches)
    model.train()
    return totals


def train_bert(args):
    check_bert_arguments(args)
    rank, world_size, device = distributed.setup(pick_device(args.device))
    log = print if rank == 0 else silent
    torch.manual_seed(args.seed)
    out = Path(args.out)
    best_path, last_path, log_path = out / "bert.pt", out / "bert-last.pt", out / "bert-log.csv"
    if not args.resume:  # never replace an earlier run's checkpoints by accident
        refuse_existing([best_path, last_path], args.overwrite, RERUN_HINT)
    check_writable([best_path, last_path, log_path])
    vqvae = load_vqvae(args.vqvae, device)
    fingerprint = vqvae_fingerprint(vqvae)
    start = load_checkpoint(args.init, "bert") if args.init and not args.resume else None  # refused before any work

    # ---- data: tokenize once into a memory-mapped cache ----
    data_root = Path(args.data) if args.data else embedded_dataset(vqvae.config.sample_rate)
    available = [s for s in dataset_sources(find_tracks(data_root, "train")) if s != "mix"]
    stems = args.stems.split(",") if args.stems else available
    unknown = [s for s in stems if s not in available]
    if unknown:
        raise UserError(f"{data_root}: no stem named {', '.join(unknown)} (it has: {', '.join(available) or 'mixtures only'})")
    mlm_share = MLM_SHARE if stems else 1.0  # a folder of mixtures: masked modelling only
    folder = cache_folder(work_folder(args.vqvae), data_root, fingerprint)  # the tokenizer's
    started = time.time()
    if rank == 0:  # one rank tokenizes, the others wait for it
        for split in ("train", "validation"):
            build_token_cache(vqvae, data_root, split, folder, stems, device)
    distributed.any_rank(False, device)  # a barrier
    log(f"token cache: {folder} ({time.time() - started:.0f} s)")
    train_cache, val_cache = TokenCache(folder, "train"), TokenCache(folder, "validation")
    if train_cache.sources[1:] != stems:  # the cache of another --stems choice
        raise UserError(f"{folder}: token cache holds stems {train_cache.sources[1:]}; delete it or use another --out")
    vocab = Vocabulary(vqvae.config.num_codes, tuple(stems))
    batches = BatchMaker(train_cache, vocab, stems, args.context, seed=args.seed + rank, mlm_share=mlm_share)  # each rank its own windows
    val_maker = BatchMaker(val_cache, vocab, stems, args.context, seed=12345, mlm_share=mlm_share)
    val_batches = [val_maker.sample(args.batch_size) for _ in range(8)]  # fixed for the whole run

    # ---- model, optimizer, state ----
    config = BERTConfig(num_codes=vqvae.config.num_codes, code_dim=vqvae.config.code_dim,
                        num_special=vocab.size - vocab.num_codes, max_positions=args.context,
                        num_layers=args.layers, num_heads=args.heads, width=args.width, latent_weight=args.latent_weight)
    model = AudioBERT(config, vqvae.quantizer.normalized_codebook().detach()).to(device)
    trained = distributed.wrap(model, device)
    # AdamW decays every parameter; decaying the matrices only, as nanoGPT does, trained no better at the
    # default budget (docs/experiments/matrix-decay.md)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device, args.dtype) == torch.float16)
    step, best_val = 0, float("inf")
    if start is not None:  # fine-tuning: weights from another run, the rest starts afresh
        if (start["config"] != asdict(config) or start.get("vqvae_fingerprint") != fingerprint
                or start.get("stems") != stems):
            raise UserError(f"{args.init}: trained with other settings, stems or another VQ-VAE; --init needs the same")
        model.load_state_dict(start["model"])
        log(f"starting from the weights of {args.init} (step {start.get('step')})")
    if not args.resume:
        log_path.unlink(missing_ok=True)  # a fresh run starts a fresh log
    else:
        checkpoint = load_checkpoint(last_path, "bert")
        if checkpoint["config"] != asdict(config) or checkpoint["vqvae_fingerprint"] != fingerprint:
            raise UserError(f"{last_path}: trained with other settings or another VQ-VAE; "
                            f"resume with the same flags or use another --out")
        step, best_val = restore(checkpoint, model, optimizer, scaler, args, last_path, log)
        if world_size == 1:
            batches.rng.bit_generator.state = checkpoint["sampler_rng"]
            batches.generator.set_state(checkpoint["mask_rng"])

    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    hop, rate = vqvae.hop, vqvae.config.sample_rate
    log(f"config: {asdict(config)}")
    log(f"stems: {', '.join(stems) or 'none'}; device: {device}, mixed precision: "
        f"{amp_dtype(device, args.dtype)}; {parameters / 1e6:.2f}M parameters; {args.batch_size} x {world_size} "
        f"rank(s) sequences per step; {args.steps} steps")
    log(f"context {args.context} tokens = {args.context * hop / rate:.3f} s of one source; separation windows of "
          f"{(args.context - 1) // 2} frames = {(args.context - 1) // 2 * hop / rate:.3f} s")

    def save(path):
        save_checkpoint(path, {"kind": "bert", "config": asdict(config), "stems": stems,
                               "vqvae_fingerprint": fingerprint, "vqvae_path": str(args.vqvae),
                               "sampler_rng": batches.rng.bit_generator.state, "mask_rng": batches.generator.get_state(),
                               "args": vars(args), **training_state(model, optimizer, scaler, step, best_val)})

    interrupted = catch_ctrl_c()

    # ---- training loop ----
    started, last_log, stopped, first_step, last_step = time.time(), time.time(), False, step, step
    while step < args.steps and not (stopped := distributed.any_rank(bool(interrupted), device)):
        lr = set_learning_rate(optimizer, step, args)  # warmup, then cosine decay

        if step > 0 and step % args.eval_every == 0 and rank == 0:
            val = validation_losses(model, val_batches, device)
            if val["loss"] < best_val:
                best_val = val["loss"]
                save(best_path)
            save(last_path)
            append_csv(log_path, BERT_LOG, {"step": step, "val_loss": val["loss"], "val_cross_entropy": val["cross_entropy"],
                                            "val_latent": val["latent"]})
            print(f"step {step}: validation loss {val['loss']:.4f} (best {best_val:.4f}; cross-entropy "
                  f"{val['cross_entropy']:.4f}, latent {val['latent']:.4f})", flush=True)

        batch = {key: value.to(device) for key, value in batches.sample(args.batch_size).items()}
        with autocast(device, args.dtype):
            _, losses = trained(**batch)
        loss = losses["loss"]
        stop_if_diverged(loss, step, out, device)
        optimizer_step(loss, model, optimizer, scaler)
        step += 1

        if (step % 50 == 0 or step == 1) and rank == 0:
            scale = model.log_logit_scale.exp().item()  # the cosine head's
            append_csv(log_path, BERT_LOG, {"step": step, "loss": loss.item(), "cross_entropy": losses["cross_entropy"].item(),
                                            "latent": losses["latent"].item(), "logit_scale": scale, "lr": lr})
            print(f"step {step:5d} | loss {loss.item():.4f} (cross-entropy {losses['cross_entropy'].item():.4f}, latent "
                  f"{losses['latent'].item():.4f}) | logit scale {scale:.1f} | lr {lr:.2e} | "
                  f"{pace(step, args.steps, first_step, started, last_log, last_step)}", flush=True)
            last_log, last_step = time.time(), step

    if world_size > 1:
        del trained  # the DDP wrapper goes before the process group, or gloo may abort at exit
        if not distributed.finish(model, log):
            return
    val = validation_losses(model, val_batches, device)["loss"]
    if val < best_val:
        best_val = val
        save(best_path)
    save(last_path)
    report_stop(stopped, step, started, last_path, best_path, best_val)
    print(f"score it on the test split: python evaluate.py --vqvae {args.vqvae} --bert {best_path}")
