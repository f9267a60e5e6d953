"""The compression question: how many samples per frame (2^k), and how many codes per frame (Q),
can the whole pipeline afford?

    python sweep.py [--pairs 4x1,5x2,6x4,7x8,8x16] [--vqvae-steps 400] [--bert-steps 400] [--out runs/sweep]
    python sweep.py --ks 4,6,8                      # one codebook each: --pairs 4x1,6x1,8x1

The original work's BERT saw 0.18 s of audio per window; coarser frames would let it see seconds,
if the tokenizer still reconstructs well. A frame of Q residual codes (Eq. 9) keeps the bitrate of
a finer single-codebook tokenizer: k = 4 Q = 1, 5 x 2, 6 x 4, 7 x 8 and 8 x 16 are all 9 kbit/s
at 16 kHz with K = 512, while a 512-frame window spans 0.5, 1, 2, 4 and 8 s. For each (k, Q) this
trains a VQ-VAE and a BERT on its tokens with the *same* step budgets, through the same commands a
user runs (`train.py vqvae`, `train.py bert`, `evaluate.py`), and collects: reconstruction SI-SDR
and MR-STFT distance, codes used (the least-used level's, and each level's), frames per second,
seconds per 512-frame window, masked accuracy per level against each level's unigram guess,
separation SI-SDRi per stem (token-only, one decoding step) and inpainting of gaps of
`--gap-seconds` (default 0.128 s, the default model's gap, and 1 s, where the context allows)
against silence, a cross-fade and the oracle; on the validation split by default: choosing
(k, Q) and the masking is model selection, which must not look at the test split.
`--tokenizer-only` trains and scores the tokenizers alone (no BERT: a fraction of the time).
`--masking-variants` also trains, for the first pair only, a BERT per stem-masking scheme (cosine
ratio vs BERT's 15%), the comparison that picked the default. `--vqvae-args`, `--bert-args` and
`--evaluate-args` pass further flags to every pair's tokenizer, BERT and evaluation
(`--vqvae-args="--level-dim 8 --stage-blocks 2"`; use another --out per setting). The table goes to stdout and OUT/sweep.md, the numbers to OUT/sweep.json, both
rewritten after every run, keeping the rows of an earlier sweep into the same folder for the
pairs this one does not redo; each run's log sits in its folder (OUT/k7q8/, or OUT/k4/ for Q = 1).
"""
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from cli import ArgumentParser, run_main
from files import UserError, atomic_write

HERE = Path(__file__).resolve().parent


def run(args, log):
    """Run one of the project's commands, its output to `log`; stop the sweep if it fails."""
    start = time.time()
    with open(log, "w") as handle:
        code = subprocess.call([sys.executable, *[str(a) for a in args]], stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        raise UserError(f"{log}: `{' '.join(str(a) for a in args)}` failed (exit {code}); see the log")
    return (time.time() - start) / 60


# inpainting columns: (name, evaluate.py's key); the unigram codes (context-free draws) are missing in older rows
GAP_COLUMNS = (("bert", "mrstft_gap"), ("unigram", "mrstft_gap_unigram"), ("silence", "mrstft_gap_silence"),
               ("crossfade", "mrstft_gap_crossfade"), ("oracle", "mrstft_gap_oracle"))


def row(k, codebooks, label, minutes, results):
    recon, mlm = results["reconstruction"], results.get("mlm")  # no mlm: a --tokenizer-only sweep
    separation = results.get("separation", {})
    gaps = {seconds: ({"skipped": gap["skipped"]} if "skipped" in gap else
                      {name: gap[key] for name, key in GAP_COLUMNS if key in gap})
            for seconds, gap in results.get("inpainting_gaps", {}).items()}
    return {"k": k, "codebooks": codebooks, "variant": label, "minutes": minutes,
            "si_sdr_db": recon["si_sdr_db"], "mrstft": recon["mrstft"], "codes_used": recon["codes_used_fraction"],
            "codes_used_by_level": recon.get("codes_used_fraction_by_level", [recon["codes_used_fraction"]]),
            "si_sdr_db_by_levels": recon.get("si_sdr_db_by_levels", {}),
            "tokens_per_second": recon["tokens_per_second"], "seconds_per_512": recon["seconds_per_512_tokens"],
            "bitrate_kbps": recon["bitrate_kbps"],
            **({} if mlm is None else {
                "mlm_accuracy": mlm["accuracy"], "unigram_accuracy": mlm["unigram_accuracy"],
                "neighbour_accuracy": mlm["neighbour_accuracy"],
                "mlm_accuracy_by_level": mlm.get("accuracy_by_level", [mlm["accuracy"]]),
                "unigram_accuracy_by_level": mlm.get("unigram_accuracy_by_level", [mlm["unigram_accuracy"]])}),
            "si_sdri_db": {stem: v["si_sdri_db"] for stem, v in separation.items()}, "inpainting": gaps}


def key(r):
    """A row's identity: (k, Q, masking); rows of sweeps before residual quantization have Q = 1."""
    return r["k"], r.get("codebooks", 1), r["variant"]


def merge(previous, new):
    """The rows of `previous` that `new` does not redo, and `new`; by (k, Q), the cosine variant first."""
    redone = {key(r) for r in new}
    rows = [r for r in previous if key(r) not in redone] + new
    return sorted(rows, key=lambda r: (r["k"], r.get("codebooks", 1), r["variant"] != "cosine", r["variant"]))


def save(out, rows):
    with atomic_write(out / "sweep.md") as tmp:
        tmp.write_text(markdown(rows) + "\n")
    with atomic_write(out / "sweep.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2) + "\n")


def markdown(rows):
    """One row per run; rows of older sweeps lack the per-level and inpainting columns (shown as -)."""
    stems = sorted({stem for r in rows for stem in r["si_sdri_db"]})
    gaps = sorted({g for r in rows for g in r.get("inpainting", {})}, key=float)
    lines = ["| k | Q | BERT stem masking | frames/s | s per 512 frames | kbit/s | recon SI-SDR dB | MR-STFT | codes used "
             "(each level) | MLM acc. (unigram, neighbour) | MLM acc. by level (unigram) | "
             + "".join(f"SI-SDRi {s} | " for s in stems)
             + "".join(f"inpainting {g} s: BERT / unigram codes / silence / cross-fade / oracle | " for g in gaps)
             + "wall min |",
             "|" + " --- |" * (12 + len(stems) + len(gaps))]
    for r in rows:
        by_level = r.get("codes_used_by_level", [r["codes_used"]])
        mlm_levels = " ".join(f"{a:.3f} ({u:.3f})" for a, u in zip(r.get("mlm_accuracy_by_level", []),
                                                                     r.get("unigram_accuracy_by_level", []))) or "-"
        cells = [f"{r['k']}", f"{r.get('codebooks', 1)}", r["variant"], f"{r['tokens_per_second']:g}",
                 f"{r['seconds_per_512']:.2f}", f"{r['bitrate_kbps']:.1f}" if "bitrate_kbps" in r else "-",
                 f"{r['si_sdr_db']:.2f}", f"{r['mrstft']:.2f}",
                 f"{100 * r['codes_used']:.0f}%" + (f" ({' '.join(f'{100 * u:.0f}' for u in by_level)})" if len(by_level) > 1 else ""),
                 f"{r['mlm_accuracy']:.3f} ({r['unigram_accuracy']:.3f}, {r['neighbour_accuracy']:.3f})"
                 if "mlm_accuracy" in r else "-", mlm_levels]
        cells += [f"{r['si_sdri_db'].get(s, float('nan')):+.2f}" for s in stems]
        for g in gaps:
            gap = r.get("inpainting", {}).get(g)
            cells.append("-" if gap is None or "skipped" in gap else
                         " / ".join(f"{gap[name]:.2f}" if name in gap else "-" for name, _ in GAP_COLUMNS))
        lines.append("| " + " | ".join(cells) + f" | {r['minutes']:.1f} |")
    return "\n".join(lines)


def parse_pairs(args):
    """[(k, Q)] from --pairs "4x1,7x8", or from --ks "4,6" (one codebook each)."""
    text = args.ks or args.pairs
    try:
        if args.ks:
            return [(int(k), 1) for k in text.split(",")]
        return [tuple(int(n) for n in pair.split("x", 1)) for pair in text.split(",")]
    except ValueError:
        raise UserError(f"--pairs must look like 4x1,7x8 (k x codebooks) and --ks like 4,6; got '{text}'") from None


def main():
    parser = ArgumentParser(description="Train and score the tokenizer + BERT for several (k, Q) pairs, same budget each.")
    parser.add_argument("--pairs", default="4x1,5x2,6x4,7x8,8x16",
                        help="comma-separated k x Q pairs: 2^k samples per frame, Q codebooks (default: 9 kbit/s each at 16 kHz)")
    parser.add_argument("--ks", default=None, help="comma-separated k values with one codebook each (instead of --pairs)")
    parser.add_argument("--vqvae-steps", type=int, default=400, help="tokenizer training steps per pair")
    parser.add_argument("--bert-steps", type=int, default=400, help="BERT training steps per pair")
    parser.add_argument("--vqvae-args", default="", help='further train.py vqvae flags for every pair, e.g. --vqvae-args="--level-dim 8 --stage-blocks 2"')
    parser.add_argument("--bert-args", default="", help="further train.py bert flags for every pair")
    parser.add_argument("--evaluate-args", default="",
                        help='further evaluate.py flags for every pair, e.g. --evaluate-args="--separation-chunks 2"')
    parser.add_argument("--gap-seconds", default="0.128,1.0", help="inpainting gaps to score (evaluate.py --gap-seconds)")
    parser.add_argument("--tokenizer-only", action="store_true",
                        help="train and score the tokenizers only, no BERT (the reconstruction and codes-used columns)")
    parser.add_argument("--masking-variants", action="store_true",
                        help="for the first pair, also train a BERT with --masking bert and compare on validation")
    parser.add_argument("--split", default="validation", choices=["validation", "test"],
                        help="split to score (validation: the sweep chooses (k, Q) and the masking, so it must not see test)")
    parser.add_argument("--out", default="runs/sweep", help="output folder")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    args = parser.parse_args()
    pairs = parse_pairs(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ["--data", args.data] if args.data else []
    previous = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() else []
    rows = []
    for k, codebooks in pairs:
        folder = out / (f"k{k}" if codebooks == 1 else f"k{k}q{codebooks}")
        folder.mkdir(exist_ok=True)
        variants = ["cosine", "bert"] if args.masking_variants and (k, codebooks) == pairs[0] else ["cosine"]
        if args.tokenizer_only:
            variants = ["tokenizer only"]
        minutes = run([HERE / "train.py", "vqvae", "--k", k, "--codebooks", codebooks, "--steps", args.vqvae_steps,
                       "--eval-every", 100, "--overwrite", "--out", folder, *shlex.split(args.vqvae_args), *data],
                      folder / "vqvae.log")
        for variant in variants:
            if args.tokenizer_only:  # the tokenizer's figures only
                bert_folder, bert_minutes, bert = folder, 0.0, ["--bert", "none"]
            else:
                bert_folder = folder if variant == "cosine" else folder / f"masking-{variant}"
                bert_minutes = run([HERE / "train.py", "bert", "--vqvae", folder / "vqvae.pt", "--steps", args.bert_steps,
                                    "--eval-every", 100, "--overwrite", "--masking", variant, "--out", bert_folder,
                                    *shlex.split(args.bert_args), *data],
                                   bert_folder.with_suffix(".log") if variant != "cosine" else folder / "bert.log")
                bert = ["--bert", bert_folder / "bert.pt", "--separation-steps", "1", "--gap-seconds", args.gap_seconds]
            run([HERE / "evaluate.py", "--vqvae", folder / "vqvae.pt", *bert, "--split", args.split, "--overwrite",
                 "--json", bert_folder / "results.json", *shlex.split(args.evaluate_args), *data],
                bert_folder / "evaluate.log")
            results = json.loads((bert_folder / "results.json").read_text())
            rows.append(row(k, codebooks, variant, minutes + bert_minutes, results))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
            save(out, merge(previous, rows))  # an interrupted sweep keeps the runs it finished
    print(markdown(merge(previous, rows)))


if __name__ == "__main__":
    run_main(main)
