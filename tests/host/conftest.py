"""Host tier: real headless ComfyUI. The fixtures live in harness.py (documented there) so the
browser tier can import the same ones; this file only registers them for tests/host."""
from prompt_media_pkg.tests.host.harness import *  # noqa: F403  (fixtures and hooks)
