"""A real browser for tests: headless Chromium over the DevTools protocol, with the network unreachable.

Stdlib only: ``--remote-debugging-pipe`` (NUL-ended JSON; commands to the browser's fd 3, answers from fd 4).

    with open_page(tmp_path / "report.html") as page:
        page.click("th.sortable")
        assert page.evaluate("document.querySelectorAll('tr').length") == 11
        assert page.console_errors == [] and page.offline_violations == []
        page.screenshot(tmp_path / "report.png")
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SKIP_REASON = "no headless Chromium: apt-get install -y chromium (see .ci/run)"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
FLAGS = (
    *"--headless=new --disable-gpu --no-first-run --no-default-browser-check --disable-sync".split(),
    *"--disable-background-networking --disable-component-update --disable-extensions".split(),
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no host name (nor IP literal) resolves
    "--proxy-server=127.0.0.1:9",  # other requests go to a closed port (and the page is offline too)
    "--remote-debugging-pipe",
)
#: Network.emulateNetworkConditions: the page's own network is off too (each layer alone keeps it offline)
OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
#: puts the pipe ends on the fds 3 and 4 the browser expects, then becomes the browser (same pid)
_TRAMPOLINE = """import fcntl, os, sys; r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"""


class BrowserError(RuntimeError):
    """The browser failed, timed out, or a page command (evaluate, click, ...) could not be done."""


@functools.cache
def _runs(path: str) -> bool:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0  # Debian's /usr/bin/chromium wrapper warns on stderr; the exit status counts


def find_browser() -> str | None:
    """``$T5SCORE_CHROMIUM`` if set, else the first of :data:`CANDIDATES` on PATH whose ``--version`` runs."""
    chosen = os.environ.get("T5SCORE_CHROMIUM")
    if chosen:
        return shutil.which(chosen) or chosen
    return next((path for path in filter(None, map(shutil.which, CANDIDATES)) if _runs(path)), None)


def require_browser() -> str:
    """The browser's path for a test, or skip the test with the reason (and the command that fixes it)."""
    path = find_browser()
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


def _text(obj: dict) -> str:  # a console argument or thrown value (a RemoteObject) as the console shows it
    value = obj.get("value", obj.get("description", obj.get("unserializableValue", "")))
    return value if isinstance(value, str) else json.dumps(value)


class Page:
    """One page loaded in the browser; see :func:`open_page`. Every command waits at most ``timeout`` s."""

    def __init__(self, proc: subprocess.Popen, fds: tuple[int, int], timeout: float, work: Path) -> None:
        #: the browser's process and its folder (profile, stderr log), removed when the page closes
        self.proc, self.pid, self.timeout, self.workdir = proc, proc.pid, timeout, work
        (self._send_fd, self._recv_fd), self._log = fds, work / "stderr.log"
        self._buffer, self._next_id, self._session = b"", 0, None
        self._loads: set[str] = set()  #: the loaders (navigations) whose load event fired
        self.console: list[tuple[str, str]] = []  #: (type, text) of every console call
        self.exceptions: list[str] = []  #: every uncaught exception
        self.log_entries: list[tuple[str, str]] = []  #: (level, text) of every Log.entryAdded
        self.requests: list[str] = []  #: every URL the page requested

    def _fail(self, what: str) -> BrowserError:
        lines = self._log.read_text(errors="replace").splitlines()
        tail = "\n".join([line for line in lines if "dbus" not in line][-8:])  # dbus: noise in containers
        return BrowserError(f"{what}; browser stderr ends:\n{tail}" if tail.strip() else what)

    def _read(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buffer:
            if not select.select([self._recv_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise self._fail(f"headless Chromium: {what} did not come within {self.timeout:g} s")
            chunk = os.read(self._recv_fd, 1 << 20)
            if not chunk:
                raise self._fail(f"headless Chromium exited while waiting for {what}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if message.get("sessionId") != self._session:
            return
        if method == "Runtime.consoleAPICalled":
            self.console.append((params["type"], " ".join(_text(a) for a in params.get("args", []))))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]  # a thrown value, else the message ("Uncaught ...")
            self.exceptions.append(_text(details.get("exception", {})) or details["text"])
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.log_entries.append((entry["level"], f"{entry['text']} {entry.get('url', '')}".strip()))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Page.lifecycleEvent" and params["name"] == "load":
            self._loads.add(params["loaderId"])

    def send(self, method: str, params: dict | None = None) -> dict:
        """Run one protocol command on the page's session; its result (raises on a protocol error)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}, "sessionId": self._session}
        data = json.dumps({k: v for k, v in message.items() if v is not None}).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._send_fd, data) :]
        except OSError as err:
            raise self._fail(f"headless Chromium is gone ({err}) at {method}") from err
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read(deadline, f"the answer to {method}")
            if answer.get("id") != self._next_id:
                self._event(answer)
            elif "error" in answer:
                raise BrowserError(f"{method} failed: {answer['error']}")
            else:
                return answer.get("result", {})

    def _open(self, url: str, width: int, height: int) -> None:
        """A new tab, attached (flat session), its domains on, offline; then ``url`` until its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        self.send("Network.emulateNetworkConditions", OFFLINE)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics)
        self.send("Emulation.setFocusEmulationEnabled", {"enabled": True})  # :focus and focus events work
        self.send("Page.setLifecycleEventsEnabled", {"enabled": True})
        navigated = self.send("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise BrowserError(f"cannot open {url}: {navigated['errorText']}")
        deadline = time.monotonic() + self.timeout
        while navigated["loaderId"] not in self._loads:
            self._event(self._read(deadline, f"the load event of {url} (the page did not finish loading)"))

    def evaluate(self, js: str) -> Any:
        """The JSON value of the expression ``js`` (promises awaited); raises with the exception's text."""
        options = {"returnByValue": True, "awaitPromise": True, "userGesture": True}
        result = self.send("Runtime.evaluate", {"expression": js, **options})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = _text(details.get("exception", {})) or details["text"]
            raise BrowserError(f"evaluate({js[:80]!r}) threw: {text}")
        return result["result"].get("value")

    def _on(self, selector: str, body: str) -> Any:
        """The value of the JS ``body`` run with ``el``, the first element matching ``selector``."""
        found = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); return el && [{body}]; }})()"
        )
        if found is None:
            raise BrowserError(f"no element matches {selector!r}")
        return found[0]

    def _centre(self, selector: str) -> tuple[float, float]:
        x, y, area, hit = self._on(
            selector,
            """(() => { el.scrollIntoView({block: "center", inline: "center"});
            const r = el.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
            const hit = document.elementFromPoint(x, y);
            const covered = hit && (hit === el || el.contains(hit)) ? "" : hit?.outerHTML ?? "nothing (off screen)";
            return [x, y, r.width * r.height, covered];
            })()""",
        )
        if not area:
            raise BrowserError(f"{selector!r} has no size on the page (hidden?)")
        if hit != "":
            raise BrowserError(f"{selector!r} is covered at its centre by {str(hit)[:80]}")
        return x, y

    def _mouse(self, selector: str, *events: tuple[str, str, int]) -> None:
        x, y = self._centre(selector)
        for kind, button, buttons in (("mouseMoved", "none", 0), *events):
            event = {"type": kind, "x": x, "y": y, "button": button, "buttons": buttons}
            self.send("Input.dispatchMouseEvent", {**event, "clickCount": int(button != "none")})

    def hover(self, selector: str) -> None:
        """Move the mouse over the centre of the first matching element (after scrolling it into view)."""
        self._mouse(selector)

    def click(self, selector: str) -> None:
        """A real left click (mouse moved, pressed, released) at the centre of the first matching element."""
        self._mouse(selector, ("mousePressed", "left", 1), ("mouseReleased", "left", 0))

    def focus(self, selector: str) -> None:
        """Focus the first matching element (as Tab would); raises when it cannot take the focus."""
        if not self._on(selector, "(el.focus(), document.activeElement === el)"):
            raise BrowserError(f"{selector!r} cannot take the focus (not focusable: add tabindex?)")

    def screenshot(self, path: Path | str) -> Path:
        """A PNG of the whole page (the viewport's width, the content's height) written to ``path``."""
        width, height = self.evaluate("[innerWidth, document.documentElement.scrollHeight]")
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, 16384), "scale": 1}
        shot = self.send("Page.captureScreenshot", {"clip": clip, "captureBeyondViewport": True})
        Path(path).write_bytes(base64.b64decode(shot["data"]))  # PNG: the protocol's default format
        return Path(path)

    def dom(self) -> str:
        """``document.documentElement.outerHTML`` as it stands now (after the page's scripts ran)."""
        return self.evaluate("document.documentElement.outerHTML")

    def _settle(self) -> None:  # one round trip: takes in what the page sent until now (if still open)
        if self.proc.poll() is None:
            self.send("Runtime.evaluate", {"expression": "0"})

    @property
    def console_errors(self) -> list[str]:
        """Console errors and failed asserts, uncaught exceptions and the browser's own error log entries."""
        self._settle()
        errors = [f"console.{kind}: {text}" for kind, text in self.console if kind in ("error", "assert")]
        errors += [f"uncaught: {text}" for text in self.exceptions]
        return errors + [f"log: {text}" for level, text in self.log_entries if level == "error"]

    @property
    def offline_violations(self) -> list[str]:
        """Requested URLs that would need the network (not ``file:``, ``data:``, ``blob:`` or ``about:``)."""
        self._settle()
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]


def _start(browser: str, work: Path, width: int, height: int) -> tuple[subprocess.Popen, tuple[int, int]]:
    """The browser process, and the fds we write commands to and read its messages from."""
    to_browser, to_us = os.pipe(), os.pipe()
    flags = [*FLAGS, f"--user-data-dir={work / 'profile'}", f"--window-size={width},{height}"]
    if os.name == "posix" and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    theirs, io = (to_browser[0], to_us[1]), {"stdin": subprocess.DEVNULL, "start_new_session": True}
    argv = [sys.executable, "-c", _TRAMPOLINE, *map(str, theirs), browser, *flags, "about:blank"]
    try:
        with (work / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(argv, pass_fds=theirs, stdout=err, stderr=err, **io)
    except BaseException:
        for fd in (*to_browser, *to_us):
            os.close(fd)
        raise
    for fd in theirs:
        os.close(fd)
    return proc, (to_browser[1], to_us[0])


@contextlib.contextmanager
def open_page(path: Path | str, width: int = 1280, height: int = 900, timeout: float = 30) -> Iterator[Page]:
    """Load the local file ``path`` in a fresh headless Chromium (no network) and yield it as a :class:`Page`.

    The browser is killed and its profile removed on exit, whatever happened inside; a step that takes
    longer than ``timeout`` seconds (start, load, any command) raises :class:`BrowserError`.
    """
    browser = find_browser()
    if browser is None:
        raise BrowserError(SKIP_REASON)
    work = Path(tempfile.mkdtemp(prefix="t5score-chromium-"))
    proc, fds = None, ()
    try:
        proc, fds = _start(browser, work, width, height)
        page = Page(proc, fds, timeout, work)
        page._open(Path(path).resolve().as_uri(), width, height)
        yield page
    finally:
        if proc is not None:  # the browser and its helpers (renderer, zygote, ...): one process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=30)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(work, ignore_errors=True)
