"""Screenshots of Odoo pages with headless Chromium, logged in as a user.

A small Chrome DevTools Protocol client: it starts ``chromium --headless``
on a free local port, opens a session with Odoo's ``/web/session/authenticate``
(its cookie is given to the browser), opens a page, waits until a CSS selector
is on it and nothing is loading, and saves a PNG. Used by
``assurance_demo.py``; talks to 127.0.0.1 only.
"""

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
import websocket


class Browser:
    """One headless Chromium tab driven over the DevTools protocol."""

    def __init__(self, width=1440, height=960):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not binary:
            raise RuntimeError("chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="qtc-chrome-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self._ids = itertools.count(1)
        self.width, self.height = width, height
        self.send("Page.enable")
        self.send("Network.enable")

    def send(self, method, **params):
        """Call a DevTools method and return its result (events are skipped)."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return result.get("result", {}).get("value")

    def login(self, url, db, login, password):
        """Open a session in Odoo and hand its cookie to the browser."""
        response = requests.post(
            f"{url}/web/session/authenticate",
            json={
                "jsonrpc": "2.0",
                "params": {"db": db, "login": login, "password": password},
            },
            timeout=60,
        )
        response.raise_for_status()
        if response.json().get("error"):
            raise RuntimeError(f"login refused: {response.json()['error']}")
        host = urlsplit(url).hostname
        self.send(
            "Network.setCookie",
            name="session_id",
            value=response.cookies["session_id"],
            domain=host,
            path="/",
        )

    def wait_for(self, selector, timeout=60):
        """Wait until ``selector`` is in the page and nothing shows as loading."""
        script = (
            f"!!document.querySelector({json.dumps(selector)}) && "
            "!document.querySelector('.o_loading_indicator, .o-main-components-"
            "container .o_blockUI')"
        )
        deadline = time.monotonic() + timeout
        while not self.evaluate(script):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{selector} did not appear")
            time.sleep(0.3)
        time.sleep(1.0)  # let charts and fonts settle

    def open(self, url, selector, timeout=60):
        self.send("Page.navigate", url=url)
        self.wait_for(selector, timeout)

    def click(self, selector, then, timeout=60):
        """Click the first element matching ``selector``, wait for ``then``."""
        found = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        if not found:
            raise RuntimeError(f"nothing to click at {selector}")
        self.wait_for(then, timeout)

    def click_card(self, text, then, timeout=60):
        """Click the dashboard card whose title is ``text``, wait for ``then``."""
        found = self.evaluate(
            "(() => { const card = [...document.querySelectorAll('.o_qtc_card')]"
            f".find(c => c.querySelector('.card-title')?.textContent.trim() === "
            f"{json.dumps(text)}); if (!card) return false;"
            " card.querySelector('.card-body').click(); return true; })()"
        )
        if not found:
            raise RuntimeError(f"no card {text!r}")
        self.wait_for(then, timeout)

    def screenshot(self, path, full_page=False):
        """Save the page as a PNG (the whole page when ``full_page``)."""
        height = self.height
        if full_page:
            height = max(
                self.height,
                int(
                    self.evaluate(
                        "Math.max(...[...document.querySelectorAll("
                        "'.o_content, .o_action_manager, body')].map("
                        "e => e.scrollHeight))"
                    )
                    or self.height
                )
                + 120,  # the navigation bar and control panel above the content
            )
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        time.sleep(0.8)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return path

    def close(self):
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
