"""`mtrec ui` against a registry of real runs, driven by a real headless browser.

The module builds its registry once: `mtrec run` of two quick recipes (sasrec with 2 epochs,
syncrec with 1) and a run that fails after it started (sasrec with a hidden size the heads do
not divide).  Then it starts `mtrec ui` on a free loopback port and drives the pages with
Chromium (Debian's `chromium` + `chromium-driver`, through Selenium).  The browser tests skip,
saying why, only when the browser cannot start; `.ci/run` installs it.

Set MTREC_UI_SCREENSHOTS=docs/images to also save a screenshot of each page there.
"""

from __future__ import annotations

import datetime as dt
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import event, update

from mtrec.registry import open_registry
from mtrec.registry.models import Run

# Real runs built once for the module and a headless browser: in `make test`, not `make test-fast`.
pytestmark = pytest.mark.slow

pytest.importorskip("starlette", reason="mtrec ui needs the 'ui' extra: pip install -e '.[ui]'")

SCREENSHOTS = os.environ.get("MTREC_UI_SCREENSHOTS", "").strip()
TINY = ["--quick", "--no-progress", "--set", "evaluation.valid_max_users=50"]
BROWSER_HINT = "install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"


def _mtrec(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtrec", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _run_id(out: str) -> str:
    return out.split("\nrun ")[1].split()[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A registry with real runs: {url, env, sasrec, syncrec, failed}."""
    root = tmp_path_factory.mktemp("ui")
    env = {**os.environ, "MTREC_HOME": str(root / "home"), "MTREC_CACHE_DIR": str(root / "cache")}
    env.pop("MTREC_REGISTRY_URL", None)
    url = f"sqlite:///{root / 'registry.db'}"
    reg = ["--registry", url]
    out = {"url": url, "env": env}
    done = _mtrec(["run", "--plugin", "sasrec", *TINY, *reg, "--name", "sasrec-tiny", "--set", "training.epochs=2",
                   "--set", "encoder.params.hidden=16"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    out["sasrec"] = _run_id(done.stdout)
    done = _mtrec(["run", "--plugin", "syncrec", *TINY, *reg, "--name", "syncrec-tiny",
                   "--set", "training.epochs=1"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    out["syncrec"] = _run_id(done.stdout)
    failed = _mtrec(["run", "--plugin", "sasrec", *TINY, *reg, "--name", "broken", "--set", "training.epochs=1",
                     "--set", "encoder.params.hidden=15"], env)
    assert failed.returncode != 0
    tagged = _mtrec(["runs", "tag", out["sasrec"], "baseline", *reg], env)
    assert tagged.returncode == 0, tagged.stderr
    with open_registry(url) as r:
        (broken,) = r.list_runs(status="failed")
    out["failed"] = broken["id"]
    return out


@pytest.fixture(scope="module")
def server(world):
    """`mtrec ui --port 0` (a free loopback port); yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "mtrec", "ui", "--registry", world["url"], "--port", "0"],
                            env=world["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                break
        assert "http://127.0.0.1:" in line, f"mtrec ui did not start: {line!r} {proc.poll()}"
        base = line.strip().split(" at ", 1)[1].rstrip("/")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("selenium", reason="the browser tests need selenium: pip install -e '.[test]'")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or next(
        (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p)), None)
    if not binary or not driver_path:
        pytest.skip(f"no headless browser: chromium={binary}, chromedriver={driver_path}; {BROWSER_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium ({binary}, {driver_path}) could not start: {exc.msg}; {BROWSER_HINT}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _screenshot(driver, name: str) -> None:
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 20, 600), 2600))
    time.sleep(0.3)
    driver.save_screenshot(str(folder / name))
    driver.set_window_size(1400, 1000)


def _rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.get_attribute("data-run-id") for tr in driver.find_elements(By.CSS_SELECTOR, "#runs-table tr.run")]


# --------------------------------------------------------------------------- browser


def test_runs_table_lists_the_runs_and_a_filter_narrows_it(world, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server + "/")
    assert set(_rows(browser)) == {world["sasrec"], world["syncrec"], world["failed"]}
    assert _rows(browser)[0] == world["failed"]  # newest first
    failed_row = browser.find_element(By.CSS_SELECTOR, f'tr[data-run-id="{world["failed"]}"]')
    assert "failed" in failed_row.text and "broken" in failed_row.text
    sasrec_row = browser.find_element(By.CSS_SELECTOR, f'tr[data-run-id="{world["sasrec"]}"]')
    assert "baseline" in sasrec_row.text and "finished" in sasrec_row.text
    assert "0.0" in sasrec_row.find_elements(By.CSS_SELECTOR, "td.num")[-1].text  # test ndcg@10 average
    _screenshot(browser, "ui-runs.png")

    Select(browser.find_element(By.ID, "f-recipe")).select_by_value("syncrec")
    browser.find_element(By.ID, "f-apply").click()
    WebDriverWait(browser, 20).until(expected_conditions.url_contains("recipe=syncrec"))  # a form submit
    assert _rows(browser) == [world["syncrec"]]

    browser.get(server + "/?status=failed")
    assert _rows(browser) == [world["failed"]]
    browser.get(server + "/?tag=baseline")
    assert _rows(browser) == [world["sasrec"]]
    browser.get(server + "/?sort=ndcg&order=desc")  # the failed run has no test metric: last
    assert _rows(browser)[-1] == world["failed"]


def test_run_page_shows_a_learning_curve_point_per_epoch(world, server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/runs/{world['sasrec']}")
    assert browser.find_element(By.ID, "run-id").text == world["sasrec"]
    stages = browser.find_elements(By.CSS_SELECTOR, "#stage-timeline tbody tr")
    assert [s.get_attribute("data-stage") for s in stages] == ["single:Scientific", "single:Arts", "single:Office"]
    assert all(s.find_elements(By.TAG_NAME, "td")[1].text == "2" for s in stages)  # epochs
    for kind in ("valid", "loss"):  # the run folder is on this machine: training loss too
        charts = browser.find_elements(By.CSS_SELECTOR, f"svg.curve.{kind}")
        assert len(charts) == 3, kind
        for chart in charts:
            assert len(chart.find_elements(By.CSS_SELECTOR, "g.series circle.pt")) == 2, kind
    assert "recall@10" in browser.find_element(By.ID, "test-metrics").text
    components = browser.find_element(By.ID, "components").text
    assert "sasrec" in components and "0.1.0" in components
    artifacts = browser.find_element(By.ID, "artifacts").text
    assert "models" in artifacts and "identifier" in artifacts
    _screenshot(browser, "ui-run.png")

    browser.get(f"{server}/runs/{world['syncrec']}")
    (chart,) = browser.find_elements(By.CSS_SELECTOR, "svg.curve.valid")
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.pt")) == 1  # one epoch

    browser.get(f"{server}/runs/{world['failed']}")
    assert "not divisible" in browser.find_element(By.CSS_SELECTOR, ".error-box").text


def test_compare_page_shows_bars_curves_and_the_differing_config_keys(world, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    for rid in (world["sasrec"], world["syncrec"]):
        browser.find_element(By.CSS_SELECTOR, f'input[name="ids"][value="{rid}"]').click()
    browser.find_element(By.ID, "compare-button").click()
    # the click submits a form: wait for the navigation rather than racing it
    WebDriverWait(browser, 20).until(expected_conditions.url_contains("/compare"))
    legend = [tr.get_attribute("data-run-id") for tr in browser.find_elements(By.CSS_SELECTOR, "#compare-runs tbody tr")]
    assert set(legend) == {world["sasrec"], world["syncrec"]}
    keys = {tr.get_attribute("data-key") for tr in browser.find_elements(By.CSS_SELECTOR, "#config-diff-table tr[data-key]")}
    assert {"encoder.name", "training.epochs"} <= keys
    epochs_row = browser.find_element(By.CSS_SELECTOR, '#config-diff-table tr[data-key="training.epochs"]')
    assert sorted(epochs_row.text.split()[1:]) == ["1", "2"]
    bars = browser.find_elements(By.CSS_SELECTOR, "#compare-metrics svg.bars")
    assert "ndcg@10" in {b.get_attribute("data-metric") for b in bars}
    ndcg = next(b for b in bars if b.get_attribute("data-metric") == "ndcg@10")
    assert len(ndcg.find_elements(By.CSS_SELECTOR, "rect.bar")) == 2 * 4  # 2 runs x (3 domains + average)
    series = browser.find_elements(By.CSS_SELECTOR, "#compare-curves g.series")
    assert len(series) == 3 + 1  # sasrec's three stages, syncrec's one
    _screenshot(browser, "ui-compare.png")


def test_an_unknown_run_id_is_a_404_page_naming_it(server, browser):
    from selenium.webdriver.common.by import By

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server}/runs/no-such-run", timeout=30)
    assert info.value.code == 404
    assert "no-such-run" in info.value.read().decode()
    browser.get(f"{server}/runs/no-such-run")
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("data-code") == "404" and "no-such-run" in error.text
    with pytest.raises(urllib.error.HTTPError) as info:  # compare names the unknown one too
        urllib.request.urlopen(f"{server}/compare?ids=no-such-run&ids=other-one", timeout=30)
    assert info.value.code == 404 and "no-such-run" in info.value.read().decode()


# ------------------------------------------------------------------------ no browser


def test_pages_answer_over_http_and_nothing_writes(world, server):
    with urllib.request.urlopen(f"{server}/static/style.css", timeout=30) as r:
        assert r.status == 200 and b"svg.chart" in r.read()
    with urllib.request.urlopen(f"{server}/runs/{world['sasrec'][:17]}", timeout=30) as r:  # a prefix redirects
        assert r.url.endswith(f"/runs/{world['sasrec']}")
        html = r.read().decode()
    assert "cdn" not in html.lower() and "<script" not in html  # nothing fetched from elsewhere
    request = urllib.request.Request(f"{server}/runs/{world['sasrec']}", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 405
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server}/compare?ids={world['sasrec']}", timeout=30)
    assert info.value.code == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_or_missing_registry_is_one_message_and_exit_2(tmp_path):
    env = {**os.environ, "MTREC_HOME": str(tmp_path / "home")}
    env.pop("MTREC_REGISTRY_URL", None)
    closed = f"postgresql+psycopg://mtrec@127.0.0.1:{_free_port()}/mtrec?connect_timeout=5"
    missing = str(tmp_path / "nowhere" / "registry.db")
    for url, words in ((closed, "127.0.0.1"), (missing, "no experiment registry")):
        done = _mtrec(["ui", "--registry", url, "--port", "0"], env, timeout=120)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert not Path(missing).exists()  # the UI creates no database


def test_a_port_in_use_is_one_message_and_exit_2(world):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _mtrec(["ui", "--registry", world["url"], "--port", str(port)], world["env"], timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: cannot listen on 127.0.0.1:") and "--port" in done.stderr


def test_runs_page_queries_do_not_grow_with_runs_and_stale_rows_are_marked(registry_url):
    """Hundreds of runs (SQLite and PostgreSQL): a page is a fixed number of queries, sorting and
    filtering happen in the database, old `running` rows are possibly stale."""
    from mtrec.registry.ui.queries import RunFilter, UIQueries

    reg = open_registry(registry_url)
    kwargs = dict(config={"training": {"epochs": 1}}, config_hash="h", seed=0, device="cpu", dataset_name="d",
                  dataset_spec={}, dataset_fingerprint="f", components=[])
    ids = []
    for i in range(240):
        rid = reg.start_run(name=f"n{i}", recipe="a" if i % 2 else "b", tags=["even"] if i % 2 == 0 else [], **kwargs)
        reg.log_metrics(rid, [{"stage": "final", "split": "test", "domain": "average", "name": "ndcg", "k": 10,
                               "value": i / 1000}])
        if i > 1:
            reg.set_status(rid, "finished")
        ids.append(rid)
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    with reg._write() as s, s.begin():  # the oldest running run started long ago
        s.execute(update(Run).where(Run.id == ids[0]).values(started_at=old, created_at=old))

    statements: list[str] = []
    event.listen(reg._engine, "before_cursor_execute",
                 lambda *a: statements.append(a[2]) if a[2].lstrip().upper().startswith("SELECT") else None)
    q = UIQueries(reg)
    page = q.runs_page(RunFilter(), sort="ndcg", desc=True, page=2, per_page=50)
    assert page.total == 240 and page.pages == 5 and len(page.rows) == 50
    assert [r.headline for r in page.rows] == sorted((r.headline for r in page.rows), reverse=True)
    assert page.rows[0].headline == pytest.approx(0.189)
    assert len(statements) <= 4, statements  # count all, count matching, the page (headline joined), artifacts
    statements.clear()
    page = q.runs_page(RunFilter(tag="even", status="running"), page=1, per_page=25)
    assert [r.id for r in page.rows] == [ids[0]] and page.rows[0].stale
    assert len(statements) <= 4, statements
    page = q.runs_page(RunFilter(recipe="a", status="running"))
    assert [r.id for r in page.rows] == [ids[1]] and not page.rows[0].stale  # started just now
    statements.clear()
    q.filter_options()
    assert len(statements) == 3, statements
    assert q.filter_options().tags == ["even"]
    assert q.filter_options().recipes == ["a", "b"]
    walls = [r.wall_s for r in q.runs_page(RunFilter(status="finished"), sort="wall", desc=False).rows]
    assert all(b >= a - 0.002 for a, b in zip(walls, walls[1:]))  # SQLite's julianday(): millisecond steps
    found = q.runs_page(RunFilter(q="n23"), sort="id", desc=False)  # id/name text: n23, n230..n239
    assert found.total == 11 and [r.id for r in found.rows] == sorted(r.id for r in found.rows)
    assert q.runs_page(RunFilter(q="%")).total == 0  # LIKE wildcards are plain text
    reg.close()


def test_serves_either_backend(registry_url, tmp_path):
    """The same app over SQLite and PostgreSQL: runs table, a run, a comparison, a 404 (over HTTP)."""
    with open_registry(registry_url) as reg:
        ids = []
        for i, recipe in enumerate(("gmc", "sasrec")):
            rid = reg.start_run(name=f"r{i}", recipe=recipe, config={"training": {"epochs": 2 + i}}, config_hash="h",
                                seed=0, device="cpu", dataset_name="tiny", dataset_spec={}, dataset_fingerprint="f",
                                components=[{"kind": "encoder", "name": recipe}], tags=["t"])
            reg.log_metrics(rid, [{"stage": "joint", "split": "valid", "domain": "average", "name": "ndcg", "k": 10,
                                   "value": 0.1 * e, "step": e} for e in range(1, 3 + i)]
                            + [{"stage": "final", "split": "test", "domain": "average", "name": "ndcg", "k": 10,
                                "value": 0.5}])
            reg.set_status(rid, "finished")
            ids.append(rid)
    env = {**os.environ, "MTREC_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "mtrec", "ui", "--registry", registry_url, "--port", "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline() if ready else ""
        assert " at http://127.0.0.1:" in line, (line, proc.poll())
        base = line.strip().split(" at ", 1)[1].rstrip("/")
        assert "***" in line or "@" not in line  # the password is masked
        with urllib.request.urlopen(f"{base}/?tag=t&sort=ndcg", timeout=30) as r:
            html = r.read().decode()
        assert all(f'data-run-id="{rid}"' in html for rid in ids)
        with urllib.request.urlopen(f"{base}/runs/{ids[1]}", timeout=30) as r:
            html = r.read().decode()
        assert html.count('class="pt"') == 3  # three epochs of validation
        with urllib.request.urlopen(f"{base}/compare?ids={ids[0]},{ids[1]}", timeout=30) as r:
            assert 'data-key="training.epochs"' in r.read().decode()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/runs/missing-run", timeout=30)
        assert info.value.code == 404 and "missing-run" in info.value.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
