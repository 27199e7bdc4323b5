"""The HTML report and the PNG plot, end to end: a real (local) experiment, its report opened in
headless Chromium with the network cut (only the file itself may load), no JavaScript error,
every trial shown, the curves drawn; a screenshot is kept (``HPCTUNE_UPDATE_SCREENSHOT=1``
refreshes docs/report-screenshot.png).

Needs Debian's ``chromium`` (scripts/test.sh installs it) and ``playwright`` (the test extra):
outside CI a missing one skips, in CI it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.cli.main import main as cli_main
from hpctune.results.report.data import load_experiment
from hpctune.results.report.html import write_report
from tests.unit.test_hdf5 import make_experiment

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report-screenshot.png"


def needs(what: str, missing: bool) -> None:
    if missing:
        message = f"{what} is not installed (scripts/test.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def objective(config):
    for step in range(1, 9):
        tune.report({"loss": config["lr"] * 10 + 1.0 / step + config["layers"] * 0.01,
                     "val": {"acc": 1 - 1.0 / (step + config["layers"])}})


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPCTUNE_BACKEND", "local")
        grid = tune.Tuner(
            objective, param_space={"lr": tune.grid_search([0.001, 0.01, 0.05]), "layers": tune.choice([2, 4])},
            tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=2,
                                        scheduler=tune.schedulers.ASHAScheduler(max_t=8, grace_period=2)),
            run_config=tune.RunConfig(name="report-demo", storage_path=str(root), verbose=0)).fit()
    assert len(grid) == 6
    return grid


def test_the_report_opens_offline_without_errors_and_draws_every_trial(experiment, tmp_path):
    needs("playwright", not _importable("playwright"))
    needs(CHROMIUM, not Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    report = tmp_path / "report.html"
    assert cli_main(["report", experiment.experiment_path, "-o", str(report)]) == 0
    assert "<script src=" not in report.read_text()[:2000]  # the JavaScript is inline
    errors, blocked = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1300, "height": 1700})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def only_the_file(route):
            if route.request.url == report.as_uri():
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_file)
        page.goto(report.as_uri())
        page.wait_for_function("document.querySelectorAll('#curve-0 .scatterlayer .trace').length > 0")
        traces = page.eval_on_selector_all("#curve-0 .scatterlayer .trace", "e => e.length")
        lines = page.eval_on_selector_all("#curve-0 .scatterlayer path.js-line", "e => e.length")
        plots = page.eval_on_selector_all(".js-plotly-plot", "e => e.length")
        body = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "report.png"))
        browser.close()
    assert errors == [] and blocked == []
    assert traces == 1 + 5 and lines >= 6  # all trials (one trace), the 5 best highlighted
    assert plots >= 6  # curves (loss, val/acc), parallel coordinates, scatter, stopping, Slurm
    for result in experiment:
        assert result.trial_id in body
    assert "What Slurm did" in body and "No PBT exploits" in body
    if os.environ.get("HPCTUNE_UPDATE_SCREENSHOT") == "1":
        shutil.copy(tmp_path / "report.png", SCREENSHOT)


def test_report_sections_for_pbt_preemptions_and_errors(tmp_path):
    """A synthetic experiment with a preempted trial, an error and a PBT exploit."""
    exp = make_experiment(tmp_path / "exp")
    html = write_report(load_experiment(exp.root), tmp_path / "r.html").read_text()
    assert "PBT exploits: donor checkpoint" in html and "took the checkpoint of" in html
    assert "preemptions and requeues</td><td>1</td>" in html
    assert "boom" in html and html.count("abc_0000") >= 6


def test_plot_writes_a_png(experiment, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert cli_main(["plot", experiment.experiment_path, "--metric", "val/acc", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli_main(["plot", experiment.experiment_path, "--metric", "nope", "-o", str(out)]) == 1
    assert "No trial reported a number for 'nope': choose one of loss, val/acc" in capsys.readouterr().err


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
