"""Campaigns: which models, under which settings, on which agents, measured how.

A campaign is a TOML file (``configs/campaign.example.toml`` documents every key).
``load_campaign`` validates it in full and returns a ``CampaignSpec``, whose ``jobs()`` is what
the scheduler queues on each device that ``targets.matches``. One module per table:

- ``tables``  typed TOML reads whose errors name the file and the key path
- ``models``  ``models``: paths, globs and ``zoo:`` names, and each model's declared inputs
- ``shapes``  ``[inputs]`` and ``matrix.batch_sizes``: per-model input shapes
- ``matrix``  ``[matrix]``: the settings product
- ``targets`` ``[targets]``: agent names, globs and tags
- ``measure`` ``[measure]``: measurement settings
- ``spec``    ``CampaignSpec`` and its expansion into ``JobSpec``
- ``stored``  the JSON form kept in the database
- ``loader``  ``load_campaign``
"""

from __future__ import annotations

from collector.campaign.loader import load_campaign
from collector.campaign.matrix import Matrix
from collector.campaign.models import ModelInput, ModelRef
from collector.campaign.spec import CampaignSpec, JobSpec
from collector.campaign.stored import FORMAT_VERSION
from collector.campaign.targets import Targets

__all__ = [
    "FORMAT_VERSION",
    "CampaignSpec",
    "JobSpec",
    "Matrix",
    "ModelInput",
    "ModelRef",
    "Targets",
    "load_campaign",
]
