#!/usr/bin/env python3
"""Start ComfyUI with this repository and the project's tiny test models, exactly as the host
tests do, and keep it running until Ctrl-C: for the README pictures (scripts/make_readme_images.py)
or a look at the nodes in a browser.

    .venv/bin/python scripts/serve_test_host.py [--port 8270] [--keep]

The host: COMFYUI_PATH / COMFYUI_PYTHON, else the one scripts/setup_test_host.sh laid out. The
server's base dir (output/, input/, its log) is a fresh temporary folder, removed on exit unless
--keep. Run it with the test venv's python (.venv/bin/python, made by scripts/test.sh).
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8270)
    ap.add_argument("--keep", action="store_true", help="keep the base dir (output, log) on exit")
    args = ap.parse_args()
    # the repo as ``prompt_media_pkg`` without running its ComfyUI __init__ (as the tests do)
    spec = importlib.util.spec_from_file_location("prompt_media_pkg", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    sys.modules["prompt_media_pkg"] = importlib.util.module_from_spec(spec)
    from prompt_media_pkg.tests.comfy_host import ServerError, ServerFactory, build_test_models, host_config

    try:
        host = host_config()
    except ServerError as e:
        sys.exit(f"serve_test_host: {e}")
    if host is None:
        sys.exit("serve_test_host: no host: run scripts/setup_test_host.sh or set COMFYUI_PATH and COMFYUI_PYTHON")
    factory = ServerFactory(host, build_test_models(host), base_prefix="/tmp/pm-serve-",
                            ports=range(args.port, args.port + 1))
    try:
        server = factory()
        print(f"ComfyUI {server.url} (base {server.base}, log {server.log_path}); Ctrl-C stops it", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except ServerError as e:
        print(f"serve_test_host: {e}", file=sys.stderr)
        return 1
    finally:
        for base in factory.close(keep=args.keep):
            print(f"kept {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
