"""Issue 18 in the real front end: the "Prompt Media" sidebar tab lists a session made by the CLI
and shows it as the contact sheet's grid; an image shows its parameters; Regenerate and Vary
queue jobs whose sidecars name their parent; stars and tags survive a reload without touching an
image or a sidecar; the session's index.html works from disk with no server. Screenshots of the
tab and the page go to docs/img (the README shows them)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = "tiny_sd15.ckpt"
# 2 seeds x 2 prompts x 2 variations; a prompt full of characters HTML must escape
SESSION_YAML = """\
prompt_settings:
  prefix: "film still"
  negative: "blurry"
prompts:
  - "a lighthouse on a rocky coast"
  - 'a <b>bold</b> fox & "friends" </script><script>window.pwned=1</script>'
variations:
  time: {type: sequential, values: [dawn, dusk]}
seeds: [5, 6]
steps: 1
width: 64
height: 64
"""
BOLD_PROMPT = 'a <b>bold</b> fox & "friends" </script><script>window.pwned=1</script>'


@pytest.fixture(scope="module")
def output_dir(request) -> Path:
    if os.environ.get("PM_BROWSER_URL"):
        if not os.environ.get("PM_BROWSER_OUTPUT"):
            pytest.skip("set PM_BROWSER_OUTPUT to the output directory of the PM_BROWSER_URL server")
        return Path(os.environ["PM_BROWSER_OUTPUT"])
    return request.getfixturevalue("comfy_server").output_dir


@pytest.fixture(scope="module")
def cli_session(comfy_url, output_dir, tmp_path_factory) -> SimpleNamespace:
    """A session made by run_session.py (the CLI) through the test server."""
    yaml_file = tmp_path_factory.mktemp("gallery") / "gallery_test.yaml"
    yaml_file.write_text(SESSION_YAML, encoding="utf-8")
    root = f"browser/gallery_{time.time_ns()}"
    proc = subprocess.run([sys.executable, str(REPO / "run_session.py"), str(yaml_file), "--server", comfy_url,
                           "--checkpoint", CHECKPOINT, "--root", root],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = [line.strip() for line in proc.stdout.splitlines() if line.strip().endswith(".png")]
    assert len(saved) == 8, proc.stdout
    first = Path(saved[0]) if Path(saved[0]).is_absolute() else output_dir / saved[0]   # the CLI prints full paths
    folder = str(first.parent.relative_to(output_dir)).replace(os.sep, "/")
    return SimpleNamespace(folder=folder, path=output_dir / folder, names=[Path(p).name for p in saved],
                           output_dir=output_dir)


def open_tab(front):
    front.js("() => app.extensionManager.sidebarTab.toggleSidebarTab('prompt-media')")
    front.page.locator("[data-testid=pm-gallery]").wait_for()


def widen_sidebar(front, x: int = 700):
    gutter = front.page.locator(".p-splitter-gutter").first.bounding_box()
    y = gutter["y"] + gutter["height"] / 2
    front.page.mouse.move(gutter["x"] + gutter["width"] / 2, y)
    front.page.mouse.down()
    front.page.mouse.move(x, y, steps=5)
    front.page.mouse.up()


def open_session(front, folder: str):
    button = front.page.locator(f".pm-session[data-folder='{folder}']")
    button.wait_for()
    button.click()
    front.page.locator(".pmg-cell img").first.wait_for()


def cell(front, name: str):
    return front.page.locator(f".pmg-cell[data-name='{name}']")


def draw_gallery_tab(front, folder: str, name: str, out: Path) -> None:
    """The README's picture of the tab: a session's grid and one image's parameters."""
    front.page.set_viewport_size({"width": 1400, "height": 1000})
    open_tab(front)
    widen_sidebar(front)
    open_session(front, folder)
    front.page.locator("[name=size]").fill("112")
    front.page.locator("[name=size]").dispatch_event("input")
    cell(front, name).click()
    front.page.locator(".pmg-params").wait_for()
    front.page.mouse.move(1300, 900)
    front.page.wait_for_timeout(300)                 # thumbnails decoded
    front.page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 720, "height": 1000})


def draw_session_page(browser, page_file: Path, name: str, out: Path) -> None:
    """The README's picture of a session's index.html, opened from disk with no network."""
    context = browser.new_context(viewport={"width": 1100, "height": 860})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.locator(f".pmg-cell[data-name='{name}']").click()
        page.wait_for_function("() => [...document.querySelectorAll('.pmg-cell img')].every(i => i.complete)")
        page.screenshot(path=str(out))
    finally:
        context.close()


def sidecar(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tab_lists_the_cli_session_and_shows_its_grid_and_parameters(front, cli_session):
    # the session page written at the end left the gallery's index beside the root's session
    # state (not among the images): the tab's first open reads no sidecar
    root, dated = cli_session.folder.rsplit("/", 4)[0], cli_session.folder.split("/")[-4:]
    assert (cli_session.output_dir / root / ".prompt_media" / "gallery" / ("-".join(dated) + ".index")).is_file()
    assert not [p.name for p in cli_session.path.iterdir() if p.name.startswith(".")]
    front.page.set_viewport_size({"width": 1400, "height": 1000})
    open_tab(front)
    entry = front.page.locator(f".pm-session[data-folder='{cli_session.folder}']")
    entry.wait_for()
    assert re.search(r"gallery_test\.yaml.*8/8 · complete", entry.inner_text().replace("\n", " "))
    widen_sidebar(front)
    open_session(front, cli_session.folder)
    front.page.locator("[name=size]").fill("64")            # every row in view
    front.page.locator("[name=size]").dispatch_event("input")
    # the contact sheet's layout: a page per seed, rows = prompts, columns = the variation values
    pages = front.page.locator(".pmg-page").all_inner_texts()
    assert pages == ["seed 5 · 4 images", "seed 6 · 4 images"]
    assert front.page.locator(".pmg-col").all_inner_texts()[:2] == ["dawn", "dusk"]
    prompts = front.page.locator(".pmg-prompt").all_inner_texts()
    assert prompts[:2] == ["1. a lighthouse on a rocky coast", f"2. {BOLD_PROMPT}"]
    assert front.page.locator(".pmg-prompt b").count() == 0        # text, never markup
    shown = sorted(front.page.locator(".pmg-cell[data-name]").evaluate_all("els => els.map(e => e.dataset.name)"))
    assert shown == sorted(cli_session.names)
    src = cell(front, cli_session.names[0]).locator("img").get_attribute("src")
    assert "/view?" in src and "type=output" in src and cli_session.names[0] in src
    assert front.js("(src) => fetch(src).then(r => r.status)", src) == 200

    # an image: its parameters from the sidecar, the variation value marked in the prompt
    name = cli_session.names[1]                          # seed 5, prompt 1, dusk
    cell(front, name).click()
    params = front.page.locator(".pmg-params")
    params.wait_for()
    text = params.inner_text()
    assert "film still, a lighthouse on a rocky coast, dusk" in text
    assert re.search(r"seed\s+5\b", text) and re.search(r"steps\s+1\b", text)
    assert re.search(r"model\s+tiny_sd15\.ckpt", text)
    assert params.locator("mark").all_inner_texts() == ["dusk"]
    # Copy A1111: the text Civitai and A1111 read, on the clipboard
    front.context.grant_permissions(["clipboard-read", "clipboard-write"])
    front.page.get_by_role("button", name="Copy A1111").click()
    front.page.locator(".p-toast-message", has_text="Copied").wait_for()
    copied = front.js("() => navigator.clipboard.readText()")
    assert copied.startswith("film still, a lighthouse on a rocky coast, dusk\nNegative prompt: blurry\n")
    assert "Steps: 1," in copied and "Seed: 5," in copied

    # Full size: the PNG itself; Load workflow: the PNG's workflow into the editor
    full = front.page.get_by_role("link", name="Full size").get_attribute("href")
    assert "/view?" in full and name in full and "preview" not in full
    assert not front.js("() => app.graph._nodes.some(n => n.type === 'PromptMediaSessionSaver')")
    front.page.get_by_role("button", name="Load workflow").click()
    front.page.wait_for_function("() => app.graph._nodes.some(n => n.type === 'PromptMediaSessionSaver')")
    oom = front.js("() => app.graph._nodes.find(n => n.type === 'PromptMediaOOM').widgets"
                   ".find(w => w.name === 'job_index').value")
    assert oom == 1                                  # the job of this image, as the CLI queued it

    # filters: a variation value, then the prompt text
    front.page.select_option("[name=value]", "time=dawn")
    assert front.page.locator(".pm-count").inner_text() == "4 shown"
    front.page.fill("[name=text]", "lighthouse")
    assert front.page.locator(".pm-count").inner_text() == "2 shown"


def test_stars_and_tags_survive_a_reload_and_touch_no_image_or_sidecar(front, cli_session):
    name = cli_session.names[2]
    files = [cli_session.path / n for n in cli_session.names] + \
        [(cli_session.path / n).with_suffix(".json") for n in cli_session.names]
    before = {f: digest(f) for f in files}
    open_tab(front)
    open_session(front, cli_session.folder)
    cell(front, name).click()
    front.page.get_by_role("button", name="☆ star").click()
    front.page.locator(".pm-star-button", has_text="★ starred").wait_for()
    front.page.fill(".pm-tags input", "keeper, blue sky")
    front.page.locator(".pm-tags input").dispatch_event("change")
    marks_file = cli_session.path / "stars_and_tags.json"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "blue sky" not in (marks_file.read_text() if marks_file.exists() else ""):
        front.page.wait_for_timeout(100)
    assert json.loads(marks_file.read_text())["images"][name] == {"star": True, "tags": ["keeper", "blue sky"]}

    front.reload()
    open_tab(front)
    open_session(front, cli_session.folder)
    assert cell(front, name).locator(".pmg-star").count() == 1
    assert cell(front, cli_session.names[0]).locator(".pmg-star").count() == 0
    front.page.locator("[name=starred]").check()
    assert front.page.locator(".pm-count").inner_text() == "1 shown"
    cell(front, name).click()
    assert front.page.locator(".pm-tags input").input_value() == "keeper, blue sky"
    assert {f: digest(f) for f in files} == before


def test_index_html_works_from_disk_and_escapes_everything(browser, cli_session):
    page_file = cli_session.path / "index.html"
    assert page_file.exists()
    html = page_file.read_text(encoding="utf-8")
    assert "<b>bold</b>" not in html and "</script><script>window.pwned" not in html
    context = browser.new_context(viewport={"width": 1100, "height": 860})
    problems: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                  else (problems.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console: {m.text}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    try:
        page.goto(page_file.as_uri())
        page.locator(".pmg-cell img").first.wait_for()
        page.wait_for_function("() => [...document.querySelectorAll('.pmg-cell img')].every(i => i.complete && i.naturalWidth > 0)")
        titles = sorted(page.locator(".pmg-cell[data-name]").evaluate_all("els => els.map(e => e.title)"))
        seeds = {n: sidecar(cli_session.path / n)["parameters"]["seed"] for n in cli_session.names}
        assert titles == sorted(f"{n} · seed {s}" for n, s in seeds.items())          # every image
        prompts = page.locator(".pmg-prompt").all_inner_texts()
        assert prompts.count("1. a lighthouse on a rocky coast") == 2 and prompts.count(f"2. {BOLD_PROMPT}") == 2
        assert page.evaluate("() => window.pwned") is None and page.locator("b").count() == 0
        page.locator(f".pmg-cell[data-name='{cli_session.names[3]}']").click()
        assert "a <b>bold</b> fox" in page.locator("#details").inner_text()
    finally:
        context.close()
    assert problems == []


def test_the_docs_pictures_draw(front, browser, cli_session, tmp_path):
    """What make_readme_images.py draws (--only gallery), into temporary files: not blank."""
    from PIL import Image
    tab, page = tmp_path / "gallery_tab.png", tmp_path / "session_page.png"
    draw_gallery_tab(front, cli_session.folder, cli_session.names[1], tab)
    draw_session_page(browser, cli_session.path / "index.html", cli_session.names[3], page)
    for out, size in ((tab, (720, 1000)), (page, (1100, 860))):
        with Image.open(out) as im:
            assert im.size == size
            assert len(im.convert("RGB").getcolors(1 << 20) or ()) > 500     # thumbnails and text drawn


def test_regenerate_and_vary_queue_jobs_whose_sidecars_name_their_parent(front, cli_session):
    # last in this file: within the CLI session's minute the new images join its folder (and its page)
    before = set(cli_session.output_dir.rglob("*.png"))
    parent = cli_session.path / cli_session.names[0]
    front.page.set_viewport_size({"width": 1400, "height": 1000})
    open_tab(front)
    widen_sidebar(front)
    open_session(front, cli_session.folder)
    cell(front, parent.name).click()
    front.page.locator(".pmg-params").wait_for()
    toasts = front.page.locator(".p-toast-message")
    front.page.get_by_role("button", name="Regenerate").click()
    toasts.first.wait_for()
    assert toasts.first.inner_text().startswith("Regeneration queued"), toasts.all_inner_texts()
    front.page.get_by_role("button", name="Vary…").click()
    front.page.fill(".pm-vary-form [name=seed]", "12345")
    front.page.fill(".pm-vary-form [name=cfg]", "5.5")
    front.page.get_by_role("button", name="Queue variation").click()
    toasts.nth(1).wait_for()
    assert toasts.nth(1).inner_text().startswith("Variation queued"), toasts.all_inner_texts()

    deadline, made = time.monotonic() + 300, []
    while time.monotonic() < deadline:
        made = [p for p in set(cli_session.output_dir.rglob("*.png")) - before
                if p.with_suffix(".json").exists()]
        if len(made) >= 2:
            break
        front.page.wait_for_timeout(500)   # (not time.sleep: the page's requests pass through Python routes)
    assert len(made) == 2, made
    records = {p: sidecar(p) for p in made}
    relative = f"{cli_session.folder}/{parent.name}"
    for path, data in records.items():
        assert data["regenerated_from"]["image"] == relative
        assert data["regenerated_from"]["image_sha256"] == sidecar(parent)["image_sha256"]
        assert path.name not in cli_session.names or path.parent != parent.parent   # nothing overwritten
    exact = next(d for d in records.values() if not d["regenerated_from"]["changes"])
    varied = next(d for d in records.values() if d["regenerated_from"]["changes"])
    assert exact["regenerated_from"]["identical_pixels"] is True
    assert exact["parameters"]["prompt"] == sidecar(parent)["parameters"]["prompt"]
    assert varied["regenerated_from"]["changes"] == {"seed": 12345, "cfg": 5.5}
    assert varied["parameters"]["seed"] == 12345 and varied["parameters"]["cfg_scale"] == 5.5
    assert varied["regenerated_from"]["identical_pixels"] is False
