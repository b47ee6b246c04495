"""``python -m training sft|grpo|validate|tiny-model ...`` = ``geodata train ...``; ``predict`` = ``geodata predict``.

The module form exists for launchers that take a module, e.g.
``accelerate launch --config_file training/accelerate/zero3.yaml -m training sft geo-r-sft``.
"""

from __future__ import annotations

import sys

from geodata.cli import app


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] != "predict":
        args = ["train", *args]
    app(args=args, prog_name="python -m training")


if __name__ == "__main__":
    main()
