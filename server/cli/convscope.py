"""The `convscope` command: train, evaluate, calibrate, atlas, bench, serve, worker."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "train": ("server.cli.train", "train the CNN on MNIST and write a weights file"),
    "evaluate": ("server.cli.evaluate", "test accuracy and confusion matrix of a weights file"),
    "calibrate": (
        "server.cli.calibrate",
        "fit the digit_score statistics (is it a digit at all?) into a weights file",
    ),
    "atlas": (
        "server.cli.atlas",
        "what each filter looks for, and where the test digits sit (from MNIST's test set)",
    ),
    "bench": ("server.cli.bench", "time the engine (and PyTorch, when installed)"),
    "serve": ("server.cli.serve", "run the web app and REST API with uvicorn"),
    "worker": ("server.cli.worker", "train the jobs of a shared broker's queue (Redis, Valkey)"),
}


def usage() -> str:
    lines = ["usage: convscope COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`convscope COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"convscope: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest))


if __name__ == "__main__":
    raise SystemExit(main())
