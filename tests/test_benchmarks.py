"""Tests for the benchmark scripts' own logic (their timings are never asserted)."""

import pytest

from benchmarks.training import VARIANTS, select_variants


def test_select_variants_keeps_every_variant_by_default():
    assert select_variants(None) == VARIANTS


def test_select_variants_keeps_the_float32_baseline_first():
    names = [name for name, _ in select_variants(["bfloat16", "pgd"])]
    assert names == [VARIANTS[0][0], "standard, mixed_bfloat16", "adversarial: pgd, 7 steps"]


def test_select_variants_refuses_texts_that_match_nothing():
    with pytest.raises(ValueError, match="--only float16x matches no variant; the variants are"):
        select_variants(["float16x"])
