"""Browser tier: headless Chromium against a running ComfyUI with its real front end.

Which host:
- ``PM_BROWSER_URL=http://127.0.0.1:PORT``: a server you started yourself (with this repo as a
  custom node and the test LoRAs in its models/loras); or
- ``COMFYUI_PATH`` / ``COMFYUI_PYTHON``: the host tier's session server (tests/host/harness.py)
  is started for the session.
Needs the ``playwright`` Python package (no ``playwright install``: the browser is Debian's
chromium, ``CHROMIUM`` overrides /usr/bin/chromium). Without any of these every browser test is
skipped with the reason. A server that does not answer fails the tier when the harness started
it (only a PM_BROWSER_URL nobody listens on is a skip), and so does a misconfigured host.

Fixtures: ``comfy_url`` (session, base URL), ``browser`` (session, Playwright Browser),
``front`` (function, a :class:`frontend.FrontEnd`: fresh context and page, default graph; fails
the test on page errors, console errors or 5xx responses), ``page`` (its Playwright Page).
"""
from __future__ import annotations

import os
import shutil
import urllib.error

import pytest

from prompt_media_pkg.tests.browser.frontend import CHROMIUM, SETTINGS, FrontEnd, http_json, launch_browser
from prompt_media_pkg.tests.comfy_host import ServerError, host_config
from prompt_media_pkg.tests.host.harness import comfy_host, comfy_server, test_models_dir  # noqa: F401

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return "playwright not installed (pip install playwright; no 'playwright install' needed)"
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    if not os.environ.get("PM_BROWSER_URL"):
        try:
            if host_config() is None:
                return "no host: set PM_BROWSER_URL or COMFYUI_PATH/COMFYUI_PYTHON"
        except ServerError:
            return None                    # misconfigured: the comfy_host fixture fails with the reason
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if reason is None:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.skip(reason=f"browser tier skipped: {reason}"))


@pytest.fixture(scope="session")
def comfy_url(request) -> str:
    url = os.environ.get("PM_BROWSER_URL", "").rstrip("/")
    ours = not url                             # the harness started this server: it must answer
    if ours:
        url = request.getfixturevalue("comfy_server").url.rstrip("/")
    try:
        http_json(url, "/api/settings", SETTINGS, "POST")   # no template modal, no 1.27.10 load error
    except urllib.error.HTTPError as e:        # a server answered, wrongly: never a skip
        pytest.fail(f"ComfyUI at {url}: POST /api/settings -> HTTP {e.code} {e.reason}", pytrace=False)
    except (urllib.error.URLError, OSError) as e:
        if ours:
            pytest.fail(f"the harness's ComfyUI at {url} does not answer: {e}", pytrace=False)
        pytest.skip(f"browser tier skipped: nothing answers at PM_BROWSER_URL={url} ({e})")
    return url


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


@pytest.fixture
def front(browser, comfy_url):
    fe = FrontEnd(browser, comfy_url)
    try:
        yield fe
    finally:
        fe.close()
    assert not fe.errors, "\n".join(fe.errors)


@pytest.fixture
def page(front):
    return front.page
