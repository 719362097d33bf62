"""Everything that starts work: the file-drop watcher, the scheduler, admin commands and the CLI.

Producers publish typed messages (schemas.messages) through workers.broker.publish or the outbox;
they never import actor modules.
"""
