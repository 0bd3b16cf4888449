"""A peer whose messages are malformed or break a handler is slowed down; others are not."""

from __future__ import annotations

from collector.server.ratelimit import PENALTY_TOKENS, RateLimiter


def test_a_penalized_peer_runs_out_of_tokens_sooner_and_recovers() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10.0, burst=40.0, clock=lambda: now[0])
    assert limiter.allow("bad") and limiter.allow("good")
    limiter.penalize("bad")  # costs PENALTY_TOKENS ordinary messages
    allowed_bad = sum(limiter.allow("bad") for _ in range(40))
    allowed_good = sum(limiter.allow("good") for _ in range(40))
    assert allowed_good == 39 and allowed_bad == 39 - int(PENALTY_TOKENS)
    now[0] += 10.0  # the bucket refills at `rate`: a penalty is not a ban
    assert limiter.allow("bad")


def test_an_unknown_peer_is_not_charged() -> None:
    limiter = RateLimiter(rate=10.0, burst=5.0)
    limiter.penalize("nobody")
    assert len(limiter) == 0
