"""A NUL byte past the first 64 KiB of a CSV (the sniff that refuses binary files reads no further)
once failed its whole file on every attempt: COPY refused the block, the Python reader read the
NUL, and PostgreSQL's text refused it. Now it is a row error on its line and column, in every kind."""

from __future__ import annotations

from producers import queries
from tests.conftest import sql
from tests.contentdata import META_HEADER, course
from tests.contentdata import setup as hmm_setup
from tests.stubpipeline import HEADER, Pipeline

#: Enough lines that the NUL comes after the sniff at the file's start.
FILLER = "".join(f"u{i}@x.com,Name{i},L,,Dept\n" for i in range(3000))


def test_a_nul_in_a_users_field_far_into_the_file_is_a_row_error_and_the_rest_imports(pipeline: Pipeline) -> None:
    body = HEADER + FILLER + "ann@x.com,A\x00nn,A,,S\nbob@x.com,Bob,B,,S\n"
    run = queries.run_detail(pipeline.import_files(("import/user/internal/p.csv", body)))
    assert run is not None and run["status"] == "completed_with_errors", run
    assert sql("SELECT line, column_no, column_name, code, value FROM sync.row_errors") == [
        (3002, 2, "First Name", "nul_character", None)
    ]
    assert sql("SELECT count(*) FROM lms.users WHERE email IN ('bob@x.com', 'u2999@x.com')") == [(2,)]


def test_a_nul_in_a_content_field_far_into_the_file_is_a_row_error_and_the_rest_imports(pipeline: Pipeline) -> None:
    hmm_setup(pipeline)
    filler = "".join(course(f"F{i}", f"Filler {i}") for i in range(500))
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + filler + course("P1", "Time\x00Keeping"))
    run = pipeline.sync("hmm")
    assert run["status"] == "completed_with_errors", run
    assert sql("SELECT line, column_name, code FROM sync.row_errors") == [(502, "Title", "nul_character")]
    assert sql("SELECT count(*) FROM lms.courses") == [(500,)]
