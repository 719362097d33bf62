"""The peer: dlt merging the same feed into PostgreSQL on e-mail. Runs in benchmarks/.venv-dlt
(never a feedsync dependency). Arguments: the feed, the database's DSN, the pipeline's name (the
database's: two benches on one server keep apart). Prints the seconds the load took."""

from __future__ import annotations

import sys
import time

import dlt
import pyarrow as pa
import pyarrow.csv as pv


def main(path: str, dsn: str, name: str) -> None:
    # dlt lives in benchmarks/.venv-dlt, out of mypy's sight: its decorator is untyped there.
    @dlt.resource(name="users", write_disposition="merge", primary_key="email")  # type: ignore[untyped-decorator]
    def users() -> object:
        reader = pv.open_csv(
            path,
            read_options=pv.ReadOptions(block_size=16 << 20),
            convert_options=pv.ConvertOptions(column_types={"Phone": pa.string()}),
        )
        for batch in reader:
            yield pa.Table.from_batches([batch])

    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.postgres(dsn),
        dataset_name="dlt_users",
        progress=None,
    )
    t0 = time.perf_counter()
    pipeline.run(users())
    print(f"{time.perf_counter() - t0:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
