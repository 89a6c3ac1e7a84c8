"""The generation-params API: a JSON sidecar beside each image, with the same base name.

``image.png`` -> ``image.json``. Pure Python (no ComfyUI), so any tool can read and write
sidecars::

    json_path = save_generation_params("/out/001_seed_7.png", "prompt-media", "0.2.0",
                                       task_id=1, timestamp="20251013_150530",
                                       parameters={"prompt": "a lake", "seed": 7})
    params = load_generation_params("/out/001_seed_7.png")   # None when there is no sidecar

Sidecars are written atomically and never replace an existing file unless ``overwrite=True``.
This module is the stable public name of the API; the format lives in ``core.sidecar``
(which also reads a sidecar into a typed record, ``read_sidecar``).
"""
from .sidecar import (
                      GenerationParamsError,
                      get_params_path,
                      load_generation_params,
                      params_exist,
                      save_generation_params,
)

__all__ = ["GenerationParamsError", "get_params_path", "load_generation_params", "params_exist",
           "save_generation_params"]
