"""The CPU a benchmark ran on, by name and instruction set, recorded with every result.

The same network is fast or slow in int8 and bf16 depending on the vector instructions the CPU
has, and the machines this project runs on differ from one session to the next (AVX2-only EPYCs,
AVX-512 VNNI/BF16 ones, Xeons with AMX). A speed verdict means nothing without them, and a
precision the CPU only emulates (bf16 without AVX-512 BF16 or AMX) is no target at all: the summary
marks it so instead of "not met". Read from ``/proc/cpuinfo``'s flags where there is one (Linux),
and from PyTorch's own detection otherwise.
"""

from __future__ import annotations

from pathlib import Path

from ..deploy.cpu_features import cpu_features

# How a report names each instruction set, and the /proc/cpuinfo flags (any of) that mean it.
INSTRUCTION_SETS: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "AVX-512 VNNI": ("avx512_vnni",),
    "AVX-VNNI": ("avx_vnni",),
    "AVX-512 BF16": ("avx512_bf16",),
    "AMX-BF16": ("amx_bf16",),
    "AMX-INT8": ("amx_int8",),
}
# The same names from PyTorch's detection, where /proc/cpuinfo is not readable.
TORCH_NAMES = {"AVX2": "avx2", "AVX-512": "avx512", "AVX-512 VNNI": "vnni", "AVX-512 BF16": "avx512_bf16",
               "AMX-BF16": "amx", "AMX-INT8": "amx"}
NATIVE_BF16 = ("AVX-512 BF16", "AMX-BF16")  # oneDNN and OpenVINO compute bf16 natively with either
NATIVE_INT8 = ("AVX-512 VNNI", "AVX-VNNI", "AMX-INT8")  # int8 dot products without int16 saturation


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str | None, set[str] | None]:
    try:
        text = path.read_text()
    except OSError:
        return None, None
    name, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name is None:
            name = value.strip()
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
    return name, flags


def cpu_description() -> dict:
    """``{"name": ..., "instruction_sets": {"AVX2": True, ...}, "native_bf16": ..., "native_int8": ...}``."""
    name, flags = _cpuinfo()
    if flags is not None:
        sets = {label: any(flag in flags for flag in names) for label, names in INSTRUCTION_SETS.items()}
    else:
        torch_view = cpu_features()
        sets = {label: bool(torch_view.get(TORCH_NAMES.get(label, ""), False)) for label in INSTRUCTION_SETS}
    return {"name": name, "instruction_sets": sets, "native_bf16": any(sets[s] for s in NATIVE_BF16),
            "native_int8": any(sets[s] for s in NATIVE_INT8)}


def cpu_line(cpu: dict | None) -> str:
    """``"AMD EPYC 9B14 with AVX2, AVX-512, AVX-512 VNNI, AVX-512 BF16; without AVX-VNNI, AMX-BF16, AMX-INT8"``,
    or a note that the results do not say (results files older than this record)."""
    if not cpu:
        return "a CPU this results file does not describe (recorded before its instruction sets were)"
    sets = cpu.get("instruction_sets", {})
    have = [label for label, present in sets.items() if present]
    lack = [label for label, present in sets.items() if not present]
    return f"{cpu.get('name') or 'an unnamed CPU'} with {', '.join(have) or 'none of ' + ', '.join(sets)}" + (
        f"; without {', '.join(lack)}" if lack and have else "")
