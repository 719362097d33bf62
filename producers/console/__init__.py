"""The admin console: a server-rendered layer over the CLI's queries and commands."""
