"""``auditcorr whois``: what a name resolves to in the identity map, and that person's
last events."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from daemon.cli.base import EXIT_OK, Commands
from daemon.cli.printing import print_events, print_json
from daemon.config import Config
from daemon.store.base import EventQuery


def register(commands: Commands) -> None:
    whois = commands.add("whois", _whois, "what a name resolves to, and that person's last events")
    whois.add_argument("name", help="person id, name, e-mail, account, IAM ARN or session name")
    whois.add_argument("--limit", type=int, default=20, help="events to show")
    whois.add_argument("--json", action="store_true", help="JSON output")


def _whois(args: argparse.Namespace, config: Config) -> int:
    from daemon.changes.report import person_lines
    from daemon.store.open import open_store

    people = config.identity.identity_map().lookup(args.name)
    store = open_store(config.store_settings(), readonly=True)
    try:
        if people:
            docs = [
                doc
                for person in people
                for doc in store.search(EventQuery(actor=person.id, limit=args.limit))
            ]
        else:
            # Unresolved principals stay visible as themselves.
            docs = store.search(EventQuery(user=args.name, limit=args.limit))
    finally:
        store.close()
    if args.json:
        print_json({"name": args.name, "people": [p.id for p in people], "events": docs})
        return EXIT_OK
    if not people:
        print(f"{args.name}: nobody in the identity map; events of that user name:")
    for person in people:
        print("\n".join(person_lines(person)))
    print_events(docs, ZoneInfo(config.daemon.timezone))
    return EXIT_OK
