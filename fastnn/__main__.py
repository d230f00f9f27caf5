"""``python -m fastnn``: ``--version``, ``--config`` (``--json``), and ``demo [args]``."""

import importlib
import sys

USAGE = """usage: python -m fastnn [--version | --config [--json] | demo [args ...]]

  --version      print fastnn's version
  --config       print the installation report (versions, backends, build, CPU, thread pools);
                 paste it into bug reports. With --json, print it as JSON.
  demo [args]    run the demo (python -m fastnn demo --help for its options)
"""


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command in ("-V", "--version"):
        from . import __version__

        print(f"fastnn {__version__}")
        return 0
    if command == "--config":
        if rest not in ([], ["--json"]):
            print(USAGE, end="", file=sys.stderr)
            return 2
        if rest:
            import json

            from ._config import get_config

            print(json.dumps(get_config(), indent=2))
        else:
            from ._config import show_config

            show_config()
        return 0
    if command == "demo":
        try:  # imported only here: the demo may pull in optional dependencies
            _demo = importlib.import_module("fastnn._demo")
        except ModuleNotFoundError as exc:
            if exc.name != "fastnn._demo":
                raise
            print("python -m fastnn demo: this fastnn has no demo", file=sys.stderr)
            return 1
        status = _demo.main(rest)
        return 0 if status is None else status
    print(f"python -m fastnn: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
