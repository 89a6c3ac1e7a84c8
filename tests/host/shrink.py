"""Small, fast copies of prompt media files for runs on a CPU host.

The loader outputs width, height and steps from the YAML itself (top level, or a preset under
``workflows:``), and the shipped workflow wires them straight into EmptyLatentImage and KSampler,
so the only way to run an example small is a modified copy of the file: every ``width:``,
``height:`` and ``steps:`` line gets the small value, and the top level gets any key it lacks.
Used by tests/host/test_examples_host.py and scripts/make_readme_images.py.
"""
from __future__ import annotations

import re


def shrink(yaml_text: str, *, width: int, height: int, steps: int) -> str:
    values = {"width": width, "height": height, "steps": steps}
    text = yaml_text
    for key, value in values.items():
        text = re.sub(rf"^(\s*{key}\s*:\s*)\d+(\s*(?:#.*)?)$", rf"\g<1>{value}\g<2>", text, flags=re.M)
    missing = [key for key in values if not re.search(rf"^{key}\s*:", text, re.M)]
    if missing:
        text = text.rstrip("\n") + "\n" + "".join(f"{key}: {values[key]}\n" for key in missing)
    return text
