"""The dashboard in a real browser: Debian's chromium, driven by selenium through
chromedriver, against a real uvicorn over a real SQLite file.

What is checked, each against the store:
- without the token no trial data reaches the page, and a wrong token is refused;
- the Pareto plot draws as many points as the search has Pareto members (counted here);
- the trials table pages, sorts and filters; failed trials and the lineage are listed;
- clicking a point opens its trial: params, objectives, history plots;
- a screenshot is not blank;
- while a real search runs, the page shows each trial within 5 s of its completion;
- ``sparsemod dashboard`` serves a store read-only, without a token on loopback.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sparsemod.store import Store
from tests.server.dashboard_data import OBJECTIVES, pareto_indices, seed_search

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "test-token-0123456789"  # conftest's
N = 120
PAGE = 50  # rows of the page's table
REPO = Path(__file__).resolve().parents[2]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def chrome() -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            pytest.fail(
                f"{path} is missing: the dashboard tests need Debian's browser "
                "(apt-get install chromium chromium-driver, see README's Tests)"
            )
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1100")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def seeded_live(live) -> tuple[str, Store, int]:
    """The module's uvicorn, with a search of N trials in its store."""
    store = Store(live.env["SPARSEMOD_DATABASE_URL"])
    return live.url, store, seed_search(store, N, seed=7)


def wait(driver, condition, timeout: float = 20.0, what: str = ""):
    from selenium.common.exceptions import StaleElementReferenceException

    # The page redraws parts of itself: an element read while it is replaced is read again.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    ).until(
        lambda d: condition(d), message=what
    )


def click(driver, css: str) -> None:
    """Click what ``css`` finds, again if the page redrew it in between."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt(d) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:
            return False
        return True

    wait(driver, attempt, what=f"click {css}")


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def sign_in(driver, url: str) -> None:
    driver.get(url + "/#/")
    if js(driver, "return sessionStorage.getItem('sparsemod-token')") != TOKEN:
        wait(driver, lambda d: d.find_elements(By.ID, "login-form"), what="login form")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#searches-table tbody tr"))


def no_script_errors(driver) -> None:
    severe = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "401" not in e["message"]
    ]
    assert severe == [], severe


def open_search(driver, url: str, sid: int) -> None:
    driver.get(f"{url}/#/searches/{sid}")
    wait(
        driver,
        lambda d: (
            js(d, "return document.getElementById('pareto-plot')?.dataset.points")
            and d.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")
        ),
        what="search page",
    )


def test_without_the_token_no_data_reaches_the_page(chrome, seeded_live) -> None:
    url, store, sid = seeded_live
    chrome.delete_all_cookies()
    chrome.get(url + "/")
    js(chrome, "sessionStorage.clear()")
    chrome.get(f"{url}/#/searches/{sid}")
    chrome.refresh()
    wait(chrome, lambda d: d.find_elements(By.ID, "login-form"), what="login form")
    trial = store.list_trials(sid, "completed")[0]
    secret = [f"lr = {trial.params['lr']}", str(trial.params["lr"]), "many", "BuildError"]
    for text in secret:
        assert text not in chrome.page_source, text
    # Every API answer the page got was a refusal (health and the page's files need none).
    answers = js(
        chrome,
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/v1/') && !e.name.endsWith('/health'))"
        ".map(e => [e.name, e.responseStatus])",
    )
    assert answers and all(status == 401 for _, status in answers), answers

    chrome.find_element(By.ID, "token").send_keys("not-the-token")
    chrome.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait(chrome, lambda d: d.find_element(By.ID, "login-error").text, what="refusal")
    assert "refused" in chrome.find_element(By.ID, "login-error").text
    assert js(chrome, "return sessionStorage.getItem('sparsemod-token')") is None
    for text in secret:
        assert text not in chrome.page_source, text

    field = chrome.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN)
    chrome.find_element(By.CSS_SELECTOR, "#login-form button").click()
    # Signed in, the page shows the view that was asked for: the search.
    wait(chrome, lambda d: d.find_elements(By.ID, "search-progress"), what="the search")
    assert chrome.find_element(By.ID, "search-progress").text == f"{N} / {N}"
    assert "many" in chrome.find_element(By.CSS_SELECTOR, "#search-head h1").text


def test_the_front_and_the_table_match_the_store(chrome, seeded_live) -> None:
    url, store, sid = seeded_live
    sign_in(chrome, url)
    open_search(chrome, url, sid)
    trials = store.list_trials(sid)
    members = pareto_indices(store, sid)
    completed = [t for t in trials if t.status == "completed" and t.duplicate_of is None]
    failed = [t for t in trials if t.status == "failed"]
    drawn = js(
        chrome,
        "return [...document.querySelectorAll('#pareto-plot .scatterlayer .trace')]"
        ".map(t => t.querySelectorAll('path.point').length)",
    )
    assert drawn == [len(completed) - len(members), len(members)], drawn
    assert chrome.find_element(By.ID, "pareto-size").text == str(len(members))
    assert len(chrome.find_elements(By.CSS_SELECTOR, "#failed-list li")) == len(failed)
    hv_points = js(
        chrome,
        "return [...document.querySelectorAll('#hv-plot .scatterlayer .trace')]"
        ".map(t => t.querySelectorAll('path.point').length)",
    )
    assert sum(hv_points) == len(completed), hv_points  # one per completed, by phase

    # Lineage: every trial that is a morph's parent or a morph with a parent.
    parents = {t.parent_index for t in trials if t.parent_index is not None}
    morphs = {t.index for t in trials if t.parent_index is not None}
    items = chrome.find_elements(By.CSS_SELECTOR, "#lineage li")
    assert sorted(int(li.get_attribute("data-index")) for li in items) == sorted(parents | morphs)

    # The table: first page, count, paging.
    rows = chrome.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")
    assert len(rows) == PAGE
    assert chrome.find_element(By.ID, "trials-count").get_attribute("data-count") == str(N)
    click(chrome, "#next-page")
    wait(chrome, lambda d: "51–100" in d.find_element(By.ID, "trials-count").text)
    click(chrome, "#next-page")
    wait(chrome, lambda d: "101–120" in d.find_element(By.ID, "trials-count").text)
    assert len(chrome.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")) == N - 2 * PAGE

    # Sorted by size, by clicking its header.
    click(chrome, "th[data-sort='model_size_bytes']")
    smallest = min(
        completed + [t for t in trials if t.duplicate_of is not None],
        key=lambda t: (t.metrics["model_size_bytes"], t.index),
    )
    wait(
        chrome,
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#trials-table tbody tr").get_attribute("data-id")
            == str(smallest.id)
        ),
        what="sorted by size",
    )
    assert "1–50" in chrome.find_element(By.ID, "trials-count").text

    # Filtered to the failed trials.
    click(chrome, "#filter-status option[value='failed']")
    wait(
        chrome,
        lambda d: (
            d.find_element(By.ID, "trials-count").get_attribute("data-count") == str(len(failed))
        ),
    )
    shown = chrome.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")
    assert {int(r.get_attribute("data-id")) for r in shown} == {t.id for t in failed}
    no_script_errors(chrome)


def test_a_screenshot_of_the_search_page_is_not_blank(chrome, seeded_live, tmp_path) -> None:
    from PIL import Image

    url, _, sid = seeded_live
    sign_in(chrome, url)
    open_search(chrome, url, sid)
    path = tmp_path / "search.png"
    assert chrome.save_screenshot(str(path))
    image = Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200, len(colours)  # text, a colour scale, two plots
    # The Pareto plot's own region is drawn, not an empty box.
    box = js(
        chrome,
        "const r = document.getElementById('pareto-plot').getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom]",
    )
    ratio = js(chrome, "return window.devicePixelRatio")
    plot = image.crop(tuple(int(v * ratio) for v in box))
    assert len(plot.getcolors(maxcolors=1 << 20)) > 50


def test_clicking_a_point_opens_its_trial(chrome, seeded_live) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    url, store, sid = seeded_live
    sign_in(chrome, url)
    open_search(chrome, url, sid)
    point = chrome.find_elements(By.CSS_SELECTOR, "#pareto-plot .scatterlayer .trace")[1]
    target = point.find_elements(By.CSS_SELECTOR, "path.point")[0]
    ActionChains(chrome).move_to_element(target).pause(0.3).click().perform()
    wait(chrome, lambda d: d.current_url.split("#")[-1].startswith("/trials/"), what="navigation")
    trial = store.get_trial(int(chrome.current_url.rsplit("/", 1)[-1]))
    assert trial.search_id == sid and trial.index in pareto_indices(store, sid)
    wait(chrome, lambda d: d.find_elements(By.CSS_SELECTOR, "#loss-plot .scatterlayer"))
    params = chrome.find_elements(By.CSS_SELECTOR, "#params-table tr")
    assert len(params) == len(trial.params)
    cells = {
        r.find_elements(By.TAG_NAME, "td")[0].text: [
            c.text for c in r.find_elements(By.TAG_NAME, "td")
        ]
        for r in chrome.find_elements(By.CSS_SELECTOR, "#objectives-table tbody tr")
    }
    size = cells["model_size_bytes (B)"]
    want = f"{int(trial.metrics['model_size_bytes']):,}"
    assert size[1:] == [f"{int(trial.predicted['model_size_bytes']):,}", want]
    assert cells["error"][2] == f"{trial.metrics['error']:.4g}"
    losses = js(chrome, "return document.getElementById('loss-plot').data[0].y")
    assert losses == pytest.approx([2.0, 1.0, 2.0 / 3])
    stages = js(chrome, "return document.getElementById('sparsity-plot').data[0].y")
    assert stages == pytest.approx([0, 0, 0, 0.5, 0.5])
    assert chrome.find_elements(By.CSS_SELECTOR, ".downloads, .card p.muted")
    no_script_errors(chrome)


def test_a_model_downloads_with_the_token(chrome, seeded_live, tmp_path) -> None:
    url, store, sid = seeded_live
    trial = next(t for t in store.list_trials(sid) if t.has_model)
    sign_in(chrome, url)
    chrome.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    chrome.get(f"{url}/#/trials/{trial.id}")
    wait(chrome, lambda d: d.find_elements(By.CSS_SELECTOR, ".downloads button"))
    formats = [
        b.get_attribute("data-format")
        for b in chrome.find_elements(By.CSS_SELECTOR, ".downloads button[data-format]")
    ]
    assert formats == ["executorch", "onnx", "tflite"]
    click(chrome, ".downloads button:not([data-format])")
    path = tmp_path / f"trial_{trial.id}.pt"
    wait(chrome, lambda _: path.is_file() and path.stat().st_size > 0, what="the download")
    assert path.read_bytes() == store.get_model(trial.id).data
    # A stand-in model cannot be exported: the page says why, and stays.
    click(chrome, ".downloads button[data-format='onnx']")
    wait(chrome, lambda d: d.find_element(By.ID, "download-error").text, timeout=60)
    assert chrome.find_element(By.ID, "download-error").text.startswith(("422", "500", "503"))


def test_cancel_from_the_searches_page(chrome, seeded_live) -> None:
    url, store, _ = seeded_live
    running = store.create_search("to-cancel", "digits_cnn", {"r1": 2}, OBJECTIVES)
    store.set_search_status(running, "running")
    sign_in(chrome, url)
    chrome.find_element(By.CSS_SELECTOR, f"tr[data-id='{running}'] button.cancel").click()
    wait(chrome, lambda _: store.get_search(running).status == "cancelling", what="cancelled")
    wait(
        chrome,
        lambda d: "cancelling" in d.find_element(By.CSS_SELECTOR, f"tr[data-id='{running}']").text,
    )


@pytest.mark.slow
def test_the_page_shows_each_trial_within_5_s_of_its_completion(chrome, seeded_live, tmp_path):
    url, store, _ = seeded_live
    sign_in(chrome, url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSEMOD_")}
    env["SPARSEMOD_DATABASE_URL"] = store.url
    sets = {
        "name": "live-search",
        "problem": "digits_mlp",
        "root": str(tmp_path),
        "r1": 4,
        "r2": 0,
        "r3": 0,
        "batch_size": 1,
        "epochs1": 1,
        "morphisms": "false",
    }
    args = [f"--set=TRAIN.{k}={v}" for k, v in sets.items()]
    search = subprocess.Popen(
        [sys.executable, "main.py", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait(chrome, lambda _: store.find_search("live-search"), timeout=120, what="search row")
        sid = store.find_search("live-search").id
        chrome.get(f"{url}/#/searches/{sid}")
        wait(chrome, lambda d: d.find_elements(By.ID, "search-progress"))
        delays = []
        for k in range(1, 5):
            wait(
                chrome,
                lambda _, k=k: sum(t.status != "running" for t in store.list_trials(sid)) >= k,
                timeout=120,
                what=f"trial {k} done",
            )
            trial = sorted(
                (t for t in store.list_trials(sid) if t.finished_at is not None),
                key=lambda t: t.finished_at,
            )[k - 1]
            wait(
                chrome,
                lambda d, t=trial: d.find_elements(
                    By.CSS_SELECTOR, f"#trials-table tr[data-id='{t.id}'] td.status-{t.status}"
                ),
                timeout=8,
                what=f"trial {trial.index} on the page",
            )
            delays.append((datetime.now(UTC) - trial.finished_at).total_seconds())
        assert max(delays) <= 5.0, delays
        assert search.wait(timeout=180) == 0, search.stdout.read()[-3000:]
        wait(chrome, lambda d: d.find_element(By.ID, "search-status").text == "done")
        progress = chrome.find_element(By.ID, "search-progress").text
        assert progress == "4 / 4", progress
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()


def _dashboard(database: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SPARSEMOD_")}
    environ.update(env or {})
    return subprocess.Popen(
        [sys.executable, "main.py", "dashboard", "--database", database, *extra],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sparsemod_dashboard_serves_a_store_read_only(tmp_path, free_port) -> None:
    database = f"sqlite:///{tmp_path / 'local.db'}"
    with Store(database) as store:
        sid = seed_search(store, 12)
    proc = _dashboard(database, "--port", str(free_port))
    base = f"http://127.0.0.1:{free_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).json()["read_only"]:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert httpx.get(f"{base}/").status_code == 200
        got = httpx.get(f"{base}/api/v1/searches/{sid}").json()  # no token on loopback
        assert got["trials_done"] == 12
        r = httpx.post(f"{base}/api/v1/searches/{sid}/cancel")
        assert r.status_code == 403 and "read-only" in r.json()["detail"]
        r = httpx.post(f"{base}/api/v1/searches", json={"name": "x", "problem": "digits_cnn"})
        assert r.status_code == 403
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert f"dashboard of {database}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "not a loopback address; set SPARSEMOD_API_TOKEN"),
        (["--root", "/nonexistent-root"], "no store at"),
    ],
)
def test_sparsemod_dashboard_refuses(tmp_path, args, message) -> None:
    database = f"sqlite:///{tmp_path / 'local.db'}"
    Store(database).close()
    if "--root" in args:
        database = f"sqlite:///{tmp_path / 'missing.db'}"
    proc = _dashboard(database, *args)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2, out
    assert message in out and len(out.strip().splitlines()) == 1, out
