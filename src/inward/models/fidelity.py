"""Does inward run the bundled model it says it runs? Checked against llama.cpp on the same GGUF.

inward dequantises a bundled GGUF once into a plain checkpoint and runs it with transformers;
llama.cpp runs the quantised file directly (Q4_K weights, activations quantised to 8 bits inside
its dot products). Both are "the same model" only if, on the same token ids, they give nearly the
same next-token distributions. :func:`token_nll` computes the per-token negative log-likelihood
of a token sequence under each engine; the fidelity test (tests/models/test_fidelity.py) compares
their means on a fixed English paragraph, and :func:`greedy_tokens` compares greedy decoding.
Needs the ``server`` extra (llama-cpp-python) for the llama.cpp side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# A fixed English paragraph (public-domain style prose written for this check).
PARAGRAPH = (
    "The river ran quietly past the old mill, where the miller's daughter sat on the stone steps "
    "and counted the boats that drifted by. In the spring the water rose high enough to touch the "
    "lowest window, and the whole village came down to watch it. By summer it had fallen again, "
    "leaving a line of dried mud on the wall that the children liked to scratch their names into."
)


def transformers_model(checkpoint: Path | str, dtype: str = "float32") -> Any:
    """The checkpoint as inward loads it (safetensors, the given dtype), in eval mode."""
    from inward.models.checkpoint import Checkpoint
    from inward.models.spec import parse_model_string

    return Checkpoint(parse_model_string(f"hf/{Path(checkpoint).resolve()}")).load_base(dtype).eval()


def transformers_nll(model: Any, ids: Sequence[int]) -> list[float]:
    """Per-token NLL (nats) of ``ids[1:]`` given the tokens before, with transformers."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([list(ids)])).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return [-float(logp[k, t]) for k, t in enumerate(ids[1:])]


def llama_cpp_model(gguf: Path | str, threads: int = 2) -> Any:
    """llama.cpp on the GGUF file itself, keeping the logits of every position."""
    from llama_cpp import Llama

    return Llama(model_path=str(gguf), n_ctx=512, logits_all=True, n_threads=threads, verbose=False)


def llama_cpp_nll(llm: Any, ids: Sequence[int]) -> list[float]:
    """The same with llama.cpp (the quantised GGUF), fed the very same token ids."""
    import numpy as np

    llm.reset()
    llm.eval(list(ids))
    scores = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
    scores -= scores.max(axis=-1, keepdims=True)
    logp = scores - np.log(np.exp(scores).sum(axis=-1, keepdims=True))
    return [-float(logp[k, t]) for k, t in enumerate(ids[1:])]


def greedy_tokens_transformers(model: Any, ids: Sequence[int], n: int) -> list[int]:
    """``n`` greedy tokens after ``ids`` (argmax at every step, no sampling, no stop tokens)."""
    import torch

    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(ids) :]


def greedy_tokens_llama_cpp(llm: Any, ids: Sequence[int], n: int) -> list[int]:
    """The same with llama.cpp."""
    import numpy as np

    llm.reset()
    seq = list(ids)
    llm.eval(seq)
    for _ in range(n):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        seq.append(nxt)
        llm.eval([nxt])
    return seq[len(ids) :]
