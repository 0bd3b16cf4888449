"""This board's installation: its descriptor, readiness checks, enrolment, config file, tags and
systemd unit."""
