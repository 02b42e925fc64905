"""Run the CLI as ``python -m alliance_cli``."""

from alliance_cli.cli.app import main

if __name__ == "__main__":
    main()
