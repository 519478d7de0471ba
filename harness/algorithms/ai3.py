"""Which algorithms ai3 (the aithree package) can run, and on which device.

ai3's conv2d algorithms and where its 0.1.0 release implements them, read from that release's sources
(tests/fixtures/ai3-0.1.0-algorithms.json says how, and tests/test_ai3_names.py holds this table to it):
``direct`` and ``smm`` are its own CPU code (groups 1, zero padding); ``gemm``, ``implicit gemm``,
``implicit precomp gemm``, ``winograd`` and ``guess`` only exist in a build with cuDNN, on a CUDA device.
Each algorithm's ai3 name is its registry record's ``ai3`` (None: ai3 has no such algorithm).
"""

from __future__ import annotations

from harness.algorithms import registry

AI3_VERSION = "0.1.0"
# ai3's conv2d algorithm name -> the devices its AI3_VERSION runs it on (mps/metal: Apple builds only)
AI3_CONV2D_DEVICES = {
    "direct": ("cpu",),
    "smm": ("cpu",),
    "gemm": ("cuda",),
    "implicit gemm": ("cuda",),
    "implicit precomp gemm": ("cuda",),
    "winograd": ("cuda",),
    "guess": ("cuda",),
    "mps": ("mps",),
    "metal": ("mps",),
    "default": ("cpu", "cuda"),
}


def ai3_device_support(names: list[str], device: str) -> list[tuple[str, bool, str]]:
    """For each of our algorithm ``names``: (name, whether ai3 can run it on ``device``, why or why not)."""
    out = []
    for name in names:
        if name not in registry.names():
            out.append((name, False, f"unknown algorithm (known: {', '.join(registry.names())})"))
            continue
        ai3_name = registry.get(name).ai3
        if ai3_name is None:
            out.append((name, False, f"ai3 {AI3_VERSION} has no {name} algorithm"))
            continue
        devices = AI3_CONV2D_DEVICES.get(ai3_name, ())
        if device in devices:
            out.append((name, True, f"ai3 conv2d algorithm {ai3_name!r} runs on {device}"))
        else:
            where = ", ".join(devices) or "no device"
            out.append((name, False, f"ai3 conv2d algorithm {ai3_name!r} runs only on {where}, not {device}"))
    return out


def format_device_support(rows: list[tuple[str, bool, str]], device: str) -> str:
    """``ai3_device_support``'s answer as lines for a person: one per algorithm, ok or not and why."""
    lines = [f"ai3 {AI3_VERSION} on {device}:"]
    width = max((len(name) for name, _, _ in rows), default=0)
    lines += [f"  {name:<{width}}  {'ok ' if ok else 'no '} {reason}" for name, ok, reason in rows]
    return "\n".join(lines)
