"""Headless Chromium, driven as a person's browser would be, over the DevTools protocol.

Standard library only: Chromium is started with ``--remote-debugging-pipe`` (it reads
commands on its fd 3 and writes replies and events on its fd 4, each message JSON ended by a
NUL byte). :func:`look_at` opens a page in a fresh profile, waits for it to load, makes every
image load (lazy ones too) and reports which did not, every console message, uncaught
exception, failed request and JavaScript dialog, and a screenshot.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

CHROMIUM = "chromium"  # Debian's package; .ci/run installs it where it is missing
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--no-default-browser-check",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe")

# Every image of the page: made to load now (lazy ones too), then decoded or not.
_IMAGES = """Promise.all(Array.from(document.images, img => {
    img.loading = "eager";
    return img.decode().then(() => [img.currentSrc || img.src, img.naturalWidth],
                             () => [img.currentSrc || img.src, 0]);
}))"""


def chromium():
    """The Chromium executable on PATH, or None."""
    return shutil.which(CHROMIUM)


@dataclass
class Look:
    """What a person would have seen: images (url, natural width; 0: not shown), errors."""

    images: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # console errors, exceptions, failed loads
    dialogs: list = field(default_factory=list)  # alert(), confirm()... opened by the page
    title: str = ""
    screenshot: bytes = b""

    @property
    def broken(self):
        return [url for url, width in self.images if not width]


class _Browser:
    def __init__(self, profile, timeout):
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        self.timeout = timeout

        def pipes():  # Chromium's fd 3 reads our commands, its fd 4 writes to us
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            for fd, target in zip(high, (3, 4)):  # dup2's copies are inheritable, Python's
                os.dup2(fd, target)  # own fds are not: close_fds=False passes only these

        self.proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=pipes, close_fds=False)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._id, self.events = b"", 0, []

    def close(self):
        try:
            self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)

    def _message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited (status {self.proc.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(message)
        if message.get("method") == "Page.javascriptDialogOpening":  # it would block the page
            self._id += 1
            os.write(self._write, json.dumps({
                "id": self._id, "method": "Page.handleJavaScriptDialog",
                "params": {"accept": False}, "sessionId": message.get("sessionId")}).encode()
                + b"\0")
        return message

    def send(self, method, session=None, **params):
        """Send a command; its result (events that come meanwhile are kept in .events)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method):
        """The next event `method` (events before it are kept)."""
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event


def look_at(url, *, width=1400, height=2000, full_page=False, timeout=60):
    """Open `url` in headless Chromium as a person would and report what they would see."""
    profile = tempfile.mkdtemp(prefix="gpucal-chromium-")
    browser = _Browser(profile, timeout)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target,
                               flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                     deviceScaleFactor=1, mobile=False)
        browser.send("Page.navigate", session, url=url)
        browser.wait_for("Page.loadEventFired")
        look = Look()
        look.images = browser.send("Runtime.evaluate", session, expression=_IMAGES,
                                   awaitPromise=True, returnByValue=True)["result"]["value"]
        look.title = browser.send("Runtime.evaluate", session, expression="document.title",
                                  returnByValue=True)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", session, format="png",
                            captureBeyondViewport=full_page)
        look.screenshot = base64.b64decode(shot["data"])
        for event in browser.events:
            look.errors += _errors(event)
            if event.get("method") == "Page.javascriptDialogOpening":
                look.dialogs.append(event["params"].get("message"))
        return look
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


def _errors(event):
    """The errors a person's console would show for one DevTools event."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return [" ".join(str(a.get("value", a.get("description", ""))) for a in
                         params.get("args", []))]
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return [details.get("exception", {}).get("description") or details.get("text", "")]
    if method == "Log.entryAdded" and params["entry"].get("level") == "error":
        return [f"{params['entry'].get('text')} {params['entry'].get('url', '')}".strip()]
    if method == "Network.loadingFailed":
        return [f"failed to load: {params.get('errorText')}"]
    return []
