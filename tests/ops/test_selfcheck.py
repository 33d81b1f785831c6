"""lamfast selfcheck: parity with the twins and timings against plain torch."""
from __future__ import annotations

import torch

import lamfast
from lamfast import selfcheck
from lamfast.cli import main


class TestSelfcheck:
    """lamfast.selfcheck.run_selfcheck and lamfast selfcheck."""

    def test_every_op_agrees_and_is_timed(self):
        results = selfcheck.run_selfcheck(size=16, fold=4, min_run_time=0.01)
        assert [r.op for r in results] == ["blur_path", "path_accumulate", "kde_map", "lam_objective"]
        for r in results:
            assert r.ok, r
            assert (r.compiled is not None) == lamfast.ext_available()
            assert r.twin.median_s > 0 and r.baseline.median_s > 0
            assert (r.speedup is None) == (r.compiled is None)
            if r.speedup is not None:
                assert r.speedup == r.baseline.median_s / r.compiled.median_s
        report = selfcheck.format_report(results)
        assert len(report.splitlines()) == 1 + len(results)

    def test_a_wrong_kernel_is_reported(self, monkeypatch):
        real = selfcheck.op_contenders

        def broken(op, **data):
            compiled, baselines = real(op, **data)
            if op != "kde_map":
                return compiled, baselines
            return (lambda: compiled() + 0.5), baselines

        monkeypatch.setattr(selfcheck, "op_contenders", broken)
        monkeypatch.setattr(selfcheck, "has_compiled_kernel", lambda name, dev: True)
        results = {r.op: r for r in selfcheck.run_selfcheck(size=8, fold=2, min_run_time=0.01)}
        assert not results["kde_map"].ok and results["blur_path"].ok
        assert "MISMATCH" in selfcheck.format_report(list(results.values()))

    def test_the_best_baseline_is_the_fastest_one_that_agrees(self, monkeypatch):
        """A baseline faster than every other but wrong is never named the best; the fastest right one is."""
        real = selfcheck.op_contenders
        times = {}

        def contenders(op, **data):
            compiled, baselines = real(op, **data)
            (twin_name, twin), *_ = baselines.items()

            def wrong():
                out = twin()
                return tuple(t + 1.0 for t in out) if isinstance(out, tuple) else out + 1.0

            def right():
                return twin()

            times[wrong], times[right] = 1e-9, 2e-9
            return compiled, {twin_name: twin, "wrong but fast": wrong, "right and fast": right}

        monkeypatch.setattr(selfcheck, "op_contenders", contenders)
        monkeypatch.setattr(selfcheck, "measure", lambda fn, min_run_time=0.2: selfcheck.Timing(times.get(fn, 1.0), 0.0))
        results = selfcheck.run_selfcheck(size=8, fold=2, min_run_time=0.01)
        assert [r.best_baseline for r in results] == ["right and fast"] * len(results)

    def test_nan_where_the_twin_has_none_is_a_mismatch(self):
        a = torch.tensor([1.0, float("nan")])
        assert selfcheck._max_diff(a, torch.tensor([1.0, 2.0])) == float("inf")
        assert selfcheck._max_diff(a, a.clone()) == 0.0

    def test_cli_prints_the_table(self, capsys):
        assert main(["selfcheck", "--sizes", "8", "--fold", "2"]) == 0
        out = capsys.readouterr().out
        assert "best plain torch" in out and "lam_objective" in out and "interquartile" in out
