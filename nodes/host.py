"""Small helpers over ComfyUI's own machinery (folder_paths), shared by the node modules."""
from __future__ import annotations

import os
import shutil

import folder_paths

PROMPT_MEDIA_FOLDER = "prompt_media"
YAML_EXTENSIONS = {".yaml", ".yml"}
CATEGORY = "Prompt Media"
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_prompts")


def prompt_media_dir() -> str:
    return os.path.join(folder_paths.get_input_directory(), PROMPT_MEDIA_FOLDER)


def register_prompt_media_folder() -> None:
    """input/prompt_media/ holds the YAML files the loader lists. When it is first created it gets
    the example files, so the example workflow runs out of the box; existing files are never touched."""
    path = prompt_media_dir()
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        for name in sorted(os.listdir(EXAMPLES_DIR)):
            target = os.path.join(path, name)
            if name.endswith(tuple(YAML_EXTENSIONS)) and not os.path.exists(target):
                shutil.copyfile(os.path.join(EXAMPLES_DIR, name), target)
    if PROMPT_MEDIA_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[PROMPT_MEDIA_FOLDER] = ([path], YAML_EXTENSIONS)


def prompt_media_files() -> list[str]:
    return sorted(folder_paths.get_filename_list(PROMPT_MEDIA_FOLDER))


def prompt_media_path(name: str) -> str | None:
    """Full path of a listed file; None for anything not inside the folder (no '..', no abs)."""
    return folder_paths.get_full_path(PROMPT_MEDIA_FOLDER, name)


def send_event(name: str, data: dict) -> None:
    """A websocket message ``prompt_media.<name>`` to every open front end (the extension's JS
    shows it); PromptServer.send_sync may be called from the executing thread."""
    try:
        from server import PromptServer
        PromptServer.instance.send_sync(f"prompt_media.{name}", data)
    except Exception:   # no server (scripts, tests): the log has it
        pass
