"""The run: where a run's state lives and who may change it.

create.py ...... the one place a run is inserted (coalescing queued triggers); producers call it
start.py ....... start the oldest queued run (one active per connection), claim its files; the next
route.py ....... the stage graph, declared (``NEXT``): the only way a stage sends the next one; fan-in
gate.py ........ a run's gate (stages enter shared, a cancel exclusive) and cancel
stage.py ....... a stage's one transaction (``run_stage``)
lifecycle.py ... every transition of ``sync.runs.status``, each guarded in SQL
record.py ...... the run's counts, note and plan: with lifecycle, the only writes to ``sync.runs``
hook.py ........ what the ledger asks of the run: does it take messages, what a failed stage does
ledger.py ...... did this message run (Dramatiq middleware): attempts, outcomes, dead letters
outbox.py ...... next-stage messages written with the effect, published after commit
bundles.py ..... a bundle run waits for all its files
journal.py ..... what each load changed, so a run can be undone
undo.py ........ the load of an undo run
retention.py ... processed files and old journals removed on time
people_files.py  which stored files hold people, removed once their run has ended
"""
