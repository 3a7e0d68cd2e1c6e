"""The `ncii` command line: a thin layer that parses options, calls the library, renders."""
