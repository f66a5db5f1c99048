"""`edge-sdk deploy`: cross-build for a Linux board, run it there over SSH."""

from __future__ import annotations

import argparse
import shlex

from edge_sdk.cli.arrays import (
    check_output_path,
    load_inputs,
    save_results,
)
from edge_sdk.cli.options import (
    MODEL_HELP,
    count,
    shape_option,
    threads_option,
    tuning_option,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("deploy", help="cross-build for a Linux board, run it there over SSH")
    d.add_argument("model", help=MODEL_HELP)
    shape_option(d)
    d.add_argument("--board", required=True, help="rpi3, rpi3-aarch64, rpi4, rpi5, linux-...")
    d.add_argument("--host", required=True, help="user@address (or an ~/.ssh/config alias)")
    d.add_argument("--identity", help="SSH private key")
    d.add_argument("--port", type=int, help="SSH port")
    d.add_argument("--input", help=".npy or .npz (keys input_0, ...) inputs; default: a "
                                   "fixed pattern")
    d.add_argument("--output", help=".npy (one output) or .npz (keys output_0, output_1, ...)")
    d.add_argument("--report", help="write report.json (latency percentiles, peak memory)")
    d.add_argument("--bench", type=count(1_000_000, least=0), default=0,
                   help="time this many runs")
    threads_option(d)
    tuning_option(d)
    d.add_argument("--remote-dir", default="edge-sdk", help="on the board (default ~/edge-sdk)")
    d.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an unknown host key on first use (a changed key is refused)")
    d.add_argument("--known-hosts", help="known_hosts file (default: ssh's)")
    d.add_argument("--run-prefix", help="command before the program on the board, e.g. "
                                        "'qemu-aarch64-static' to emulate")
    d.set_defaults(func=cmd_deploy)


def cmd_deploy(args: argparse.Namespace) -> int:
    from edge_sdk import api

    graph = api.load(args.model)
    check_output_path(args, graph)
    x = load_inputs(args.input) if args.input else None
    result = api.deploy(graph, args.board, args.host, inputs=x, bench=args.bench,
                        threads=args.threads,
                        identity=args.identity, port=args.port, remote_dir=args.remote_dir,
                        accept_new_host_key=args.accept_new_host_key,
                        known_hosts=args.known_hosts,
                        run_prefix=shlex.split(args.run_prefix) if args.run_prefix else None,
                        tuning=args.tuning)
    save_results(args, result)
    lat = result.report["latency"]
    line = (f"{graph.name} on {args.host} ({args.board}): {len(result.output_list[0])} "
            f"inference(s), {result.report['threads']} thread(s)")
    if lat["bench_runs"]:
        line += (f"; latency over {lat['bench_runs']} runs p50 {lat['p50_ns'] / 1e6:.3f} ms, "
                 f"p90 {lat['p90_ns'] / 1e6:.3f} ms, p99 {lat['p99_ns'] / 1e6:.3f} ms")
    print(line + f"; peak memory {result.report['peak_rss_kb']} KB")
    return 0
