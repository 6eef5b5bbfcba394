"""Allow `python -m lstmtui`."""

from lstmtui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
