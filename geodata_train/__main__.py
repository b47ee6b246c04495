"""``python -m geodata_train sft|grpo|validate|tiny-model ...`` = ``geodata train ...``; ``predict`` = ``geodata predict``.

The module form exists for launchers that take a module, e.g.
``accelerate launch --config_file geodata_train/accelerate/zero3.yaml -m geodata_train sft geo-r-sft``.
"""

from __future__ import annotations

import sys

from geodata.cli import app


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] != "predict":
        args = ["train", *args]
    app(args=args, prog_name="python -m geodata_train")


if __name__ == "__main__":
    main()
