"""recommend.py's ``--output``: one row per face (or per photo without a face), written to a
Parquet file in batches."""
import errno
import os

from features.app.records import ROW_COLUMNS, flat_rows
from features.files import StagedFile

#: Rows held before they are written as one row group: a feed of thousands of faces stays a
#: few megabytes in memory, and the file is not cut into tiny groups.
BATCH_ROWS = 1000


class OutputError(Exception):
    """The ``--output`` file cannot be written; the message names it and says why."""


class ParquetSink:
    """Writes rows to a Parquet file in batches, so a long job holds few of them in memory.

    The rows go to a temporary file beside ``path`` that :meth:`close` moves over it: a run
    that is killed, or cannot finish the file (a full disk), leaves ``path`` as it was, never
    a file without its footer.
    """

    def __init__(self, path):
        import pyarrow as pa  # here: a run without --output does not pay for it
        import pyarrow.parquet as pq

        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in ROW_COLUMNS.items()])
        self.pa, self.path = pa, path
        if path.is_dir():  # else only the last step, the move, would find it out
            raise self.error(IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
        try:
            self.staged = StagedFile(path, follow_link=True)  # a link named by --output is the user's
        except OSError as exc:
            raise self.error(exc) from None
        try:
            self.writer = pq.ParquetWriter(self.staged.name, self.schema)
        except BaseException as exc:
            self.staged.discard()
            if isinstance(exc, OSError):
                raise self.error(exc) from None
            raise
        self.rows = []

    def add(self, record):
        self.rows += flat_rows(record)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self):
        if self.rows:
            self.writing(self.writer.write_table, self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self):
        """Finish the file and move it over ``path``."""
        self.flush()
        self.writing(self.writer.close)
        self.writing(self.staged.publish)

    def writing(self, step, *args):
        """Run a step of writing the file; an error removes the file and is an OutputError."""
        try:
            step(*args)
        except OSError as exc:
            self.staged.discard()
            raise self.error(exc) from None

    def error(self, exc):
        """The one-line OutputError of an OSError while writing the file."""
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return OutputError(f"--output {self.path}: cannot write the file ({reason})")
