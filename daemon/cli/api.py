"""``auditcorr api hash-token``: the HTTP API's helpers."""

from __future__ import annotations

import argparse
import sys

from daemon.cli.base import EXIT_CONFIG, EXIT_OK, Commands
from daemon.config import Config


def register(commands: Commands) -> None:
    api = commands.group("api", "HTTP API helpers")
    hash_token = api.add_config_free(
        "hash-token",
        _hash_token,
        "make a new API token and print it with the hash [api] tokens keep",
        description="Make a new random API token (or hash one read from standard input with"
        " --stdin) and print the hash to put in [[api.tokens]]; the config never holds the token.",
    )
    hash_token.add_argument("--stdin", action="store_true", help="hash a token read from stdin")


def _hash_token(args: argparse.Namespace, _config: Config | None) -> int:
    from daemon.api.auth import hash_token, new_token

    if args.stdin:
        token = sys.stdin.readline().strip()
        if not token:
            print("auditcorr: no token on standard input", file=sys.stderr)
            return EXIT_CONFIG
        print(hash_token(token))
        return EXIT_OK
    token = new_token()
    print(f"token: {token}")
    print("add to the config (the token itself is not kept there):")
    print("[[api.tokens]]")
    print('name = "CHANGE-ME"       # who holds it')
    print('role = "reader"          # reader | changes | admin')
    print(f'hash = "{hash_token(token)}"')
    return EXIT_OK
