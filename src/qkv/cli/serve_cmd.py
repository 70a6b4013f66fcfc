"""`qkv serve [RUN | --pretrained PATH]`: the explorer in the browser (or `--export DIR` for a static copy).
With no RUN it opens the Multi30k translator that qkv ships (``qkv serve g2p-cmudict``: the G2P model)."""

from __future__ import annotations

import argparse
import os

from qkv.errors import UserError

HELP = "the interactive attention explorer in the browser (local web server, 127.0.0.1 by default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="run directory (qkv train --out) or a shipped model name (default: multi30k-de-en, shipped with qkv)",
    )
    p.add_argument(
        "--pretrained",
        metavar="PATH",
        nargs="?",
        const=True,
        help="a Hugging Face checkpoint directory (PATH, or RUN when PATH is left out)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free port)")
    p.add_argument("--checkpoint", default="best", help="best | last | averaged | a .safetensors file")
    p.add_argument("--export", metavar="DIR", help="write a static page with precomputed data instead of serving")
    p.add_argument(
        "--text",
        action="append",
        default=[],
        help="with --export: a text to precompute (repeatable; default: the model's example)",
    )


def run(args: argparse.Namespace) -> int:
    from qkv.viz.inspector import open_inspector
    from qkv.viz.server import Explorer, export, make_server

    if isinstance(args.pretrained, str) and args.run:
        raise UserError("give either a RUN directory or --pretrained PATH, not both")
    if args.pretrained is True and not args.run:
        raise UserError("--pretrained needs a checkpoint directory (--pretrained PATH)")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: a port is a number from 0 to 65535 (0: any free port)")
    if args.export and os.path.exists(args.export) and not os.path.isdir(args.export):
        raise UserError(f"--export {args.export}: exists and is not a directory (the static copy is a folder)")
    path = args.pretrained if isinstance(args.pretrained, str) else args.run
    inspector = open_inspector(path, pretrained=bool(args.pretrained) or None, checkpoint=args.checkpoint)
    if not inspector.has_attention:
        raise UserError(inspector.no_attention_message())
    explorer = Explorer(inspector)
    if args.export:
        out = export(explorer, args.text or [inspector.example], args.export)
        print(f"wrote {out / 'index.html'} (open it in a browser; no server needed)")
        return 0
    if args.host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding to {args.host}: anyone who can reach this machine can use the explorer")
    try:
        server = make_server(explorer, args.host, args.port)
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL
    print(f"qkv explorer for {inspector.name}: http://{shown}:{port}/  (Ctrl-C to stop)", flush=True)
    if inspector.shipped:
        print(f"how this model was trained: {inspector.about}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
