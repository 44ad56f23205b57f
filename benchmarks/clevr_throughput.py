"""CLEVR throughput: questions per second of relnet's state and pixel models vs a naive RN of the same architecture.

The naive RN is the repeat-and-concatenate pattern of the public CLEVR reproductions (mesnico, aelnouby): scenes
zero-padded to a fixed object count, the explicit ``(B, N*N, 2D+Q)`` pair tensor, g on every row. It shares the
*same modules and weights* as the relnet model (question LSTM, object encoder, g, f); padded pairs are zeroed after
g so that both compute the same function, which is checked before timing. relnet's RN factorises g's first layer
and packs only the valid pairs, so padded objects cost nothing: its speed must not change when the same scenes are
padded to 10 or to 20 rows, while the naive RN pays for every padded pair.

Questions are random token sequences (lengths 10..40, CLEVR-like) and scenes have 3..10 objects drawn uniformly
(CLEVR's distribution); throughput does not depend on the values. Usage:

    python benchmarks/clevr_throughput.py [--threads 2] [--repeats 5] [--quick]
    python benchmarks/clevr_throughput.py --device cuda --pixel-batch 64 640   # GPU, for the projected cost


Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.tasks.clevr.model import ClevrModel, preset

VOCAB = 90


def naive_forward(model: ClevrModel, batch: dict[str, Tensor]) -> Tensor:
    """The same function as ``model(batch)`` (kind rn), computed the repeat-and-concatenate way."""
    rn = model.head
    q = model.question(batch["tokens"], batch["lengths"])  # (B, Q)
    objects, mask = model.objects(batch)  # (B, N, D), (B, N) or None
    B, N, D = objects.shape
    xi = objects.unsqueeze(2).repeat(1, 1, N, 1)  # (B, N, N, D)
    xj = objects.unsqueeze(1).repeat(1, N, 1, 1)  # (B, N, N, D)
    qq = q[:, None, None, :].repeat(1, N, N, 1)  # (B, N, N, Q)
    pairs = torch.cat([xi, xj, qq], dim=-1).view(B * N * N, -1)  # (B*N*N, 2D+Q)
    rel = rn.g_rest(torch.relu(rn.g_in(pairs))).view(B, N * N, -1)  # (B, N*N, G)
    if mask is not None:
        valid = (mask[:, :, None] & mask[:, None, :]).view(B, N * N, 1).to(rel.dtype)  # (B, N*N, 1)
        rel = rel * valid
        count = valid.sum(1)  # (B, 1)
    else:
        count = torch.full((B, 1), float(N * N), device=objects.device)
    total = rel.sum(1)  # (B, G)
    if rn.reduce == "mean":
        total = total / count.clamp(min=1)
    return rn.f(total)


def make_batch(input: str, B: int, rows: int, g: torch.Generator) -> dict[str, Tensor]:
    lengths = torch.randint(10, 41, (B,), generator=g)
    tokens = torch.randint(2, VOCAB, (B, int(lengths.max())), generator=g)
    tokens[torch.arange(tokens.shape[1])[None, :] >= lengths[:, None]] = 0
    batch = {"tokens": tokens, "lengths": lengths, "answers": torch.randint(0, 28, (B,), generator=g)}
    if input == "state":
        n_obj = torch.randint(3, 11, (B,), generator=g)
        mask = torch.arange(rows)[None, :] < n_obj[:, None]  # (B, rows)
        batch.update(coords=torch.randn(B, rows, 3, generator=g) * mask[..., None],
                     attrs=torch.stack([torch.randint(0, k, (B, rows), generator=g) for k in (8, 3, 2, 2)], -1) * mask[..., None],
                     rgb=torch.rand(B, rows, 3, generator=g) * mask[..., None], mask=mask)
    else:
        batch["image"] = torch.rand(B, 3, 128, 128, generator=g)
    return batch


def repad(batch: dict[str, Tensor], rows: int) -> dict[str, Tensor]:
    """The same scenes with ``rows`` padded object rows instead of 10."""
    out = dict(batch)
    for k in ("coords", "attrs", "rgb", "mask"):
        v = batch[k]
        pad = v.new_zeros((v.shape[0], rows - v.shape[1], *v.shape[2:]))
        out[k] = torch.cat([v, pad], dim=1)
    return out


def timed(fn, repeats: int, device: torch.device) -> float:
    def sync() -> None:  # CUDA runs asynchronously: time the work, not its launch
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(model: ClevrModel, batch: dict[str, Tensor], impl: str, repeats: int) -> dict[str, float]:
    fwd = (lambda b: model(b)) if impl == "relnet" else (lambda b: naive_forward(model, b))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    B = len(batch["answers"])

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(fwd(batch), batch["answers"]).backward()
        opt.step()

    def eval_step():
        with torch.no_grad():
            fwd(batch)

    model.train()
    device = batch["answers"].device
    t_train = timed(train_step, repeats, device)
    model.eval()
    t_eval = timed(eval_step, repeats, device)
    return {"train_qps": B / t_train, "eval_qps": B / t_eval}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller batches, 2 repeats (a smoke test)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--pixel-batch", type=int, nargs="+", default=[16], help="batch sizes for the pixel case")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    g = torch.Generator().manual_seed(0)
    cases = [  # (name, input, preset, batch, rows)
        ("state paper (LSTM 256, g 4x512)", "state", "paper", 64, 10),
        ("state paper, padded to 20 rows", "state", "paper", 64, 20),
        ("state fast (LSTM 128, g 3x256)", "state", "fast", 64, 10),
        ("state fast, padded to 20 rows", "state", "fast", 64, 20),
    ] + [(f"pixels paper (CNN 4x24, g 4x256), batch {b}", "pixels", "paper", b if not args.quick else 4, 64)
         for b in args.pixel_batch]
    if args.quick:
        cases = [(n, i, p, min(b, 16), r) for n, i, p, b, r in cases]
    rows_out, base_batches = [], {}
    for name, input, preset_name, B, rows in cases:
        cfg = preset(preset_name, input, "rn").model
        cfg.vocab_size = VOCAB
        torch.manual_seed(0)
        model = ClevrModel(cfg).to(device)
        key = (input, B)
        if key not in base_batches:
            base_batches[key] = make_batch(input, B, 10, g)
        batch = base_batches[key] if input == "pixels" or rows == 10 else repad(base_batches[key], rows)
        batch = {k: v.to(device) for k, v in batch.items()}
        model.eval()
        with torch.no_grad():  # same function before timing
            err = (model(batch) - naive_forward(model, batch)).abs().max().item()
        assert err < 1e-3, f"{name}: relnet and naive outputs differ by {err}"
        res = {"case": name, "input": input, "preset": preset_name, "batch": B, "rows": rows, "max_abs_diff": err}
        for impl in ("relnet", "naive"):
            for k, v in measure(model, batch, impl, repeats).items():
                res[f"{impl}_{k}"] = round(v, 1)
        res["train_speedup"] = round(res["relnet_train_qps"] / res["naive_train_qps"], 2)
        rows_out.append(res)
        print(f"{name:36s} train q/s relnet {res['relnet_train_qps']:8.1f}  naive {res['naive_train_qps']:8.1f}  "
              f"(x{res['train_speedup']:.2f})   eval q/s relnet {res['relnet_eval_qps']:8.1f}  "
              f"naive {res['naive_eval_qps']:8.1f}", flush=True)
    by = {r["case"]: r for r in rows_out}
    padding = {}
    for p in ("paper", "fast"):
        a = next(r for r in rows_out if r["input"] == "state" and r["preset"] == p and r["rows"] == 10)
        b = next(r for r in rows_out if r["input"] == "state" and r["preset"] == p and r["rows"] == 20)
        padding[p] = {"relnet_train_ratio_20_vs_10": round(b["relnet_train_qps"] / a["relnet_train_qps"], 3),
                      "naive_train_ratio_20_vs_10": round(b["naive_train_qps"] / a["naive_train_qps"], 3)}
    print("padding 10 -> 20 rows, train q/s ratio:", json.dumps(padding))
    result = {"benchmark": "clevr_throughput", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "threads": args.threads, "repeats": repeats, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "cases": list(by.values()),
              "padding": padding}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
