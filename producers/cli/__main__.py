"""``python -m producers.cli``: how the supervisor and the tests start feedsync's processes."""

from producers.cli import main

main()
