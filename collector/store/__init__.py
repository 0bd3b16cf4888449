"""The durable store: SQLite in WAL mode, one transaction per state change.

A result is acknowledged to the agent only after its transaction commits with
synchronous=FULL, so an acknowledged result survives a crash of the collector or the machine.
Raw steady-state latencies are kept whole, packed losslessly (``latency_blob``). Every
job's state lives here too, so a restarted collector resumes every unfinished campaign.

``Store`` is composed of one class per group of tables, each in its own module:

- ``schema``     the DDL, ``STORE_SCHEMA_VERSION`` and the schema 2 to 3 upgrade
- ``connection`` the connection (WAL, synchronous=FULL), ``transaction`` and ``batch``
- ``agents``     agents and their calibrations
- ``models``     models and their theoretical costs
- ``campaigns``  campaigns, and finishing one
- ``jobs``       the job queue, dispatch, requeue and failed attempts (``Failure``)
- ``leases``     collectors sharing the store: leases, who holds each agent, the requeue
- ``results``    results, their packed latencies and per-op kernel times
- ``predictors`` trained kernel predictors, versioned per device key with their data's hash
- ``latency_blob`` how raw latencies are packed, losslessly, in the fewest whole bytes
- ``model_files`` the model files themselves, one per sha256, beside the database
- ``rows``       the typed rows every read returns, and the job and campaign states
"""

from __future__ import annotations

from collector.store.agents import Agents
from collector.store.campaigns import Campaigns
from collector.store.jobs import Failure
from collector.store.leases import Leases
from collector.store.models import Models
from collector.store.predictors import Predictors
from collector.store.results import Results
from collector.store.rows import CampaignState, JobState, ResultStatus
from collector.store.schema import STORE_SCHEMA_VERSION

__all__ = ["STORE_SCHEMA_VERSION", "CampaignState", "Failure", "JobState", "ResultStatus", "Store"]


class Store(Agents, Models, Campaigns, Results, Predictors, Leases):
    """All reads and writes of the collector's database (one connection, one thread).

    ``Results`` builds on ``Jobs`` (recording a result completes its job), so jobs come with it.
    """
