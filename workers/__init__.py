"""Stateless Dramatiq workers: broker setup, store, pipeline bookkeeping and one module per stage.

Import ``workers.actors`` to get every actor registered on the configured broker.
"""

from workers.upstream_warnings import silence_known

# Every feedsync process (the CLI, the Dramatiq worker processes, the console) imports this package
# before any dependency that could warn.
silence_known()
