"""Progress on long work (issue 16): a hook passed explicitly into ``simulate`` reports
groups of ops as they finish; the CLI draws it (and the stages) only on a terminal,
never with ``--quiet``; the hook never changes a result."""

from __future__ import annotations

import io
import json
import sys

import pytest

from hw_models import load_system
from memsim import simulate
from memsim.cli.main import main
from memsim.engine.executor import prepare_event
from memsim.simulate import _make_plan
from workloads import generate, load_model

SMALL = ["run", "--prompt", "16", "--gen", "2", "--batch", "1"]


class FakeTTY(io.StringIO):
    """A stderr that says it is a terminal (what tqdm checks)."""

    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def _graph():  # type: ignore[no-untyped-def]
    return generate(load_model("llama2_7b"), batch=1, prompt_len=16, gen_len=3)


@pytest.mark.parametrize("fidelity", ["event", "analytic"])
def test_the_hook_sees_every_group_and_changes_nothing(fidelity: str) -> None:
    calls: list[tuple[int, int]] = []
    with_hook = simulate(
        "h100_sxm", _graph(), fidelity=fidelity, progress=lambda d, t: calls.append((d, t))
    )
    without = simulate("h100_sxm", _graph(), fidelity=fidelity)
    assert calls, "no progress reported"
    total = calls[-1][1]
    assert calls[-1] == (total, total) and total > 0
    done = [d for d, _ in calls]
    assert done == sorted(done) and all(t == total for _, t in calls)
    assert len(calls) <= 202  # about 200 updates at most: cheap for the caller
    a = json.dumps(with_hook.summary(), sort_keys=True, default=str)
    assert a == json.dumps(without.summary(), sort_keys=True, default=str)


def test_the_event_engine_reports_each_group_once() -> None:
    system = load_system("h100_sxm")
    plan, _ = _make_plan(system, _graph(), None, None, None)
    count = [0]
    env, finish = prepare_event(plan, on_group_done=lambda: count.__setitem__(0, count[0] + 1))
    env.run()
    finish()
    assert count[0] == plan.n_groups


def _run_cli(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, *extra: str) -> str:
    monkeypatch.setattr(sys, "stderr", stream)
    assert main([*SMALL, "--fidelity", "event", *extra]) == 0
    return stream.getvalue()


def test_cli_shows_op_progress_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _run_cli(monkeypatch, FakeTTY())
    assert "simulating" in shown and "op groups" in shown
    assert _run_cli(monkeypatch, FakeTTY(), "--quiet") == ""
    assert _run_cli(monkeypatch, Pipe()) == ""
    capsys.readouterr()


def test_serve_and_sweep_are_quiet_with_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from tests.explore.spaces import small_decode

    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(["serve", "--requests", "20"]) == 0
    assert "it/s" in tty.getvalue() or "%" in tty.getvalue()  # tqdm drew a bar
    quiet = FakeTTY()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["serve", "--requests", "20", "--quiet"]) == 0
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump(small_decode()))
    store = str(tmp_path / "s.db")
    assert main(["sweep", str(space), "--workers", "1", "--store", store, "--quiet"]) == 0
    assert quiet.getvalue().count("\r") == 0
    capsys.readouterr()


def test_dram_shows_its_stage_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dram", "--device", "ddr4_3200", "--pattern", "random", "--requests", "2000"]
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(argv) == 0
    assert "simulating 2000 requests" in tty.getvalue()
    quiet = FakeTTY()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main([*argv, "--quiet"]) == 0
    assert quiet.getvalue() == ""
    capsys.readouterr()
