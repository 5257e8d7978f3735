"""Whether mixed bfloat16 training can pay off on this machine (notebook 02, ``PRECISION``).

``build_cnn(..., dtype_policy="mixed_bfloat16")`` computes the convolutions in bfloat16.
That is only faster on a CPU that has bfloat16 instructions (AVX-512 BF16, or AMX);
without them each bfloat16 operation is emulated and a training step is slower than in
float32 (``benchmarks/README.md`` has the measurements). So ``build_cnn`` warns when it is
asked for bfloat16 on a CPU known to lack the instructions.
"""

from __future__ import annotations

import pathlib
import warnings

import tensorflow as tf

CPUINFO_PATH = pathlib.Path("/proc/cpuinfo")
# CPU flags (as Linux spells them in /proc/cpuinfo) of native bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bfloat16_cpu(cpuinfo_path: str | pathlib.Path | None = None) -> bool | None:
    """Tells whether this CPU has bfloat16 instructions, as far as it can be known.

    Args:
        cpuinfo_path: The Linux CPU description to read; ``None`` for ``CPUINFO_PATH``
            (``/proc/cpuinfo``).

    Returns:
        ``True`` if a ``flags`` line names one of ``BFLOAT16_CPU_FLAGS``, ``False`` if the
        file has ``flags`` lines and none does, ``None`` (unknown) where the file does not
        exist or lists no flags (macOS, Windows, some ARM machines).
    """
    path = pathlib.Path(CPUINFO_PATH if cpuinfo_path is None else cpuinfo_path)
    if not path.is_file():
        return None
    flags = set()
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    if not flags:
        return None
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def warn_if_bfloat16_is_slow(dtype_policy: str) -> None:
    """Warns when ``dtype_policy`` asks for bfloat16 on a CPU without bfloat16 instructions.

    Nothing is said for float32, on a machine with a GPU (not measured in the lab), or where
    the CPU's flags cannot be read.

    Args:
        dtype_policy: A ``build_cnn`` dtype policy.
    """
    if dtype_policy == "float32" or tf.config.list_physical_devices("GPU"):
        return
    if native_bfloat16_cpu() is False:
        warnings.warn(
            f"dtype_policy={dtype_policy!r} on a CPU without bfloat16 instructions (none of "
            f"{', '.join(BFLOAT16_CPU_FLAGS)} in {CPUINFO_PATH}): training will be slower, not "
            "faster (a bfloat16 step took twice as long as a float32 one where measured, "
            "benchmarks/README.md). Use 'float32' on this machine.",
            UserWarning,
            stacklevel=3,
        )
