from collections.abc import Iterator

import pytest

from tests.faults.private_servers import PrivatePostgres, PrivateRabbit, private_postgres, private_rabbitmq
from tests.services import rabbit_broker, start

__all__ = ["rabbit_broker", "start"]


# Module scope: started when the first test of a module asks for it, so only the tests that stop or
# restart a server pay for one, and stopped after that module's feedsync processes (the `start`
# fixture, function scope) have been stopped.
@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own, for a test that restarts the server."""
    with private_postgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def own_rabbitmq() -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of this module's own, for a test that stops the broker."""
    with private_rabbitmq() as rabbit:
        yield rabbit
