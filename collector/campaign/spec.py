"""A validated campaign and its expansion into jobs: models x settings x batch sizes x repeats.

Why: the scheduler should not know TOML. It asks a ``CampaignSpec`` which agents it targets
(``targets.matches``) and, per device, which jobs to queue (``jobs()``); every job's settings
are a dict that ``shared.settings.parse_job_settings`` (hence the agent) accepts, so the agent
measures exactly what the campaign says and the stored result records it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.campaign import stored
from collector.campaign.matrix import Matrix
from collector.campaign.models import ModelRef
from collector.campaign.shapes import Shapes, job_shapes
from collector.campaign.targets import Targets
from collector.campaign.values import without_valued
from shared.errors import UsageError
from shared.input_values import InputValue, values_to_wire
from shared.settings import SETTING_KEYS

MAX_RETRY_INVALID = 10  # re-measuring an invalid result more often only hides a busy board


@dataclass(frozen=True)
class JobSpec:
    """One job to queue on each targeted device: a model, its settings, which repeat."""

    model: ModelRef
    settings: dict[str, Any]
    repeat: int
    batch_size: int | None = None


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign, validated in full by ``load_campaign``; times in seconds.

    ``measure`` holds the ``[measure]`` values that are job settings (only those written);
    ``input_shapes`` the shapes ``[inputs]`` gives each model, before batch sizes;
    ``input_values`` the values and files it gives (``collector.campaign.values``).
    """

    name: str
    source: Path
    models: list[ModelRef]
    matrix: Matrix
    targets: Targets
    description: str = ""
    input_shapes: dict[str, Shapes] = field(default_factory=dict)
    input_values: dict[str, dict[str, InputValue]] = field(default_factory=dict)
    measure: dict[str, Any] = field(default_factory=dict)
    repeats: int = 1
    timeout_s: float = 600.0
    retries: int = 2
    retry_invalid: int = 1  # an invalid result is measured again up to this many times
    seed: int = 0
    target_ci: float | None = None
    profile_ops: bool = False

    def settings_grid(self) -> list[dict[str, Any]]:
        """Each matrix combination merged with the measure values, as job settings.

        Batch sizes are not in it: they become per-model input shapes (see ``job_settings``).
        """
        base: dict[str, Any] = {**self.measure, "seed": self.seed}
        if self.target_ci is not None and "target_ci" in SETTING_KEYS:
            base["target_ci"] = self.target_ci  # only once agents understand it
        if self.profile_ops:
            base["profile_ops"] = True  # a separate per-op pass after the timed runs
        return [{**base, **combo} for combo in self.matrix.combos()]

    def job_settings(
        self, model: ModelRef, settings: Mapping[str, Any], batch_size: int | None = None
    ) -> dict[str, Any]:
        """``settings`` plus ``model``'s input shapes, with dim 0 set to ``batch_size``, and its
        input values (which set their inputs' shapes, so batch sizes leave those alone)."""
        values = self.input_values.get(model.name, {})
        shaped = without_valued(model, values)
        shapes = job_shapes(shaped, self.input_shapes.get(model.name, {}), batch_size)
        out = {**settings, "input_shapes": shapes} if shapes else dict(settings)
        if values:
            out["input_values"] = values_to_wire(values)
        return out

    def jobs(self) -> list[JobSpec]:
        """Every job for one device: repeats outermost, then models, settings, batch sizes.

        Repeats are outermost so that a slow drift on a board (heat, a background task) spreads
        over every setting instead of landing on the last one measured.
        """
        batches: tuple[int | None, ...] = self.matrix.batch_sizes or (None,)
        grid = self.settings_grid()
        return [
            JobSpec(model, self.job_settings(model, settings, batch), repeat, batch)
            for repeat in range(self.repeats)
            for model in self.models
            for settings in grid
            for batch in batches
        ]

    def materialize_models(self, out_dir: Path) -> dict[str, Path]:
        """The file of every model by name, writing zoo models (seeded by ``seed``) to out_dir."""
        from collector import zoo  # builds with onnx; the server never materializes

        wanted = [model.zoo for model in self.models if model.zoo is not None]
        written = zoo.write_zoo(out_dir, self.seed, wanted) if wanted else {}
        kernels = self._write_sweeps(out_dir)
        paths: dict[str, Path] = {}
        for model in self.models:
            path = written[model.zoo] if model.zoo is not None else model.path
            path = kernels.get(model.name, path) if model.sweep is not None else path
            if path is None or not path.is_file():
                raise UsageError(
                    f"campaign {self.name!r}: model file {path} is gone",
                    f"restore it, or load {self.source} again",
                )
            paths[model.name] = path
        return paths

    def _write_sweeps(self, out_dir: Path) -> dict[str, Path]:
        """The file of each sweep kernel the campaign runs, built into ``out_dir/sweep-NAME``
        (their weights come from each kernel's id, not from the campaign's seed)."""
        from collector import sweep
        from collector.sweep.build import write_samples  # builds with onnx

        paths: dict[str, Path] = {}
        for name in dict.fromkeys(m.sweep for m in self.models if m.sweep is not None):
            wanted = {m.name for m in self.models if m.sweep == name}
            samples = [s for s in sweep.named_samples(name) if s.id in wanted]
            written = write_samples(out_dir / f"sweep-{name}", samples)
            paths |= {kernel: path for kernel, (path, _) in written.items()}
        return paths

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for the database; ``from_dict`` restores it after a restart."""
        return stored.spec_to_dict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CampaignSpec:
        """The spec ``to_dict`` stored; a dict of another format version is refused."""
        return cls(**stored.fields_from_dict(raw))
