"""Start the app: ``python -m app [streamlit options]``, from any folder.

``streamlit run app/main.py`` reads ``.streamlit/config.toml`` from the *current* folder only,
so started elsewhere it would listen on every interface. This launcher passes the repository's
``.streamlit/config.toml`` settings as command-line flags (which take precedence over any
config file) and always binds :data:`DEFAULT_ADDRESS`, the loopback interface, unless the
command line names another ``--server.address`` explicitly. Streamlit options given on the
command line come after the defaults and win, e.g.::

    python -m app --server.port 8502

The Streamlit server cannot be rebound from inside ``app/main.py`` (it is listening before the
script runs), so this launcher is where the address is decided.

``python -m app --demo`` (what ``make app`` runs) first provides the demo, as ``python -m
tvr.demo`` and ``python -m analysis.export --demo`` do (building or re-exporting only what is
missing or stale), in this same process, then serves: one interpreter start and one ``torch``
import instead of three and two (seconds on 2 cores), and the server's warm-up
(:mod:`app.warmup`) finds torch already imported.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
REPO = APP_DIR.parent
MAIN = APP_DIR / "main.py"
CONFIG = REPO / ".streamlit" / "config.toml"
DEFAULT_ADDRESS = "127.0.0.1"


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def default_options(config: Path = CONFIG) -> dict[str, str]:
    """``{"server.address": "127.0.0.1", ...}``: the repository's config file as flag values,
    with the address forced to :data:`DEFAULT_ADDRESS`.

    Raises:
        ValueError: the config file exists but is not valid TOML (naming the file).
    """
    settings: dict[str, object] = {}
    if config.is_file():
        try:
            settings = _flatten(tomllib.loads(config.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{config} is not valid TOML: {exc}") from None
    settings["server.address"] = DEFAULT_ADDRESS
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in settings.items()}


def streamlit_argv(user_args: list[str], config: Path = CONFIG) -> list[str]:
    """The arguments of ``streamlit``: ``run <app/main.py> --opt value ... <user_args>``."""
    flags: list[str] = []
    for key, value in default_options(config).items():
        flags += [f"--{key}", value]
    return ["run", str(MAIN), *flags, *user_args]


DEMO_FLAG = "--demo"


def split_demo_flag(args: list[str]) -> tuple[bool, list[str]]:
    """``(whether --demo was given, the other arguments in order)``."""
    return DEMO_FLAG in args, [a for a in args if a != DEMO_FLAG]


def prepare_demo() -> int:
    """Provide the demo runs and their bundles (``python -m tvr.demo`` then ``python -m
    analysis.export --demo``, in this process); returns the first non-zero exit status, or 0."""
    from analysis.export import main as export_main
    from tvr.demo.__main__ import main as demo_main

    return demo_main([]) or export_main(["--demo"])


def main(argv: list[str] | None = None) -> int:
    """Run the Streamlit server (blocks until it stops); returns its exit status.

    Before the server starts, a background thread begins the first session's work (imports,
    bundle scan, the default bundles and the Overview's computations; :mod:`app.warmup`)."""
    from streamlit.web import cli as stcli  # before the warm-up thread imports beside it

    from app.warmup import start_server_warm_up

    demo, user_args = split_demo_flag(list(sys.argv[1:] if argv is None else argv))
    if demo:
        status = prepare_demo()
        if status:
            return status
    args = streamlit_argv(user_args)
    start_server_warm_up()
    try:
        stcli.main(args=args, prog_name="streamlit", standalone_mode=True)
    except SystemExit as exc:  # click ends with SystemExit in standalone mode
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
