"""A campaign as JSON for the database, and back, so a restarted collector resumes it.

Why store the expanded spec rather than the TOML text: the TOML names files relative to where it
was, and its zoo models and input metadata were resolved at load. The stored form carries what
``jobs()`` needs (each model's declared inputs included), so a restart re-expands the same jobs
without opening a model file. ``FORMAT_VERSION`` changes whenever a field does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.campaign.matrix import Matrix
from collector.campaign.models import ModelInput, ModelRef
from collector.campaign.targets import Targets
from shared.errors import UsageError
from shared.input_values import values_from_wire, values_to_wire

if TYPE_CHECKING:
    from collector.campaign.spec import CampaignSpec

FORMAT_VERSION = 1
_SCALARS = ("name", "description", "repeats", "timeout_s", "retries", "seed", "target_ci")
_HINT = "load the campaign again from its TOML file"


def spec_to_dict(spec: CampaignSpec) -> dict[str, Any]:
    """Plain JSON types only: lists for tuples, str for paths."""
    return {
        "format_version": FORMAT_VERSION,
        **{key: getattr(spec, key) for key in _SCALARS},
        "retry_invalid": spec.retry_invalid,
        "profile_ops": spec.profile_ops,
        "source": str(spec.source),
        "models": [_model_to_dict(model) for model in spec.models],
        "input_shapes": {
            model: {name: list(shape) for name, shape in shapes.items()}
            for model, shapes in spec.input_shapes.items()
        },
        "input_values": {
            model: values_to_wire(values) for model, values in spec.input_values.items()
        },
        "matrix": {f.name: list(getattr(spec.matrix, f.name)) for f in fields(Matrix)},
        "targets": {"agents": list(spec.targets.agents), "tags": dict(spec.targets.tags)},
        "measure": dict(spec.measure),
    }


def fields_from_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The CampaignSpec fields of a stored dict; another format version or a bad dict is refused."""
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise UsageError(
            f"stored campaign {raw.get('name')!r} has format {version!r}; this flopgap reads "
            f"format {FORMAT_VERSION}",
            _HINT,
        )
    try:
        return {
            **{key: raw[key] for key in _SCALARS},
            "retry_invalid": int(raw.get("retry_invalid", 1)),  # absent before schema 4
            "profile_ops": bool(raw["profile_ops"]),
            "source": Path(raw["source"]),
            "models": [_model_from_dict(model) for model in raw["models"]],
            "input_shapes": {
                model: {name: [int(d) for d in shape] for name, shape in shapes.items()}
                for model, shapes in raw["input_shapes"].items()
            },
            "input_values": {  # absent in campaigns stored before input values existed
                model: values_from_wire(values)
                for model, values in raw.get("input_values", {}).items()
            },
            "matrix": Matrix(**{key: tuple(values) for key, values in raw["matrix"].items()}),
            "targets": Targets(tuple(raw["targets"]["agents"]), dict(raw["targets"]["tags"])),
            "measure": dict(raw["measure"]),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"stored campaign {raw.get('name')!r} is malformed: {exc!r}", _HINT
        ) from exc


def _model_to_dict(model: ModelRef) -> dict[str, Any]:
    # "sweep" is written only for a sweep kernel, so every other stored model reads as before
    sweep = {} if model.sweep is None else {"sweep": model.sweep}
    return {
        "name": model.name,
        "path": None if model.path is None else str(model.path),
        "zoo": model.zoo,
        **sweep,
        "inputs": [
            {
                "name": arg.name,
                "dims": None if arg.dims is None else list(arg.dims),
                "dtype": arg.dtype,
            }
            for arg in model.inputs
        ],
    }


def _model_from_dict(raw: Mapping[str, Any]) -> ModelRef:
    return ModelRef(
        name=raw["name"],
        path=None if raw["path"] is None else Path(raw["path"]),
        zoo=raw["zoo"],
        sweep=raw.get("sweep"),  # absent in campaigns stored before sweeps existed
        inputs=tuple(
            ModelInput(
                arg["name"],
                None if arg["dims"] is None else tuple(arg["dims"]),
                arg.get("dtype"),
            )
            for arg in raw["inputs"]
        ),
    )
