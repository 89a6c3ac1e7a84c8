"""Pure logic of Prompt Media: no ComfyUI imports here, so it is testable anywhere."""
