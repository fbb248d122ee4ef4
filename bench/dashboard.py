"""How fast and how heavy the dashboard's search page is, on searches of 100 and 1,000 trials.

For each ``--trials`` count the script writes a done search of that many synthetic trials
into a fresh SQLite store (``seed_search`` of ``tests/server/dashboard_data.py``, through
the real store), starts ``sparsemod dashboard`` over it (read-only, no token,
loopback) and opens ``#/searches/ID`` in headless chromium (Debian's, through its
chromedriver; nothing is downloaded). The page counts as complete once ``#pareto-plot`` has
``data-points`` and ``#trials-table`` has rows; a script injected before the page's own
(``Page.addScriptToEvaluateOnNewDocument``) records ``performance.now()`` at that moment, so
every time is from the navigation's start. Per run it reads:

* first paint and first contentful paint (``performance.getEntriesByType('paint')``);
* the time until the page is complete, with a cold cache (a new browser profile) and on a
  warm reload (the plotly bundle is served ``immutable``, so it comes from the cache);
* the page's weight: ``transferSize`` (bytes on the wire, gzip included) and
  ``decodedBodySize`` summed over the navigation and the resources fetched until complete,
  the number of requests, and the share of ``/api/v1`` in both.

Before the first load the script fetches the page and the bundle once, unmeasured but for
the bundle's own time: the server gzips the bundle on its first request and keeps it. Each
figure is the median of ``--repeats`` runs. The server side is timed with httpx
(median of 5; the page loads came first): ``GET /searches/ID/trials?limit=500`` (every
page), ``/searches/ID/hypervolume`` and ``/searches/ID``. Screenshots of the search page and
of a Pareto member's trial page go to ``results/dashboard/search_<n>.png`` and
``trial_<n>.png``, with the number of distinct colours in each (a blank page has a handful).

    python bench/dashboard.py                       # 100 and 1,000 trials, 3 repeats
    python bench/dashboard.py --trials 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "dashboard"
TIMEOUT_S = 60.0
ENTRY = "import sys; from sparsemod.cli import main; sys.exit(main())"
CHROME_ARGS = "--headless=new --no-sandbox --disable-dev-shm-usage --window-size=1400,1100"

# Runs before the page's scripts in every document of the tab: stamps the moment the search
# page is complete (the front drawn and the table filled).
STAMP_JS = """
(() => {
  const done = () => {
    const plot = document.getElementById("pareto-plot");
    return plot && plot.dataset.points !== undefined &&
      document.querySelector("#trials-table tbody tr") !== null;
  };
  const observer = new MutationObserver(() => {
    if (window.__complete === undefined && done()) {
      window.__complete = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, {childList: true, subtree: true, attributes: true,
                              attributeFilter: ["data-points"]});
})();
"""
READ_JS = """
const end = window.__complete;
const paint = Object.fromEntries(
  performance.getEntriesByType("paint").map((e) => [e.name, e.startTime]));
const entries = performance.getEntriesByType("navigation").concat(
  performance.getEntriesByType("resource").filter((e) => e.startTime <= end));
return {complete: end, fp: paint["first-paint"], fcp: paint["first-contentful-paint"],
        entries: entries.map((e) => ({url: e.name, transfer: e.transferSize,
                                      decoded: e.decodedBodySize}))};
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(tmp: Path, n: int) -> tuple[str, int]:
    """A store in ``tmp`` with one done search of ``n`` trials: its URL and the search's id."""
    sys.path.insert(0, str(REPO))
    from sparsemod.store import Store
    from tests.server.dashboard_data import seed_search

    url = f"sqlite:///{tmp / f'dashboard_{n}.db'}"
    store = Store(url)
    try:
        return url, seed_search(store, n)
    finally:
        store.close()


def start_dashboard(url: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    """``sparsemod dashboard`` over ``url`` on a free port, once it answers /health."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSEMOD_")}
    # The ``sparsemod`` console script's entry point: ``python -m sparsemod.cli`` runs nothing
    # (the module has no ``__main__`` guard).
    cmd = [sys.executable, "-c", ENTRY, "dashboard", "--database", url]
    log = open(tmp / f"dashboard_{port}.log", "w")  # noqa: SIM115 (lives as long as the child)
    cmd += ["--root", str(tmp), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard ended ({proc.returncode}); see {log.name}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"dashboard did not answer in {TIMEOUT_S:.0f} s; see {log.name}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the CLI stops its uvicorn child), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def browser() -> webdriver.Chrome:
    """Headless chromium with a fresh profile (so a cold cache) and the stamp script."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in CHROME_ARGS.split():
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": STAMP_JS})
    return driver


def wait_complete(driver: webdriver.Chrome) -> dict[str, float]:
    """Wait for the stamp, let late resource entries land, and read the figures."""
    WebDriverWait(driver, TIMEOUT_S, 0.05).until(
        lambda d: d.execute_script("return window.__complete !== undefined")
    )
    time.sleep(0.3)
    raw = driver.execute_script(READ_JS)
    every, api = raw["entries"], [e for e in raw["entries"] if "/api/v1/" in e["url"]]
    fig = {k: raw[k] for k in ("fp", "fcp", "complete")}
    for prefix, entries in (("", every), ("api_", api)):
        fig[prefix + "requests"] = len(entries)
        fig[prefix + "transfer"] = sum(e["transfer"] for e in entries)
        fig[prefix + "decoded"] = sum(e["decoded"] for e in entries)
    return fig


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def warm_server(base: str) -> float:
    """Fetch the page and its plotly bundle once (the server gzips the bundle on its first
    request and keeps it), so no measured load pays for that; returns that first fetch's ms."""
    page = httpx.get(f"{base}/", timeout=TIMEOUT_S).text
    bundle = re.search(r"/static/plotly-[^\"]+\.min\.js", page)
    if bundle is None:
        raise RuntimeError("the page names no plotly bundle")
    t0 = time.perf_counter()
    headers = {"Accept-Encoding": "gzip"}
    httpx.get(base + bundle.group(0), headers=headers, timeout=TIMEOUT_S).raise_for_status()
    return (time.perf_counter() - t0) * 1e3


def server_times(base: str, sid: int, n: int, repeats: int = 5) -> dict[str, float]:
    """Median wall time (ms) of the search page's API reads (the page loads warmed them)."""
    paths = {f"trials?limit=500&offset={o}": f"/searches/{sid}/trials?limit=500&offset={o}"
             for o in range(0, max(n, 1), 500)}  # fmt: skip
    paths |= {"hypervolume": f"/searches/{sid}/hypervolume", "searches/ID": f"/searches/{sid}"}
    out = {}
    with httpx.Client(base_url=f"{base}/api/v1", timeout=TIMEOUT_S) as client:
        for name, path in paths.items():
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - t0) * 1e3)
            out[name] = statistics.median(times)
    return out


def full_screenshot(driver: webdriver.Chrome, path: Path) -> int:
    """The whole page as PNG at ``path``; returns its number of distinct colours."""
    time.sleep(1.0)  # plotly's transitions and fonts
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        return len(rgb.getcolors(rgb.width * rgb.height) or [])


def browse(base: str, sid: int, n: int, repeats: int) -> dict[str, Any]:
    """Per repeat a new browser: a cold load of the search page, then a warm reload; the
    last browser then takes the screenshots (the search page, a Pareto member's page)."""
    pareto = httpx.get(f"{base}/api/v1/searches/{sid}/pareto", timeout=TIMEOUT_S).json()
    trial = pareto["data"][0]["id"]
    OUT.mkdir(parents=True, exist_ok=True)
    search_png, trial_png = OUT / f"search_{n}.png", OUT / f"trial_{n}.png"
    cold, warm = [], []
    for i in range(repeats):
        driver = browser()
        try:
            driver.get(f"{base}/#/searches/{sid}")
            cold.append(wait_complete(driver))
            driver.refresh()
            warm.append(wait_complete(driver))
            if i < repeats - 1:
                continue
            search_colours = full_screenshot(driver, search_png)
            driver.get(f"{base}/#/trials/{trial}")
            WebDriverWait(driver, TIMEOUT_S, 0.05).until(
                lambda d: d.execute_script(
                    "return !!document.querySelector('#objectives-table') && "
                    "!!document.querySelector('#loss-plot .main-svg')"
                )
            )
            trial_colours = full_screenshot(driver, trial_png)
        finally:
            driver.quit()
    fig: dict[str, Any] = {k: median(cold, k) for k in cold[0]}
    fig |= {"warm_complete": median(warm, "complete"), "warm_transfer": median(warm, "transfer")}
    return fig | {"search_png": search_png, "trial_png": trial_png, "trial_id": trial,
                  "search_colours": search_colours, "trial_colours": trial_colours}  # fmt: skip


def bench(n: int, repeats: int) -> dict[str, Any]:
    """Every figure for a search of ``n`` trials."""
    with tempfile.TemporaryDirectory(prefix="sparsemod-dashboard-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        url, sid = seed(tmp, n)
        print(f"n={n}: seeded search {sid} in {time.perf_counter() - t0:.1f} s", flush=True)
        proc, base = start_dashboard(url, tmp)
        try:
            first_bundle = warm_server(base)
            fig = browse(base, sid, n, repeats)
            server = server_times(base, sid, n)
        finally:
            stop(proc)
    print(f"n={n}: complete in {fig['complete']:.0f} ms cold, {fig['warm_complete']:.0f} ms warm")
    return fig | {f"server {k}": v for k, v in server.items()} | {"first_bundle": first_bundle}


# (label, key, unit) of the table's rows; the server's come between API and colours.
ROWS = [
    ("first paint", "fp", "ms"),
    ("first contentful paint", "fcp", "ms"),
    ("complete, cold cache", "complete", "ms"),
    ("complete, warm reload", "warm_complete", "ms"),
    ("transferred, cold", "transfer", "KiB"),
    ("decoded, cold", "decoded", "KiB"),
    ("transferred, warm reload", "warm_transfer", "KiB"),
    ("requests", "requests", ""),
    ("API requests", "api_requests", ""),
    ("API transferred", "api_transfer", "KiB"),
    ("API decoded", "api_decoded", "KiB"),
]
TAIL = [
    ("server: first bundle request (gzip)", "first_bundle", "ms"),
    ("colours, search screenshot", "search_colours", ""),
    ("colours, trial screenshot", "trial_colours", ""),
]


def table(figures: dict[int, dict[str, Any]], repeats: int) -> str:
    """The markdown table: one row per figure, one column per trial count."""
    ns = list(figures)
    server = list(dict.fromkeys(k for f in figures.values() for k in f if k.startswith("server ")))
    rows = ROWS + [(k.replace("server ", "server: "), k, "ms") for k in server] + TAIL
    head = f"| figure (median of {repeats}; server: of 5) | " + " | ".join(
        f"{n} trials" for n in ns
    )
    lines = [head + " |", "|---|" + "---:|" * len(ns)]
    for label, key, unit in rows:
        cells = []
        for n in ns:
            value = figures[n].get(key)
            scale, digits = (1024, 0) if unit == "KiB" else (1, int(key.startswith("server")))
            cells.append("–" if value is None else f"{value / scale:,.{digits}f} {unit}".strip())
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="100,1000", help="comma-separated trial counts")
    parser.add_argument("--repeats", type=int, default=3, help="page loads per figure")
    args = parser.parse_args()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser
    figures = {n: bench(n, args.repeats) for n in map(int, args.trials.split(","))}
    print()
    print(table(figures, args.repeats))
    for n, fig in figures.items():
        print(f"n={n}: {fig['search_png']}, {fig['trial_png']} (trial {fig['trial_id']})")


if __name__ == "__main__":
    main()
