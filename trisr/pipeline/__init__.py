"""Workflows: what a user's command does from start to end, above the library.

The layer above :mod:`trisr.search`, :mod:`trisr.export`, :mod:`trisr.profile` and :mod:`trisr.study`, below the
command line: :mod:`~trisr.pipeline.target` resolves the deployment target and keeps it with the run,
:mod:`~trisr.pipeline.search` runs a search under it (``trisr search``), :mod:`~trisr.pipeline.deploy` does the
whole job from photos to a verified, benchmarked artifact (``trisr deploy``). The CLI only parses and prints.
"""
