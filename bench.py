"""Speed benchmark: how many times faster than real time the tokenizer encodes and decodes.

    python bench.py [--vqvae runs/vqvae.pt] [--seconds 10] [--device auto] [--threads 2]

Without a checkpoint it times an untrained model of the default configuration (speed does not
depend on the weights). Reports the median of several runs, after one warm-up run, of
encode (waveform -> tokens) and decode (tokens -> waveform) of a `--seconds`-long signal.
Speed is measured here, never by timed assertions in the tests.
"""
import time
from pathlib import Path

import torch

from checkpoint import load_vqvae
from cli import ArgumentParser, amp_dtype, autocast, pick_device, run_main
from vqvae import VQVAE, VQVAEConfig


def median_seconds(function, repeats):
    function()  # warm-up: allocations, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    parser = ArgumentParser(description="Time the tokenizer's encode + decode against real time.")
    parser.add_argument("--vqvae", default="runs/vqvae.pt", help="checkpoint to time (default: an untrained default model if missing)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test signal in seconds")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    parser.add_argument("--fp32", action="store_true", help="disable mixed precision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if Path(args.vqvae).exists():
        model, source = load_vqvae(args.vqvae, device), args.vqvae
    else:
        model, source = VQVAE(VQVAEConfig()).to(device).eval(), "untrained default config"
    sample_rate = model.config.sample_rate
    x = torch.randn(1, 1, int(args.seconds * sample_rate), device=device) * 0.1
    precision = None if args.fp32 else amp_dtype(device)

    def run(function):
        def timed():
            with torch.inference_mode(), autocast(device) if precision else torch.autocast(device.type, enabled=False):
                result = function()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return result
        return timed

    indices = run(lambda: model.encode(x))()
    encode = median_seconds(run(lambda: model.encode(x)), args.repeats)
    decode = median_seconds(run(lambda: model.decode(indices)), args.repeats)
    print(f"model: {source}, k = {model.config.num_downsamples}, {sample_rate} Hz; device {device} "
          f"({args.threads} threads), precision {precision or 'fp32'}; signal {args.seconds:g} s")
    print(f"encode          {encode * 1000:8.1f} ms   {args.seconds / encode:7.1f}x real time")
    print(f"decode          {decode * 1000:8.1f} ms   {args.seconds / decode:7.1f}x real time")
    print(f"encode + decode {(encode + decode) * 1000:8.1f} ms   {args.seconds / (encode + decode):7.1f}x real time")


if __name__ == "__main__":
    run_main(main)
