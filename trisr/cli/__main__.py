"""``python -m trisr.cli`` (what the remote-profiling tests and torchrun start)."""

from trisr.cli.app import main

main()
