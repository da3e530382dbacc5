"""A zoo of hand-designed efficient SR networks, usable everywhere a searched network is (train, eval,
upscale, export, bench, studies).

Families (``trisr zoo`` lists them with their cost): ``bicubic`` (no parameters, the baseline as a network),
``espcn``, ``fsrcnn``, ``span``, ``imdn`` and ``esrt_lite``. Each has knobs (width, depth, ...) and a
``ladder``: knob settings from the smallest to the largest network, MACs strictly increasing, from which a
study picks the largest one whose measured latency fits a budget. A network is described by a
:class:`ZooSpec` (family, scale, knobs), kept as ``arch.json`` in its run folder.

Global skip. Every learned family takes ``skip`` in {"nearest", "none"}, default "nearest": the same global
nearest-neighbour skip that trisr's own derived networks end in (ABPN's anchor: the LR input repeated s^2 times
and added before PixelShuffle, i.e. ``+ nearest_s(LR)`` after it; the code is ``trisr.space.ops.add_global_skip``,
shared with ``Tail``). In our ablation the skip is worth ~1.3 dB at short training schedules, so giving it to the
searched networks only would make the comparison unfair; ``skip="none"`` gives the published form.
"""

from trisr.zoo import nets  # noqa: F401 - registers the families
from trisr.zoo.registry import (
    SKIP_KNOB,
    ZOO,
    ZOO_SCHEMA_VERSION,
    Knob,
    ZooFamily,
    ZooSpec,
    create_zoo_model,
    get_family,
    list_zoo,
    register_zoo,
)

__all__ = [
    "SKIP_KNOB", "ZOO", "ZOO_SCHEMA_VERSION", "Knob", "ZooFamily", "ZooSpec",
    "create_zoo_model", "get_family", "list_zoo", "register_zoo",
]
