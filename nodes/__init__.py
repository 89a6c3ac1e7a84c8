"""ComfyUI glue: thin node classes over the pure modules in ``core``.

Each node module exports NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS; this file merges them.
"""
from importlib import import_module

NODE_MODULES = ("loader", "oom", "lora_chain", "saver", "load_params", "contact_sheet")

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

for _name in NODE_MODULES:
    try:
        _mod = import_module(f".{_name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{_name}":   # a real import error inside the module: surface it
            raise
        continue                               # module not written yet
    NODE_CLASS_MAPPINGS.update(_mod.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_mod.NODE_DISPLAY_NAME_MAPPINGS)

from . import routes  # noqa: E402,F401  (registers the HTTP routes on import)
