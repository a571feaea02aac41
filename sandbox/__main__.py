"""``python -m sandbox [--seed N] [--port P] [--host H] [--today YYYY-MM-DD]``: serve the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import datetime as dt

from sandbox.server import run_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--port", type=int, default=0, help="first provider's port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None, help="the world's today (UTC)")
    args = parser.parse_args(argv)
    run_forever(seed=args.seed, port=args.port, host=args.host, today=args.today)


if __name__ == "__main__":
    main()
