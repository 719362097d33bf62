"""Stateless Dramatiq workers: broker setup, store, pipeline bookkeeping and one module per stage.

Import ``workers.actors`` to get every actor registered on the configured broker.
"""
