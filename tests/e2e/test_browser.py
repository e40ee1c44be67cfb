"""The app in a real browser: Debian chromium driven by Playwright, server on a loopback port.

The server is started the way users start it, ``python -m app`` (from a folder that is not
the repository, so only the launcher's settings apply). Opens every page of
``app.main.PAGES``, waits until the script is idle, checks that no exception is shown and that
the page's charts rendered, types a live query and sees results, and saves one screenshot per
page. Another test records every request the pages make and fails on any to a host other than
the app's own. Another opens a link carrying page state, checks the widgets and the sidebar's
link to this view (every setting written out), changes a widget, reopens the link, and sees a
bad link value named in a warning.

Without chromium or playwright these tests skip locally and fail in CI (``CI`` set); see
:mod:`e2e.browser_env`.

By default the app serves the tiny run pair of ``tests/conftest.py``. With
``DRGI_LAB_E2E_REPO_ROOTS=1`` it serves the repository's own ``checkpoints/`` and ``data/``
(the demo runs, after ``make app`` has exported them); ``DRGI_LAB_SCREENSHOTS=DIR`` keeps the
screenshots there (this is how ``docs/screenshots`` for the README are made).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .browser_env import CHROMIUM, decide, in_ci, missing_requirements, outside_requests
from .serving import wait_healthy

REPO = Path(__file__).resolve().parents[2]

ACTION, WHY = decide(missing_requirements(), in_ci())
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(ACTION == "skip", reason=WHY)]


@pytest.fixture(scope="session", autouse=True)
def _browser_requirements():
    """In CI a missing chromium or playwright fails every test here, before anything is built."""
    if ACTION == "fail":
        pytest.fail(WHY, pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def roots(request):
    if os.environ.get("DRGI_LAB_E2E_REPO_ROOTS") == "1":
        return REPO / "checkpoints", REPO / "data", "demo-base", "demo-drgi"
    pair = request.getfixturevalue("tiny_run_pair")
    return pair.checkpoints, pair.data, pair.base.name, pair.drgi.name


@pytest.fixture(scope="module")
def server(roots, tmp_path_factory):
    checkpoints, data, _, _ = roots
    port = _free_port()
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # no .streamlit/config.toml here
    env = dict(os.environ, DRGI_LAB_CHECKPOINTS=str(checkpoints), DRGI_LAB_DATA=str(data),
               OMP_WAIT_POLICY="PASSIVE",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--server.port", str(port)],
        cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic"],
        )
        yield b
        b.close()


def _wait_idle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]",
                           timeout=timeout_ms)
    page.wait_for_timeout(500)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]",
                           timeout=timeout_ms)


def _wait_point_maps(page) -> None:
    """Every point map (app.components.point_map) on the page has drawn, without an error."""
    maps = page.locator(".point-map")
    if maps.count():
        page.wait_for_function(
            "n => document.querySelectorAll('.point-map[data-drawn], .point-map[data-error]')"
            ".length >= n", arg=maps.count(), timeout=60_000)
        errors = page.locator(".point-map[data-error]")
        assert errors.count() == 0, errors.first.get_attribute("data-error")


def _screenshot_dir(tmp_path_factory) -> Path:
    d = os.environ.get("DRGI_LAB_SCREENSHOTS")
    out = Path(d) if d else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _pages():
    sys.path.insert(0, str(REPO))
    from app.main import PAGES

    return PAGES


@pytest.mark.parametrize("page_def", _pages(), ids=lambda p: p[3])
def test_every_page_renders(server, roots, browser, page_def, tmp_path_factory):
    _, _, base, drgi = roots
    file, title, _, url_path = page_def
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    # the first page is the default one: it lives at the root, not at /<url_path>
    path = "" if page_def == _pages()[0] else url_path
    page.goto(f"{server}/{path}?base={base}&drgi={drgi}")
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]
    body = page.inner_text("body")
    assert title in body
    assert "Page not found" not in body
    charts = page.locator("[data-testid=stPlotlyChart]")
    if charts.count():  # every chart drawn, not only the first
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot')"
            ".length >= n", arg=charts.count(), timeout=60_000)
    _wait_point_maps(page)
    tables = page.locator("[data-testid=stDataFrame]")
    if tables.count():  # lazily loaded grids: every one drawn on its canvas
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=stDataFrame] canvas').length >= n",
            arg=tables.count(), timeout=60_000)
    page.wait_for_function(  # no placeholder left (download buttons, lazy components)
        "() => !document.querySelector('[data-testid=stSkeleton]')", timeout=60_000)
    page.screenshot(path=str(_screenshot_dir(tmp_path_factory) / f"{url_path}.png"),
                    full_page=True)
    page.close()


def test_live_query_in_the_browser(server, roots, browser, tmp_path_factory):
    _, _, base, drgi = roots
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/live-query?base={base}&drgi={drgi}")
    _wait_idle(page)
    box = page.locator(".st-key-text input").first  # the live query's text box (key "text")
    box.fill("a red circle moves left")
    box.press("Enter")
    page.wait_for_timeout(800)
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0
    body = page.inner_text("body")
    assert "ms" in body  # latency is shown
    # the result tables are drawn by a lazily loaded component: wait for them, under load too
    page.wait_for_selector("[data-testid=stDataFrame], [data-testid=stTable]", timeout=60_000)
    assert page.locator("[data-testid=stDataFrame], [data-testid=stTable]").count() >= 2
    charts = page.locator("[data-testid=stPlotlyChart]")
    if charts.count():
        page.wait_for_selector("[data-testid=stPlotlyChart] .main-svg", timeout=60_000)
    # the page with results replaces the empty page's screenshot
    page.screenshot(path=str(_screenshot_dir(tmp_path_factory) / "live-query.png"),
                    full_page=True)
    page.close()


def test_no_request_leaves_the_app(server, roots, browser):
    """Every page (and a live query) fetches only from the app's own 127.0.0.1:PORT: no
    favicon or font from a CDN, no usage statistics, no MathJax or topojson."""
    _, _, base, drgi = roots
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))
    page = context.new_page()
    page.on("websocket", lambda ws: urls.append(ws.url))
    for page_def in _pages():
        path = "" if page_def == _pages()[0] else page_def[3]
        page.goto(f"{server}/{path}?base={base}&drgi={drgi}")
        _wait_idle(page)
        if page.locator("[data-testid=stPlotlyChart]").count():
            page.wait_for_selector("[data-testid=stPlotlyChart] .main-svg", timeout=60_000)
        _wait_point_maps(page)  # their plotly.js comes from the app's own server
        page.wait_for_timeout(500)  # late requests: favicon, lazily loaded components
        if page_def[3] == "live-query":
            box = page.locator(".st-key-text input").first
            box.fill("a red circle moves left")
            box.press("Enter")
            page.wait_for_timeout(800)
            _wait_idle(page)
            page.wait_for_selector("[data-testid=stDataFrame], [data-testid=stTable]",
                                   timeout=60_000)
    # a favicon URL is requested by the browser's own UI, which headless mode may not do:
    # the icon links of the document must point at the app too
    icons = page.eval_on_selector_all("link[rel~=icon]", "els => els.map(e => e.href)")
    context.close()
    assert urls, "no request was recorded"
    assert not outside_requests(urls, server), \
        f"the app requested outside hosts: {outside_requests(urls, server)}"
    assert not outside_requests(icons, server), \
        f"the page's icon links point at outside hosts: {outside_requests(icons, server)}"


def _body_line(page, pattern: str) -> re.Match:
    found = re.search(pattern, page.inner_text("body"))
    assert found, f"{pattern!r} not on the page:\n{page.inner_text('body')[:3000]}"
    return found


def _pick_option(page, key: str, option: str) -> None:
    """Open the selectbox / multiselect of widget ``key`` and click ``option``."""
    page.locator(f".st-key-{key} [role=combobox]").first.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    _wait_idle(page)


def test_queries_table_sort_filter_step_and_drill_down(server, roots, browser):
    """The joined table in the browser: sort it, filter it, step with J, then open the selected
    query on Failures and on Embeddings, which show the same query id."""
    _, _, base, drgi = roots
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(f"{server}/queries?base={base}&drgi={drgi}")
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]
    page.wait_for_selector(".st-key-queries_table [data-testid=stDataFrame]", timeout=60_000)
    total = int(_body_line(page, r"(\d+) of (\d+) queries shown").group(2))

    _pick_option(page, "qt_sort", "base rank (worst first)")
    counts = {s: int(_body_line(page, rf"(\d+) {s}[,( ]").group(1))
              for s in ("fixed", "broken", "both fail", "both fine")}
    status = max(counts, key=counts.get)
    _pick_option(page, "qt_status", status)
    shown = int(_body_line(page, r"(\d+) of (\d+) queries shown").group(1))
    assert shown == counts[status] and shown <= total

    before = re.search(r"query (\d+) of \d+ in the list", page.inner_text("body"))
    page.locator("[data-testid=stMain] h1").first.click()  # focus the page, not an input
    page.keyboard.press("j")
    page.wait_for_timeout(800)
    _wait_idle(page)
    after = _body_line(page, r"query (\d+) of (\d+) in the list")
    assert after.group(2) == str(shown)
    # J moved one step down the filtered list (into it, when the query was not in it)
    assert int(after.group(1)) == (min(int(before.group(1)) + 1, shown) if before else 1)
    q = int(_body_line(page, r"Caption (\d+):").group(1))

    page.locator(".st-key-qt_open_failures").get_by_role("button").click()
    page.wait_for_timeout(800)
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]
    assert "/failures" in page.url
    assert page.locator("[data-testid=stMain] h1").first.inner_text().strip() == "Failures"
    _body_line(page, rf"Caption {q}\b")
    if q:
        assert f"q={q}" in page.url  # the link to this view names the query

    page.get_by_role("link", name="Queries").first.click()  # back through the sidebar
    page.wait_for_timeout(800)
    _wait_idle(page)
    assert int(_body_line(page, r"Caption (\d+):").group(1)) == q
    page.locator(".st-key-qt_open_embeddings").get_by_role("button").click()
    page.wait_for_timeout(800)
    _wait_idle(page)
    assert "/embeddings" in page.url
    _body_line(page, rf"Marked: caption {q}\b")
    page.close()


def _shown_value(page, key: str) -> str:
    """What the selectbox of widget ``key`` shows (its text, or its input's value)."""
    return page.locator(f".st-key-{key}").first.evaluate(
        "e => e.innerText + ' ' + Array.from(e.querySelectorAll('input'))"
        ".map(i => i.value).join(' ')")


def _view_link(page) -> str:
    """The sidebar's link to this view (the code block of its popover, opened and closed)."""
    page.locator("[data-testid=stSidebar] [data-testid=stPopover] button").first.click()
    code = page.locator("[data-testid=stPopoverBody] [data-testid=stCode]").first
    text = code.inner_text().strip()
    page.keyboard.press("Escape")
    return text


def test_url_round_trip_of_page_state(server, roots, browser):
    """Page state from a link, the link to this view writing every setting (defaults too),
    a changed widget in the address bar and the link, the link reopening the same view, and a
    bad link value named in a warning."""
    from urllib.parse import parse_qs, urlsplit

    _, _, base, drgi = roots
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(f"{server}/failures?base={base}&drgi={drgi}&failures_run=DRGI"
              "&failures_sort=query+index&failures_k=2&q=3")
    _wait_idle(page)
    page.wait_for_selector(".st-key-failures_sort [role=combobox]", timeout=60_000)
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]
    assert page.locator(".st-key-failures_run input[type=radio]:checked").first \
        .evaluate("e => e.closest('label').innerText").startswith("DRGI")
    assert "query index" in _shown_value(page, "failures_sort")
    params = parse_qs(urlsplit(_view_link(page)).query, keep_blank_values=True)
    assert params["failures_run"] == ["DRGI"] and params["failures_k"] == ["2"]
    assert params["failures_sort"] == ["query index"] and params["q"] == ["3"]
    assert params["base"] == [base] and params["drgi"] == [drgi] and "split" in params
    assert params["failures_search"] == [""]  # a default, written out

    _pick_option(page, "failures_sort", "margin (most negative first)")
    assert "failures_sort=margin" in page.url
    link = _view_link(page)
    params = parse_qs(urlsplit(link).query, keep_blank_values=True)
    assert params["failures_sort"] == ["margin (most negative first)"]

    other = browser.new_page(viewport={"width": 1500, "height": 1100})
    other.goto(link)
    _wait_idle(other)
    other.wait_for_selector(".st-key-failures_sort [role=combobox]", timeout=60_000)
    _wait_idle(other)
    assert other.locator("[data-testid=stException]").count() == 0, \
        other.inner_text("body")[:2000]
    assert "margin (most negative first)" in _shown_value(other, "failures_sort"), \
        other.inner_text("body")[:3000]
    assert parse_qs(urlsplit(_view_link(other)).query, keep_blank_values=True) == params
    other.close()

    page.goto(f"{server}/failures?base=nope&q=99999")
    _wait_idle(page)
    _body_line(page, r"base=nope")
    _body_line(page, r"q=99999")
    page.close()


def test_the_same_lasso_after_clearing_selects_again(server, roots, browser):
    """Lasso on the Embeddings map, clear, the same lasso again: each lasso reruns the page
    and fills the gallery, each clear empties it. Driven with the benchmark harness's own
    steps (benchmarks/app_interactions.py), whose run counter must see every rerun, quick or
    not, for its timings to mean anything."""
    sys.path.insert(0, str(REPO))
    from benchmarks.app_interactions import lasso, open_page, timed, watch_runs

    _, _, base, drgi = roots
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    watch_runs(page)
    page.goto(f"{server}/?base={base}&drgi={drgi}")
    _wait_idle(page)
    timed(page, lambda: open_page(page, "Embeddings"))
    selected = page.get_by_text(re.compile(r"caption\(s\) and \d+ video\(s\) selected"))
    for _ in range(2):
        timed(page, lambda: lasso(page, 0.3), "a lasso")  # raises if no script run started
        assert selected.count() == 1
        timed(page, lambda: page.get_by_role("button", name="Clear selection").first.click(),
              "Clear selection")
        assert selected.count() == 0
    page.close()


# ---------------------------------------------------------------- the point map (Embeddings)
MAP = ".st-key-emb_map_base .point-map"  # app.components.point_map: the base run's map
_GEOMETRY = """root => {
    const gd = root.querySelector('.js-plotly-plot');
    const f = gd._fullLayout, r = gd.getBoundingClientRect();
    return {left: r.left, top: r.top,
            x: [f.xaxis.range[0], f.xaxis.range[1], f.xaxis._offset, f.xaxis._length],
            y: [f.yaxis.range[0], f.yaxis.range[1], f.yaxis._offset, f.yaxis._length]};
}"""
_MARK = """root => { const gd = root.querySelector('.js-plotly-plot');
    gd.__e2eMark = 'kept'; gd.querySelector('canvas').__e2eMark = 'kept'; }"""
_KEPT = """root => { const gd = root.querySelector('.js-plotly-plot');
    return [gd.__e2eMark === 'kept', gd.querySelector('canvas').__e2eMark === 'kept']; }"""


def _open_embeddings(server, roots, browser):
    sys.path.insert(0, str(REPO))
    from benchmarks.app_interactions import settle, watch_runs

    _, _, base, drgi = roots
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    watch_runs(page)
    page.goto(f"{server}/embeddings?base={base}&drgi={drgi}")
    _wait_idle(page)
    settle(page)
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]
    page.wait_for_selector(f"{MAP}[data-drawn]", timeout=60_000)
    page.locator(MAP).scroll_into_view_if_needed()
    return page


def _map_points(roots):
    """The base map's points as the page draws them (every point of the tiny bundle, the
    first 2-D map), and the bundle."""
    from analysis.bundle import Bundle
    from analysis.embedding_map import map_points

    checkpoints, _, base, _ = roots
    bundle = Bundle.load(checkpoints / base / "analysis" / "synthvtt-test", check=False)
    method = bundle.projections.methods[0]
    return map_points(bundle.projections, method, bundle.text_to_video), bundle


def _pixels(page, coords):
    """Page pixel positions ``[P, 2]`` of data coordinates on the base map."""
    import numpy as np

    g = page.locator(MAP).evaluate(_GEOMETRY)
    (x0, x1, xo, xl), (y0, y1, yo, yl) = g["x"], g["y"]
    px = g["left"] + xo + (coords[:, 0] - x0) / (x1 - x0) * xl
    py = g["top"] + yo + (y1 - coords[:, 1]) / (y1 - y0) * yl
    return np.stack([px, py], axis=1)


def test_point_map_lasso_selects_exactly_the_points_inside_and_keeps_the_chart(
        server, roots, browser):
    """A lasso (a square drawn with the mouse) on the base map: the selection the page keeps
    (``?emb_sel=``) is the captions and videos of exactly the points whose Python-side
    coordinates lie inside the square, and the rerun updated the same chart (the plot's div
    and its WebGL canvas are the ones marked before)."""
    import numpy as np

    from analysis.embedding_map import selected_items
    from analysis.projector import selection_to_url
    from benchmarks.app_interactions import runs, settle

    page = _open_embeddings(server, roots, browser)
    points, _ = _map_points(roots)
    px = _pixels(page, points.coords)
    page.locator(MAP).evaluate(_MARK)
    box = page.locator(f"{MAP} .nsewdrag").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    import itertools

    shapes = itertools.product(np.linspace(0.1, 0.4, 13), (0, -0.1, 0.1), (0, -0.1, 0.1))
    for frac, dx, dy in shapes:  # a rectangle with no point within 2 px of its edges
        rx, ry = box["width"] * frac, box["height"] * frac
        mx, my = cx + dx * box["width"], cy + dy * box["height"]
        x0, x1, y0, y1 = mx - rx, mx + rx, my - ry, my + ry
        near = (np.minimum(np.abs(px[:, 0] - x0), np.abs(px[:, 0] - x1)) < 2) | (
            np.minimum(np.abs(px[:, 1] - y0), np.abs(px[:, 1] - y1)) < 2)
        inside = (px[:, 0] > x0) & (px[:, 0] < x1) & (px[:, 1] > y0) & (px[:, 1] < y1)
        if not near.any() and inside.any():
            break
    else:
        pytest.fail("no rectangle around the map's middle keeps 2 px from every point")
    caps, vids = selected_items(points, np.flatnonzero(inside))
    before = runs(page)
    page.mouse.move(float(x0), float(y0))
    page.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0)):
        page.mouse.move(float(x), float(y), steps=4)
    page.mouse.up()
    assert settle(page, before), "the lasso started no script run"
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]
    from urllib.parse import parse_qs, urlsplit

    assert parse_qs(urlsplit(page.url).query)["emb_sel"] == [selection_to_url(caps, vids)]
    _body_line(page, rf"{len(caps)} caption\(s\) and {len(vids)} video\(s\) selected")
    assert page.locator(MAP).evaluate(_KEPT) == [True, True]  # updated in place, not remounted
    # a rerun that leaves the map's data as it was does not draw it again
    drawn = page.locator(MAP).get_attribute("data-drawn")
    before = runs(page)
    name = page.locator(".st-key-emb_save_name input").first
    name.fill("kept")
    name.press("Enter")
    assert settle(page, before), "typing a name started no script run"
    assert page.locator(MAP).get_attribute("data-drawn") == drawn
    page.close()


def test_point_map_colour_change_updates_in_place_and_hover_shows_the_text(
        server, roots, browser):
    """Hovering a caption's point shows its text; changing the colour mode recolours the same
    chart (marked before, found after) with the new palette."""
    import numpy as np

    from analysis.embedding_map import TEXTS

    page = _open_embeddings(server, roots, browser)
    points, bundle = _map_points(roots)
    px = _pixels(page, points.coords)
    texts = np.flatnonzero(points.kind == TEXTS)
    gap = [np.delete(np.hypot(*(px - px[i]).T), i).min() for i in texts]
    pick = int(texts[int(np.argmax(gap))])  # the caption point farthest from any other
    page.mouse.move(float(px[pick, 0]), float(px[pick, 1]))
    label = page.locator(f"{MAP} .hoverlayer .hovertext").first
    label.wait_for(timeout=10_000)
    caption = int(points.item[pick])
    assert label.text_content().startswith(f"caption {caption}: {bundle.captions[caption][:20]}")

    palette = "root => JSON.stringify(root.querySelector('.js-plotly-plot').data[0].marker.colorscale)"
    before = page.locator(MAP).evaluate(palette)
    page.locator(MAP).evaluate(_MARK)
    _pick_option(page, "emb_colour", "video")
    page.wait_for_selector(f"{MAP}[data-drawn]", timeout=60_000)
    assert page.locator(MAP).evaluate(palette) != before
    assert page.locator(MAP).evaluate(_KEPT) == [True, True]
    page.close()
