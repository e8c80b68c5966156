"""The windowing model of LLM in a flash: loaded and cached fractions by hand."""

from __future__ import annotations

import itertools

import pytest

from hw_models.errors import SpecError
from workloads import FFNSparsity


def test_independent_tokens_reduce_to_the_closed_forms() -> None:
    sp = FFNSparsity(active_fraction=0.1, window=4)
    assert sp.load_fraction == pytest.approx(0.1 * 0.9**4)
    assert sp.cache_fraction == pytest.approx(1 - 0.9**5)


def test_persistent_activity_loads_less_and_caches_less() -> None:
    # p = 0.1, rho = 0.7: q = 0.03; k = 5: load = 0.9 x 0.97^4 x 0.03, cache = 1 - 0.9 x 0.97^5
    sp = FFNSparsity(active_fraction=0.1, window=5, persistence=0.7)
    assert sp.turn_on_probability == pytest.approx(0.03)
    assert sp.load_fraction == pytest.approx(0.9 * 0.97**4 * 0.03)  # 0.02390
    assert sp.cache_fraction == pytest.approx(1 - 0.9 * 0.97**5)  # 0.2272
    indep = FFNSparsity(active_fraction=0.1, window=5)
    assert sp.load_fraction < indep.load_fraction
    assert sp.cache_fraction < indep.cache_fraction


def test_window_zero_loads_every_active_neuron() -> None:
    sp = FFNSparsity(active_fraction=0.2, window=0, persistence=0.5)
    assert sp.load_fraction == pytest.approx(0.2)
    assert sp.cache_fraction == pytest.approx(0.2)


def test_load_falls_with_the_window() -> None:
    loads = [
        FFNSparsity(active_fraction=0.1, window=k, persistence=0.6).load_fraction for k in range(8)
    ]
    assert all(a > b for a, b in itertools.pairwise(loads))


def test_from_trace_counts_turn_ons() -> None:
    # 4 tokens x 4 neurons; 5 of 16 active -> p = 5/16. Inactive (t, n) pairs for t = 0..2:
    # token 0 off {1,2,3}, token 1 off {2,3}, token 2 off {0,2,3}: 8 pairs, of which n1 turns
    # on at token 1 and n0 at token 3: q = 2/8 = 0.25, rho = 1 - 0.25 / (5/16) = 0.2
    trace = [
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 0, 0],
    ]
    sp = FFNSparsity.from_trace(trace, window=3)
    assert sp.active_fraction == pytest.approx(5 / 16)
    assert sp.persistence == pytest.approx(0.2)
    assert sp.window == 3


def test_bad_values_name_the_field() -> None:
    with pytest.raises(SpecError, match="persistence"):
        FFNSparsity(active_fraction=0.1, persistence=1.0)
    with pytest.raises(SpecError, match="trace"):
        FFNSparsity.from_trace([[0, 0]])


def test_persistence_is_recovered_from_a_loaded_fraction() -> None:
    from validation.cases.llm_flash import solve_persistence

    loaded = 0.9 * 0.97**4 * 0.03  # p = 0.1, rho = 0.7, k = 5 (above)
    assert solve_persistence(0.1, 5, loaded) == pytest.approx(0.7, abs=1e-9)
