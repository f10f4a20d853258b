"""tests/helpers/browser.py against facts it cannot make up: what a page script computed, a DOM change only
a trusted (real) click makes, a local HTTP server that counts the requests it gets, the pixels of the PNG,
the process table after the context exits. The browser tests skip, with the reason, without Chromium.
"""

from __future__ import annotations

import http.server
import struct
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

from tests.helpers import browser
from tests.helpers.browser import BrowserError, find_browser, open_page, require_browser


@pytest.fixture
def chromium() -> str:
    return require_browser()


def _html(tmp_path: Path, body: str, head: str = "", name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>"
    )
    return path


def _live(pgid: int) -> list[int]:
    """The processes of the process group ``pgid`` that are still running (zombies are gone for good)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _gone(pgid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _live(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _live(pgid)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    return min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]  # ties: a, then b, then c


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and the pixels of an 8-bit RGB/RGBA non-interlaced PNG (zlib and the PNG filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    step = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(chunks[b"IDAT"]), width * step, [], bytearray(width * step)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - step] if i >= step else 0, previous[i]
            c = previous[i - step] if i >= step else 0
            line[i] = (line[i] + (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]) & 0xFF
        rows.append(line)
        previous = line
    pixels = [tuple(row[x * step : x * step + 3]) for row in rows for x in range(width)]
    return width, height, pixels


def test_find_browser_takes_the_first_candidate_whose_version_runs(tmp_path, monkeypatch):
    for name, code in (("chromium", 1), ("chromium-browser", 0), ("google-chrome", 0)):
        script = tmp_path / name
        script.write_text(f"#!/bin/sh\necho 'a harmless warning' >&2\nexit {code}\n")
        script.chmod(0o755)
    monkeypatch.delenv("T5SCORE_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser() == str(tmp_path / "chromium-browser")
    monkeypatch.setenv("T5SCORE_CHROMIUM", str(tmp_path / "google-chrome"))
    assert find_browser() == str(tmp_path / "google-chrome")


def test_require_browser_skips_with_the_reason_where_there_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv("T5SCORE_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no browser on it
    assert find_browser() is None
    with pytest.raises(pytest.skip.Exception, match=r"no headless Chromium: apt-get install -y chromium"):
        require_browser()
    with pytest.raises(BrowserError, match="no headless Chromium"):
        open_page(tmp_path / "x.html").__enter__()


def test_evaluate_returns_what_the_page_computed_and_the_browser_closes(tmp_path, chromium):
    sieve = """<script>
      const n = 200, prime = Array(n).fill(true); window.primes = [];
      for (let i = 2; i < n; i++) {
        if (!prime[i]) continue;
        window.primes.push(i);
        for (let j = i * i; j < n; j += i) prime[j] = false;
      }
    </script>"""
    expected = [p for p in range(2, 200) if all(p % d for d in range(2, int(p**0.5) + 1))]
    with open_page(_html(tmp_path, sieve)) as page:
        assert page.evaluate("window.primes") == expected
        assert page.evaluate("new Promise(r => setTimeout(() => r({a: [1, 'x', null]}), 50))") == {
            "a": [1, "x", None]
        }
        with pytest.raises(BrowserError, match="TypeError.*undefined"):
            page.evaluate("window.nothing.here")
        pgid, work = page.pid, page.workdir
        assert _live(pgid) and work.is_dir()  # what the checks below see go away is there now
    assert _gone(pgid) and not work.exists()


def test_click_is_a_real_mouse_click_hover_and_focus_too(tmp_path, chromium):
    body = """
      <div style="height: 2000px">tall: the button is below the fold</div>
      <button id="go" onclick="const p = document.createElement('p'); p.id = 'done';
        p.textContent = 'clicked ' + event.isTrusted + ' ' + (event.clientX > 0);
        document.body.append(p)">go</button>
      <div id="spot" style="width: 50px; height: 50px">spot</div>
      <input id="name" onfocus="this.dataset.seen = 'yes'"><div id="plain">not focusable</div>
      <div style="position: relative"><button id="under">under</button>
        <div style="position: absolute; inset: 0; background: white">cover</div></div>"""
    style = "<style>#spot:hover { background: rgb(0, 200, 0); }</style>"
    with open_page(_html(tmp_path, body, style)) as page:
        assert 'id="done"' not in page.dom()
        page.click("#go")
        # isTrusted is true only for input from the browser itself (element.click() gives false)
        assert page.evaluate("document.getElementById('done').textContent") == "clicked true true"
        assert '<p id="done">clicked true true</p>' in page.dom()
        page.hover("#spot")
        assert (
            page.evaluate("getComputedStyle(document.getElementById('spot')).backgroundColor")
            == "rgb(0, 200, 0)"
        )
        page.focus("#name")
        assert page.evaluate("[document.activeElement.id, document.activeElement.dataset.seen]") == [
            "name",
            "yes",
        ]
        with pytest.raises(BrowserError, match="cannot take the focus"):
            page.focus("#plain")
        with pytest.raises(BrowserError, match="covered at its centre"):
            page.click("#under")
        with pytest.raises(BrowserError, match="no element matches '#nowhere'"):
            page.click("#nowhere")


def test_console_errors_and_uncaught_exceptions_are_recorded_and_a_clean_page_has_none(tmp_path, chromium):
    broken = (
        "<button id='b' onclick='null.f()'>b</button>"
        "<script>console.log('fine'); console.error('broken', 3)</script>"
        "<script>throw new Error('boom')</script>"
    )
    with open_page(_html(tmp_path, broken)) as page:
        errors = page.console_errors
        assert errors[0] == "console.error: broken 3" and errors[1].startswith("uncaught: Error: boom"), (
            errors
        )
        assert len(errors) == 2 and ("log", "fine") in page.console
        page.click("#b")  # an error after the load is recorded too
        assert len(page.console_errors) == 3 and "TypeError" in page.console_errors[2]
    with open_page(
        _html(tmp_path, "<script>console.log('fine'); console.info('also fine')</script>")
    ) as page:
        assert page.console_errors == [] and page.console == [("log", "fine"), ("info", "also fine")]


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (the handler's name)
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_the_page_cannot_reach_the_network_and_each_try_is_a_violation(tmp_path, chromium):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, _Counting.hits = server.server_address[1], []
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/from-python", timeout=5).read()
        assert _Counting.hits == ["/from-python"]  # the server answers whoever can reach it
        (tmp_path / "dot.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>")
        remote = ["https://example.com/x.png", "http://example.com/data.json"]
        local = [f"http://127.0.0.1:{port}/from-page", f"http://localhost:{port}/from-page"]
        body = f"""<img id="remote" src="{remote[0]}"><img id="local" src="dot.svg">
          <script>window.tries = Promise.all({[remote[1], *local]}.map(u =>
            fetch(u).then(r => 'reached ' + r.status, e => 'failed')));</script>"""
        with open_page(_html(tmp_path, body)) as page:
            assert page.evaluate("window.tries") == ["failed"] * 3
            assert page.evaluate("document.getElementById('remote').naturalWidth") == 0
            assert page.evaluate("document.getElementById('local').naturalWidth") == 4  # file: still loads
            assert sorted(set(page.offline_violations)) == sorted(remote + local)
            assert (tmp_path / "dot.svg").as_uri() in page.requests
        assert _Counting.hits == ["/from-python"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("keep", ["flags", "emulation", "neither"])
def test_each_layer_alone_keeps_the_page_off_a_local_server(tmp_path, chromium, monkeypatch, keep):
    if keep != "flags":  # no --host-resolver-rules / --proxy-server
        monkeypatch.setattr(
            browser, "FLAGS", tuple(f for f in browser.FLAGS if not f.startswith(("--host", "--proxy")))
        )
    if keep != "emulation":
        monkeypatch.setattr(browser, "OFFLINE", {**browser.OFFLINE, "offline": False})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, _Counting.hits = server.server_address[1], []
    try:
        urls = [f"http://127.0.0.1:{port}/ip", f"http://localhost:{port}/name"]
        tries = f"Promise.all({urls}.map(u => fetch(u).then(r => 'reached', e => 'failed')))"
        body = f"<script>window.tries = {tries};</script>"
        with open_page(_html(tmp_path, body)) as page:
            tries = page.evaluate("window.tries")
            assert sorted(set(page.offline_violations)) == urls
    finally:
        server.shutdown()
        server.server_close()
    if keep == "neither":  # the control: without the harness's layers the page does reach the server
        assert tries == ["reached"] * 2 and sorted(_Counting.hits) == ["/ip", "/name"]
    else:
        assert tries == ["failed"] * 2 and _Counting.hits == []


def test_the_screenshot_is_a_png_of_the_width_asked_for_the_whole_page_and_not_blank(tmp_path, chromium):
    block = "<div id='block' style='width: 100px; height: 80px; background: rgb(0, 128, 255)'></div>"
    body = block + "<div style='height: 400px'></div>"
    with open_page(
        _html(tmp_path, body, "<style>body { margin: 0; background: white }</style>"), width=240, height=200
    ) as page:
        shot = page.screenshot(tmp_path / "shot.png")
        page.evaluate("document.getElementById('block').remove()")
        blank = page.screenshot(tmp_path / "blank.png")
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert width == 240 and height >= 480  # the whole page, not only the 200 px of the viewport
    assert pixels[10 * width + 10] == (0, 128, 255) and pixels[10 * width + 200] == (255, 255, 255)
    assert {*pixels} >= {(0, 128, 255), (255, 255, 255)}
    assert {*_png_pixels(blank.read_bytes())[2]} == {(255, 255, 255)}  # what "blank" would look like
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(shot) as image:  # the decoder above agrees with Pillow's
        assert image.size == (width, height) and list(image.convert("RGB").getdata()) == pixels


def test_a_page_that_never_finishes_loading_raises_instead_of_hanging(tmp_path, chromium, monkeypatch):
    started, start = [], browser._start
    monkeypatch.setattr(browser, "_start", lambda *args: started.append(start(*args)) or started[-1])
    began = time.monotonic()
    with pytest.raises(BrowserError, match=r"load event of file://.*did not finish loading.*within 2 s"):
        with open_page(_html(tmp_path, "<script>while (true) {}</script>"), timeout=2):
            pass
    assert time.monotonic() - began < 15
    assert _gone(started[0][0].pid)
    with pytest.raises(BrowserError, match="ERR_FILE_NOT_FOUND"):
        with open_page(tmp_path / "missing.html", timeout=10):
            pass
    assert _gone(started[1][0].pid)


def test_the_browser_is_gone_after_an_exception_inside_the_context(tmp_path, chromium):
    with pytest.raises(ZeroDivisionError):
        with open_page(_html(tmp_path, "<p>hello</p>")) as page:
            pgid, work = page.pid, page.workdir
            assert len(_live(pgid)) > 1  # the browser and its helper processes
            _ = 1 / 0
    assert _gone(pgid) and not work.exists()
