"""``auditcorr doctor``'s security checks: who else can read the state, how tokens travel."""

from __future__ import annotations

from connectors.base import Check
from daemon import filemodes
from daemon.config import ApiSection, Config, plain_http_tokens


def checks(config: Config) -> list[Check]:
    found = [file_modes(config)]
    if config.api is not None:
        found.append(api_transport(config.api, config))
    return found


def file_modes(config: Config) -> Check:
    """The state directory 0750 and the store's files 0640, or tighter."""
    state = config.daemon.state_dir
    if not state.is_dir():
        return Check("state private", True, f"{state} not created yet (the daemon makes it 0750)")
    loose = []
    if (mode := filemodes.loose(state, filemodes.DIR_MODE)) is not None:
        loose.append(f"{state} {mode:04o}")
    if config.store.type == "sqlite":
        for path in filemodes.store_files(config.store_path):
            if (mode := filemodes.loose(path, filemodes.FILE_MODE)) is not None:
                loose.append(f"{path} {mode:04o}")
    if loose:
        return Check(
            "state private",
            False,
            "readable by others: " + ", ".join(loose),
            "the daemon tightens them when it starts; or chmod 0750 the directory, 0640 the files",
        )
    return Check("state private", True, f"{state} 0750 or tighter, its files 0640 or tighter")


def api_transport(api: ApiSection, config: Config) -> Check:
    """Bearer tokens over plain HTTP on a network are flagged even when the config allows it."""
    exposed = plain_http_tokens(api, config.sources)
    scheme = "https" if api.cert_file is not None else "http"
    if exposed:
        return Check(
            "api tokens encrypted",
            False,
            f"{', '.join(exposed)} travel over plain HTTP to {api.listen} (allow_plain_http)",
            "set [api] cert_file and key_file unless a TLS proxy on this host terminates HTTPS",
        )
    return Check("api tokens encrypted", True, f"{scheme}://{api.listen}")
