"""Everything the extension does to the running host, in one place, called once at package load
(nodes/__init__.py): the input/prompt_media/ folder, the HTTP routes, the POST /prompt handler.
Node modules themselves have no import-time side effects."""
from __future__ import annotations

from . import gallery
from .host import register_prompt_media_folder
from .loader import mark_model_folders
from .lora_chain import check_yaml_loras
from .routes import add_routes


def install() -> None:
    register_prompt_media_folder()
    try:
        from server import PromptServer
    except ImportError:          # a script importing the package without ComfyUI's server
        return
    server = getattr(PromptServer, "instance", None)
    if server is None:
        return
    add_routes(server.routes)
    server.add_on_prompt_handler(mark_model_folders)
    gallery.add_routes(server.routes)
    server.add_on_prompt_handler(check_yaml_loras)
