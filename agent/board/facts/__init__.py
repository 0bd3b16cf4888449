"""The system description: one small probe per source of descriptor facts (see .registry).

A benchmark result is only comparable with another when the board's state is known: a Jetson
in 7 W mode and the same Jetson in MAXN are two different devices. Each module here reads one
source (nvpmodel, the L4T release, cpufreq policies, vcgencmd, /proc/cpuinfo, power_supply),
under an injected root, with commands through a CommandRunner, so a captured tree replays the
board's own code path.
"""
