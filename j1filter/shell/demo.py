"""``j1filter demo``: the whole pipeline against the bundled J1 API simulator.

Starts the simulator on a free loopback port, runs ``j1filter collect --once`` against it
and pipes its output through ``j1filter``, as two real processes, exactly as a deployment
would. No J1 account is needed; the demo credentials are public values.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Sequence

import orjson

from ..collect.simulator import DEMO_ACCOUNT_ID, DEMO_TOKEN, Simulator


def demo_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="j1filter demo",
        description="Run `j1filter collect | j1filter` against the bundled J1 API simulator "
                    "and print the ECS documents.")
    parser.add_argument("--compact", action="store_true", help="one JSON document per line")
    parser.add_argument("filter_args", nargs=argparse.REMAINDER,
                        help="options passed on to the filter (after --)")
    args = parser.parse_args(argv)
    filter_args = [a for a in args.filter_args if a != "--"]
    env = dict(os.environ, J1_API_TOKEN=DEMO_TOKEN, J1_ACCOUNT_ID=DEMO_ACCOUNT_ID)
    with Simulator() as simulator:
        print(f"j1filter demo: J1 API simulator at {simulator.url}", file=sys.stderr)
        collect = subprocess.Popen(
            [sys.executable, "-m", "j1filter", "collect", "--once", "--quiet", "--rate-limit", "0",
             "--endpoint", simulator.url], stdout=subprocess.PIPE, env=env)
        mapper = subprocess.Popen([sys.executable, "-m", "j1filter", *filter_args],
                                  stdin=collect.stdout, stdout=subprocess.PIPE)
        assert collect.stdout is not None and mapper.stdout is not None
        collect.stdout.close()  # the filter owns the pipe now
        for line in mapper.stdout:
            if args.compact:
                sys.stdout.buffer.write(line)
            else:
                sys.stdout.write(orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")
        collected, mapped = collect.wait(), mapper.wait()
    sys.stdout.flush()
    return collected or mapped
