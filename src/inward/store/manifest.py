"""``run.json``: one pydantic model for the manifest of every command that writes a run directory
(``inward study``, ``inward evaluate``, ``inward tune``).

Fields that a command does not produce stay ``None`` and are left out of the file, so each
command's run.json holds only what it measured. Reading an old or hand-edited run.json goes
through the same model: a field of the wrong type is an error that names it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from inward.errors import InwardError
from inward.store.rundir import MANIFEST


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    version: int = 1
    command: Literal["study", "evaluate", "tune"]
    status: Literal["running", "complete"] = "running"
    config: dict[str, Any] | None = None  # study and tune: the config as run (YAML keys)
    spec: dict[str, Any] | None = None  # evaluate: the evaluation spec
    model: str | None = None  # tune: the model whose finetuning is tuned
    environment: dict[str, Any]  # inward.store.rundir.environment(): versions, git, platform, time
    # Seconds per stage summed over every session that worked on the run directory; a resumed
    # run adds its own. stage_seconds_this_run is the last session's alone.
    stage_seconds: dict[str, float] | None = None
    stage_seconds_this_run: dict[str, float] | None = None
    seconds: dict[str, float] | None = None  # evaluate: object_level, extraction, hypothetical
    model_calls: dict[str, int] | None = None  # evaluate: prompts answered by the model vs the cache
    extractor_model: str | None = None
    training: list[dict[str, Any]] | None = None  # one row per finetune
    chat_formats: list[dict[str, Any]] | None = None
    models: dict[str, Any] | None = None  # full model string -> fingerprint
    peak_rss_mb: float | None = None  # the largest process's peak (a study: its own or a seed child's)
    # study: per stage, the largest peak resident memory (MiB) of the process running it, over sessions
    stage_peak_rss_mb: dict[str, float] | None = None
    verdicts: list[str] | None = None
    verdict: list[dict[str, Any]] | None = None  # per pair: inward.analysis.verdict.Verdict.to_json
    seeds: list[int] | None = None
    stages: dict[str, dict[str, Any]] | None = None  # stage output -> reused?, why (inward.store.stages)
    notes: list[str] | None = None
    best: dict[str, Any] | None = None  # tune: the best grid point
    rows: list[dict[str, Any]] | None = None  # tune: one row per grid point

    def updated(self, **fields: Any) -> RunManifest:
        """A copy with ``fields`` changed, validated like a new manifest."""
        return type(self).model_validate({**self.model_dump(), **fields})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def write(self, run) -> None:
        """Write (atomically, as every run-directory file) into ``run`` (a RunDir)."""
        run.write_json(MANIFEST, self.to_json())

    @classmethod
    def read(cls, run) -> RunManifest | None:
        """The manifest in ``run``, or None when there is none or it is not JSON (a run killed
        before its first write). A run.json whose fields have the wrong types is an error."""
        try:
            data = run.read_json(MANIFEST)
        except (OSError, ValueError):
            return None
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "(top level)"
            raise InwardError(
                f"{run.file(MANIFEST)}: field {where}: {err['msg']}. The file is not a run.json this version of "
                "inward wrote; move it away (the stages' outputs and keys are kept) and rerun."
            ) from None
