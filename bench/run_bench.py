"""Run the mlplab benchmark outside the CLI: ``python bench/run_bench.py [--quick] [--json]``.

The same as ``mlplab bench``; see :mod:`mlplab.bench` for what is measured.
"""

from __future__ import annotations

import argparse
import json

from mlplab.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description="cohort engine vs the per-model PyTorch loop")
    parser.add_argument("--quick", action="store_true", help="a few models and steps")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    result = run_bench(quick=args.quick, device=args.device)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())


if __name__ == "__main__":
    main()
