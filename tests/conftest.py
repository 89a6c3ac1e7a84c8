"""Test set-up shared by every tier.

The repository folder is a ComfyUI package (its __init__ imports the ComfyUI glue), so the unit
tier registers it under the name ``prompt_media_pkg`` *without* running its __init__: tests import
``prompt_media_pkg.core.*`` and never a top-level ``nodes`` (that name is ComfyUI's own module).
"""
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "prompt_media_pkg"

if PACKAGE not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        PACKAGE, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)   # not executed on purpose
