"""Image-encoding throughput, the figure that decides how long an index build takes.

    python benchmarks/encode_throughput.py                                  # the bundled demo model
    python benchmarks/encode_throughput.py --model clip:ViT-B-32/random --images 128
    python benchmarks/encode_throughput.py --model two-tower:models/base --device cuda --batch-size 256

Renders demo images at the model's input size and preprocesses them first, so the figure is the encoder's alone
(decoding in DataLoader workers runs beside it during a build). Prints images/s and, on CUDA, peak GPU memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mmsearch.encode.encoders import (
    input_size,  # noqa: E402
    load_encoder,  # noqa: E402
)
from mmsearch.ingest import demo  # noqa: E402
from mmsearch.train.data import render_pixels  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo", help="model spec (demo, two-tower:<dir>, clip:<arch>/<tag>)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--images", type=int, default=512, help="demo renders to encode")
    parser.add_argument("--batch-size", type=int, default=64, help="images per encoder call")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the test images")
    args = parser.parse_args()
    encoder = load_encoder(args.model, args.device)
    items = demo.make_items(args.images, demo.HELDOUT_SEED, prefix="bench")
    pixels = render_pixels(items, encoder.preprocess, input_size(encoder), args.workers)
    batches = [pixels[i : i + args.batch_size] for i in range(0, len(pixels), args.batch_size)]
    encoder.encode_pixels(batches[0])  # warm-up: first-call allocations and kernel selection are not throughput
    cuda = encoder.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(encoder.device)
    start = time.perf_counter()
    for batch in batches:
        encoder.encode_pixels(batch)  # returns numpy, so each batch is finished when this returns
    seconds = time.perf_counter() - start
    line = (
        f"{encoder.model_id} on {encoder.device}: {len(pixels)} images of {input_size(encoder)}px in "
        f"{seconds:.2f}s = {len(pixels) / seconds:.1f} images/s (batch {args.batch_size})"
    )
    if cuda:
        line += f", peak GPU memory {torch.cuda.max_memory_allocated(encoder.device) / 2**30:.2f} GiB"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
