"""Contracts only: settings, message models, connection config, states, SQL migrations.

Nothing in this package talks to RabbitMQ or PostgreSQL; workers and producers both import it.
"""
