from tests.services import rabbit_broker, start

__all__ = ["rabbit_broker", "start"]
