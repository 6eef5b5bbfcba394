"""Headless subcommands and the TUI launcher; each module has add_parser() and run()."""
