"""A python_policy sample: hide or refuse bad words (docs/python.md).

    {"name": "python_policy", "config": {"module": "profanity_policy",
      "path": ["samples/python"], "options": {"mode": "replace"}}}

Runs on aurora-host's service thread for every chat message: keep it fast.
"""
import re

from aurora_policy import Message, Verdict, drop, replace

BAD = re.compile(r"\b(darn|heck|frak)\b", re.IGNORECASE)
OPTIONS = {"mode": "replace"}  # or "drop"; the plugin's "options" object


def configure(options: dict[str, str]) -> None:
    OPTIONS.update(options)


def on_message(msg: Message) -> Verdict | None:
    if not BAD.search(msg.text or ""):
        return None
    if OPTIONS["mode"] == "drop":
        return drop("watch your language")
    return replace(BAD.sub(lambda m: "*" * len(m.group()), msg.text or ""))
