"""Tests for helpers/lab/precision.py: when mixed bfloat16 training gets a warning."""

import warnings

import pytest

from helpers.lab import precision
from helpers.models import build_cnn

CPUINFO_WITHOUT_BFLOAT16 = """processor\t: 0
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni
processor\t: 1
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CPUINFO_WITHOUT_BFLOAT16, False),
        (CPUINFO_WITHOUT_BFLOAT16.replace("avx512_vnni", "avx512_vnni avx512_bf16"), True),
        ("processor\t: 0\nflags\t\t: sse2 avx2 amx_bf16 amx_tile\n", True),
        ("processor\t: 0\nBogoMIPS\t: 48.00\n", None),  # no flags line: unknown
    ],
)
def test_native_bfloat16_cpu_reads_the_cpu_flags(tmp_path, text, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert precision.native_bfloat16_cpu(cpuinfo) is expected


def test_native_bfloat16_cpu_is_unknown_without_cpuinfo(tmp_path):
    assert precision.native_bfloat16_cpu(tmp_path / "missing") is None


@pytest.fixture
def cpu_without_bfloat16(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO_WITHOUT_BFLOAT16)
    monkeypatch.setattr(precision, "CPUINFO_PATH", cpuinfo)
    monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind: [])


def test_build_cnn_warns_for_bfloat16_on_a_cpu_without_bfloat16_instructions(
    cpu_without_bfloat16,
):
    with pytest.warns(UserWarning, match="CPU without bfloat16 instructions.*Use 'float32'"):
        build_cnn(10, width=4, dtype_policy="mixed_bfloat16")


def test_build_cnn_stays_quiet_in_float32_on_such_a_cpu(cpu_without_bfloat16):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_cnn(10, width=4)


def test_no_warning_where_a_gpu_computes(cpu_without_bfloat16, monkeypatch):
    monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind: ["GPU:0"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.warn_if_bfloat16_is_slow("mixed_bfloat16")
