"""Small helpers over ComfyUI's own machinery (folder_paths), shared by the node modules."""
from __future__ import annotations

import os
import shutil

import folder_paths

from ..core.hashing import sha256_file
from ..core.trigger_words import trigger_words

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


# The file hash cache lives in ComfyUI's user directory (--user-directory; ComfyUI/user by
# default), beside ComfyUI's own settings and database: it describes this installation's model
# files, not any output, and it outlives updates of the extension. Not under user/default/,
# which the front end can read and write through /userdata.
HASH_CACHE = ("prompt_media", "file_hashes.json")


def hash_cache_path() -> str:
    return os.path.join(folder_paths.get_user_directory(), *HASH_CACHE)


def cached_sha256(path: str) -> str:
    """sha256 of a model file, computed once ever (core/hashing.py, persistent cache)."""
    return sha256_file(path, hash_cache_path())


def lora_trigger_words(name) -> tuple[str, ...]:
    """The trigger words of an installed LoRA (``name`` as ComfyUI lists it); () when unknown."""
    path = folder_paths.get_full_path("loras", name) if isinstance(name, str) and name else None
    return trigger_words(path).words if path else ()


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


MODEL_FOLDERS = ("checkpoints", "diffusion_models")


class ModelFileCombo(list):
    """A model file name as an output type that connects to Load Checkpoint's ``ckpt_name`` and
    Load Diffusion Model's ``unet_name``.

    ComfyUI checks a link by ``output_type != input_type``, and for combos the type is the list
    itself: this one compares equal to the *current* list of either folder (the one the target
    input has at validation), so adding a model while ComfyUI runs does not break the link;
    /object_info shows the list it was created with."""

    def __eq__(self, other):
        if isinstance(other, list):
            return any(list(other) == folder_paths.get_filename_list(f) for f in MODEL_FOLDERS)
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None


def model_file_type() -> ModelFileCombo:
    return ModelFileCombo(sorted({n for f in MODEL_FOLDERS for n in folder_paths.get_filename_list(f)}))


class HiddenKeyInputs(dict):
    """An ``optional`` inputs dict that also admits ``hidden_keys``, which the server-side prompt
    handler writes into a posted prompt (e.g. a refusal for VALIDATE_INPUTS to report).

    ComfyUI drops inputs INPUT_TYPES does not claim; claiming these keeps them, while
    /object_info (which serialises the dict) shows only the real inputs."""

    def __init__(self, inputs: dict, hidden_keys: dict):
        super().__init__(inputs)
        self.hidden_keys = hidden_keys          # key -> input spec

    def __contains__(self, key):
        return dict.__contains__(self, key) or key in self.hidden_keys

    def __getitem__(self, key):
        return super().__getitem__(key) if dict.__contains__(self, key) else self.hidden_keys[key]
