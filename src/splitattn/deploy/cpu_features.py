"""What this CPU does natively in reduced precision, as PyTorch's own dispatch sees it.

The same model is fast or slow in bfloat16 and int8 depending on these: oneDNN runs int8
convolutions with VNNI (one instruction per 4 products summed in int32), and without it with
AVX2's pairwise products summed in int16, which can saturate unless activations keep 7 bits
(``reduce_range``); bfloat16 convolutions are native with AVX-512 BF16 or AMX and emulated
(slower than float32) elsewhere. Reports and benchmarks state them, so a number is never read
without the hardware it came from.
"""

from __future__ import annotations

import torch


def cpu_features() -> dict[str, bool]:
    """Which reduced-precision instruction sets PyTorch detects on this CPU (all False off x86)."""
    probe = {
        "avx2": "_is_avx2_supported",
        "avx512": "_is_avx512_supported",
        "vnni": "_is_vnni_supported",
        "avx512_bf16": "_is_avx512_bf16_supported",
        "amx": "_is_amx_tile_supported",
    }
    found = {}
    for name, function in probe.items():
        check = getattr(torch.cpu, function, None)
        found[name] = bool(check()) if check is not None else False
    return found


def native_int8() -> bool:
    """int8 dot products without int16 saturation (VNNI or AMX): full 8-bit activations are safe."""
    features = cpu_features()
    return features["vnni"] or features["amx"]


def native_bfloat16() -> bool:
    """bfloat16 convolutions that oneDNN runs natively (and packs), not emulated through float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def describe_cpu() -> str:
    """One line for reports: the reduced-precision features present and absent."""
    features = cpu_features()
    have = [name for name, present in features.items() if present]
    lack = [name for name, present in features.items() if not present]
    return f"CPU with {', '.join(have) or 'no vector extensions PyTorch detects'}" + (
        f"; without {', '.join(lack)}" if lack else "")
