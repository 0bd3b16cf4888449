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
    clients = {cls for cls, route in table.ROUTES.items() if route.role.key == "client"}
    assert clients == {protocol.SubmitCampaign, protocol.ModelData, protocol.StatusRequest}
    first = {cls for cls, route in table.ROUTES.items() if route.role is table.Role.AGENT}
    assert first == {protocol.Register}
