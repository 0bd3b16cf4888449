"""``load_campaign``: one TOML file to a validated ``CampaignSpec``, or one error naming the key.

Why validate everything here: once jobs are queued on a fleet, a typo costs a board-hour per
job. Every key is checked (unknown keys too, with the known ones listed), every model is found
and its inputs read, every shape, value and batch size is checked against the model, and every job's
settings are passed through ``shared.settings.parse_job_settings`` (what the agent's
``settings_from_dict`` applies first) before anything is queued.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from collector.campaign.matrix import read_matrix
from collector.campaign.measure import read_measure, read_setting
from collector.campaign.models import resolve_models
from collector.campaign.shapes import Shapes, check_coverage, read_input_shapes
from collector.campaign.spec import MAX_RETRY_INVALID, CampaignSpec
from collector.campaign.tables import Table, read_toml, usage
from collector.campaign.targets import read_targets
from collector.campaign.values import read_input_values, without_valued
from shared.errors import UsageError
from shared.protocol import MAX_JSON_FIELD_BYTES
from shared.settings import BY_NAME, parse_job_settings

TOP_KEYS = (
    "name", "description", "models", "timeout_s", "retries", "retry_invalid", "seed",
    "inputs", "matrix", "targets", "measure",
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def load_campaign(path: Path) -> CampaignSpec:
    """Read and validate the campaign file at ``path``; model paths are relative to its folder."""
    source = Path(path).absolute()
    top = Table(read_toml(source), "", source, TOP_KEYS)
    name = top.require("name", "a string", 'name = "smoke"')
    if not _NAME.fullmatch(name):
        raise top.error(
            "name", f"{name!r} is not a campaign name", "use 1-64 letters, digits, '.', '_', '-'"
        )
    seed = int(read_setting(top, BY_NAME["seed"]) or 0)
    matrix, targets, measure = read_matrix(top), read_targets(top), read_measure(top)
    models = resolve_models(top, source.parent, seed or 0)
    shapes = read_input_shapes(top, models, batching=bool(matrix.batch_sizes))
    values = read_input_values(top, models, source.parent)
    for model in models:
        given = values.get(model.name, {})
        if given:  # a value sets its input's shape, whatever a "*" shape says
            own = {n: s for n, s in shapes.get(model.name, {}).items() if n not in given}
            shapes = {**shapes, model.name: own} if own else _drop(shapes, model.name)
        check_coverage(
            top, without_valued(model, given), shapes.get(model.name, {}), matrix.batch_sizes
        )
    spec = CampaignSpec(
        name=name,
        description=top.get("description", "a string", ""),
        source=source,
        models=models,
        input_shapes=shapes,
        input_values=values,
        matrix=matrix,
        targets=targets,
        measure=measure.settings,
        repeats=measure.repeats,
        timeout_s=top.amount("timeout_s", 600.0, strict=True) or 600.0,
        retries=top.count("retries", 2) or 0,
        retry_invalid=_retry_invalid(top),
        seed=seed or 0,
        target_ci=measure.target_ci,
        profile_ops=measure.profile_ops,
    )
    _check_agent_accepts(spec)
    return spec


def _retry_invalid(top: Table) -> int:
    value = top.count("retry_invalid", 1) or 0
    if value > MAX_RETRY_INVALID:
        raise top.error("retry_invalid", f"must be <= {MAX_RETRY_INVALID}, got {value}",
                        "an invalid result that keeps recurring needs a quieter board, not "
                        "more retries")  # fmt: skip
    return value


def _drop(shapes: dict[str, Shapes], name: str) -> dict[str, Shapes]:
    return {model: given for model, given in shapes.items() if model != name}


def _check_agent_accepts(spec: CampaignSpec) -> None:
    """Pass the settings of every distinct job through the parser the agent applies, and
    refuse input values larger than the protocol carries: each job carries its own copy, and
    one SubmitCampaign carries every job in at most MAX_JSON_FIELD_BYTES of JSON."""
    carried = 0
    for job in spec.jobs():
        values = job.settings.get("input_values")
        carried += len(json.dumps(values, separators=(",", ":"))) if values else 0
        if carried > MAX_JSON_FIELD_BYTES:
            raise usage(
                spec.source,
                "inputs",
                f"the input values of this campaign's jobs come to over {carried:,} bytes of "
                f"JSON (each job carries its own copy), over the {MAX_JSON_FIELD_BYTES:,} one "
                "submitted campaign carries",
                "give smaller input files or fewer jobs; let the agent synthesize large inputs",
            )
        if job.repeat:
            continue  # later repeats have the same settings
        try:
            parse_job_settings(job.settings)
        except UsageError as exc:
            raise usage(
                spec.source,
                "measure",
                f"the agent would refuse the settings of model {job.model.name!r}: {exc.message}",
                exc.hint or "fix [measure] or [matrix]",
            ) from exc
