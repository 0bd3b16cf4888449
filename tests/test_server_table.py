"""The collector's message table: every wire message type has exactly one place in it, and
each row's handler is written for the message it answers."""

from __future__ import annotations

import typing

from collector.server import table
from shared import protocol


def test_every_message_type_is_either_answered_or_only_sent() -> None:
    answered, sent = set(table.ROUTES), set(table.SENT_ONLY)
    assert answered & sent == set()
    assert answered | sent == set(protocol.MESSAGE_TYPES.values())


def test_each_handler_takes_the_message_its_row_names() -> None:
    for cls, route in table.ROUTES.items():
        hints = typing.get_type_hints(route.handle)
        taken = hints["msg"]
        accepted = set(typing.get_args(taken)) or {taken}
        assert cls in accepted, f"{cls.__name__} is routed to {route.handle.__qualname__}"
        assert route.handle.__module__.startswith("collector.server.handlers.")


def test_client_messages_need_a_client_key_and_the_rest_an_agent_key() -> None:
    clients = {cls for cls, route in table.ROUTES.items() if route.role.admits("client")}
    assert clients == {protocol.SubmitCampaign, protocol.ModelData, protocol.StatusRequest}
    first = {cls for cls, route in table.ROUTES.items() if route.role is table.Role.AGENT}
    assert first == {protocol.Register}


def test_an_agent_key_may_send_every_message_an_agent_sends() -> None:
    """Secure mode is the same product: the agent's graph upload (ModelData, read by the
    per-op join), its model fetches and its results, calibrations included, need no client key.
    """
    agents = {cls for cls, route in table.ROUTES.items() if route.role.admits("agent")}
    sent_by_agents = {protocol.Register, protocol.Heartbeat, protocol.Progress,
                      protocol.ModelRequest, protocol.ModelData, protocol.Result,
                      protocol.JobFailed}  # fmt: skip
    assert agents == sent_by_agents
    assert table.Role.EITHER.keys == {"agent", "client"}
    assert not table.Role.CLIENT.admits("agent") and not table.Role.REGISTERED.admits("client")
