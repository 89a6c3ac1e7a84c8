"""Prompt Media for ComfyUI: YAML prompt files -> OOM variation sessions with sidecars.

Loaded by ComfyUI as a package under whatever folder name it has in custom_nodes/, so every
import inside is relative (ComfyUI has a top-level module called ``nodes`` of its own).
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
