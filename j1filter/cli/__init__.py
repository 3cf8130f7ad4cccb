"""The command line: argument parsing and every subcommand, at the top of the package."""
