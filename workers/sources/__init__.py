"""API sources of people: Microsoft Graph (Entra ID), Salesforce and Workday (Get_Workers, RaaS),
pulled into a CSV feed file.

``fetch(spec, settings, sink)`` is the whole entry point: every page, then the file under ``sink``,
or a FetchError and no file. The fetch stage (before parse) calls it and registers the file like
any other; from there the run is the same run.
"""

from workers.sources.pull import FetchResult, FetchSpec, fetch

__all__ = ["FetchResult", "FetchSpec", "fetch"]
