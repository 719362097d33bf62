"""The run: where a run's state lives and who may change it.

flow.py ........ create (coalescing queued triggers), start, fan-in, cancel, the next queued run
lifecycle.py ... every transition of ``sync.runs.status``, each guarded in SQL
ledger.py ...... stage bookkeeping (Dramatiq middleware): attempts, outcomes, dead letters
outbox.py ...... next-stage messages written with the effect, published after commit
bundles.py ..... a bundle run waits for all its files
journal.py ..... what each load changed, so a run can be undone
undo.py ........ the load of an undo run
retention.py ... processed files and old journals removed on time
people_files.py  which stored files hold people, removed once their run has ended
"""
