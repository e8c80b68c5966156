"""The ``memsim`` command line: one module per subcommand, found automatically.

A subcommand module defines ``add_parser(subparsers)``, which adds its parser and
sets ``func`` (taking the parsed namespace, returning an exit status) as default.
"""
