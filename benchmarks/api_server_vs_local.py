"""Throughput of the bundled Qwen 0.5B served by llama.cpp (openai-compatible/) vs the local
transformers backend, on the same prompts, back to back in one process.

    python benchmarks/api_server_vs_local.py            # 32 animals_long prompts
    python benchmarks/api_server_vs_local.py --n 64 --dtype bfloat16

Needs the `server` extra (pip install -e '.[server]'). Measures prompts/s for greedy generation
(--max-tokens new tokens) and for answer_distribution (top-20 first-token distribution: one
forward pass locally, a one-token request with top_logprobs through the server). Each side gets
a warmup call first; no cache is involved. The LAST line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--logits_all",
        "true",
        "--n_threads",
        str(threads),
        "--verbose",
        "false",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/models", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"llama.cpp server exited with {proc.returncode}") from None
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama.cpp server did not start")


def measure(backend, prompts, max_tokens: int) -> dict[str, float]:
    from inward.models.base import DistributionConfig, GenerationConfig

    gen, dist = GenerationConfig(max_tokens=max_tokens), DistributionConfig(top_k=20)
    backend.generate(prompts[:2], gen)  # warmup (loads weights / opens connections)
    backend.answer_distribution(prompts[:2], dist)
    t0 = time.perf_counter()
    backend.generate(prompts, gen)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    backend.answer_distribution(prompts, dist)
    t_dist = time.perf_counter() - t0
    return {
        "generate_seconds": round(t_gen, 2),
        "generate_prompts_per_s": round(len(prompts) / t_gen, 2),
        "distribution_seconds": round(t_dist, 2),
        "distribution_prompts_per_s": round(len(prompts) / t_dist, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=12)
    ap.add_argument("--dtype", default="float32", help="local backend precision")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight to the server")
    args = ap.parse_args()

    from inward.models import bundled, resolve
    from inward.prompts import object_prompt
    from inward.tasks import resolve_tasks

    (task,) = resolve_tasks("animals_long")
    prompts = [object_prompt(task, s.string) for s in task.load("val", args.n, 0, None, None)]
    name = "qwen2.5-coder-0.5b-instruct"

    print(f"local backend ({args.dtype}, {args.threads} threads)...", file=sys.stderr)
    local = resolve(f"bundled/{name}", dtype=args.dtype, threads=args.threads)
    local_res = measure(local, prompts, args.max_tokens)
    local.close()

    print("llama.cpp server...", file=sys.stderr)
    proc, url = start_server(bundled.gguf_path(name), args.threads)
    try:
        served = resolve(f"openai-compatible/qwen@{url}", max_concurrency=args.concurrency)
        server_res = measure(served, prompts, args.max_tokens)
        served.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    out = {
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "local": {"backend": f"transformers {args.dtype}", **local_res},
        "server": {
            "backend": "llama-cpp-python server (Q4_K_M GGUF)",
            "max_concurrency": args.concurrency,
            **server_res,
        },
        "server_over_local_generate": round(
            server_res["generate_prompts_per_s"] / local_res["generate_prompts_per_s"], 2
        ),
        "server_over_local_distribution": round(
            server_res["distribution_prompts_per_s"] / local_res["distribution_prompts_per_s"], 2
        ),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
