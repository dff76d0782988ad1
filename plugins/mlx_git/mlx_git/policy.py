"""What to do when the working tree differs from its last commit (``mlx.version_manager.on_dirty``).

=========  ==================================================================================================
policy     behaviour
=========  ==================================================================================================
``ask``    only when stdin is a terminal: add or leave out untracked files, then commit now (you type the
           message), run the last commit and save the diff, or abort
``error``  refuse, with one line listing the files (the default without a terminal: a job never waits)
``record`` run the last commit; the uncommitted diff is saved as ``metadata/uncommitted.patch``
``commit`` commit everything now, with a message that says mlxcore made it, and run that commit
=========  ==================================================================================================

Questions go to stderr and answers are read from stdin, and only when the caller says stdin is a terminal:
end of input is an abort, never a hang or a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from .errors import DirtyTreeError
from .repository import TreeStatus

POLICIES = ("ask", "error", "record", "commit")


@dataclass
class Decision:
    """The outcome: commit ``paths`` with ``message`` first, or run HEAD as it is (the rest is recorded)."""

    policy: str  #: the policy that decided (``ask`` resolved to what the user chose is still ``ask``)
    commit: bool = False
    paths: list[str] = field(default_factory=list)
    message: str = ""


def default_message(script: str, policy: str) -> str:
    return f"mlxcore: automatic commit of uncommitted changes before launching {script} (on_dirty={policy})"


def decide(status: TreeStatus, policy: str | None, interactive: bool, root: str, script: str,
           stdin: TextIO, stderr: TextIO) -> Decision:
    """Apply ``policy`` (``None``: ``ask`` with a terminal, ``error`` without) to a tree in ``status``.

    :raises DirtyTreeError: policy ``error``, ``ask`` without a terminal, or the user aborted.
    """
    policy = policy or ("ask" if interactive else "error")
    if status.clean:
        return Decision(policy)
    if policy == "record":
        return Decision(policy)
    if policy == "commit":
        return Decision(policy, True, [*status.changed, *status.untracked], default_message(script, policy))
    if policy == "ask" and interactive:
        return Prompt(stdin, stderr).ask(status, root, script)
    why = "on_dirty=ask needs a terminal and stdin is not one" if policy == "ask" else f"on_dirty={policy}"
    raise DirtyTreeError(f"the working tree of {root} has uncommitted changes ({why}): {status.describe()}; "
                         "commit them, or launch with +mlx.version_manager.on_dirty=record (run the last commit, "
                         "save the diff) or =commit (commit them automatically)")


class Prompt:
    """The ``ask`` dialogue, on explicit streams."""

    def __init__(self, stdin: TextIO, stderr: TextIO) -> None:
        self.stdin = stdin
        self.stderr = stderr

    def ask(self, status: TreeStatus, root: str, script: str) -> Decision:
        self.say(f"mlxcore git: the working tree of {root} differs from its last commit")
        for label, paths in (("modified", status.changed), ("untracked", status.untracked)):
            for path in paths[:20]:
                self.say(f"  {label:9} {path}")
            if len(paths) > 20:
                self.say(f"  ... and {len(paths) - 20} more {label}")
        include: list[str] = []
        if status.untracked:
            answer = self.choose(f"{len(status.untracked)} untracked path(s): [a]dd them to a commit, [i]gnore "
                                 "them (the run goes without them), or [q]uit?", "aiq")
            if answer == "a":
                include = list(status.untracked)
        if not status.changed and not include:
            return Decision("ask")  # only untracked files, left out: run HEAD, the patch keeps them
        answer = self.choose("[c]ommit now, [r]un the last commit and save the diff, or [q]uit?", "crq")
        if answer == "r":
            return Decision("ask")
        message = self.line("commit message (empty for a default): ") or default_message(script, "ask")
        return Decision("ask", True, [*status.changed, *include], message)

    def say(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def line(self, question: str) -> str:
        self.stderr.write(question)
        self.stderr.flush()
        try:
            answer = self.stdin.readline()
        except OSError:  # the terminal went away (EIO after a hang-up)
            answer = ""
        if not answer:
            raise DirtyTreeError("no answer (end of input): launch aborted, the working tree is unchanged")
        return answer.strip()

    def choose(self, question: str, letters: str) -> str:
        while True:
            answer = self.line(question + " ").lower()[:1]
            if answer == "q":
                raise DirtyTreeError("launch aborted at the prompt: the working tree is unchanged")
            if answer and answer in letters:
                return answer
            self.say(f"please answer one of: {', '.join(letters)}")
