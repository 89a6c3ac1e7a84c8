"""ComfyUI glue: thin node classes over the pure modules in ``core``.

Each node module exports NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS; this file merges them
and installs the host hooks (folder, routes, prompt handler) once, see server_hooks.py.
"""
from . import contact_sheet, load_params, loader, lora_chain, oom, saver, server_hooks

NODE_MODULES = (loader, oom, lora_chain, saver, load_params, contact_sheet)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
for _module in NODE_MODULES:
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

server_hooks.install()
