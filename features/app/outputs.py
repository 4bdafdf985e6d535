"""recommend.py's ``--output``: one row per face (or per photo without a face), the columns of
:data:`~features.app.records.ROW_COLUMNS`, to a Parquet file in batches (for programs) or to a
CSV file (for spreadsheets: the web page's CSV download, row for row)."""
import errno
import os

from features.app.records import ROW_COLUMNS, csv_writer, flat_rows, spreadsheet_row
from features.files import StagedFile

#: Rows held before they are written as one row group: a feed of thousands of faces stays a
#: few megabytes in memory, and the file is not cut into tiny groups.
BATCH_ROWS = 1000


class OutputError(Exception):
    """The ``--output`` file cannot be written; the message names it and says why."""


def output_sink(path):
    """The writer of ``path``, by its suffix (:data:`SINKS`)."""
    return SINKS[path.suffix.lower()](path)


class RowSink:
    """Writes rows to a temporary file beside ``path`` that :meth:`close` moves over it: a run
    that is killed, or cannot finish the file (a full disk), leaves ``path`` as it was, never
    a file cut short."""

    def __init__(self, path):
        self.path = path
        if path.is_dir():  # else only the last step, the move, would find it out
            raise self.error(IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
        try:
            self.staged = StagedFile(path, follow_link=True)  # a link named by --output is the user's
        except OSError as exc:
            raise self.error(exc) from None
        try:
            self.open()
        except BaseException as exc:
            self.staged.discard()
            if isinstance(exc, OSError):
                raise self.error(exc) from None
            raise

    def open(self):
        """Start the staged file."""
        raise NotImplementedError

    def add(self, record):
        """Write (or hold) the record's rows."""
        raise NotImplementedError

    def finish(self):
        """Write what is held and end the staged file."""
        raise NotImplementedError

    def close(self):
        """Finish the file and move it over ``path``."""
        self.writing(self.finish)
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


class ParquetSink(RowSink):
    """Parquet, in row groups of :data:`BATCH_ROWS`, so a long job holds few rows in memory."""

    def open(self):
        import pyarrow as pa  # here: a run without --output does not pay for it
        import pyarrow.parquet as pq

        self.pa, self.rows = pa, []
        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in ROW_COLUMNS.items()])
        self.writer = pq.ParquetWriter(self.staged.name, self.schema)

    def add(self, record):
        self.rows += flat_rows(record)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self):
        if self.rows:
            self.writing(self.writer.write_table, self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def finish(self):
        self.flush()
        self.writer.close()


class CsvSink(RowSink):
    """CSV as the web page's download writes it: behind UTF-8's byte-order mark, without which
    Excel reads "Café.jpg" as "CafÃ©.jpg", and each text a spreadsheet would run as a formula
    quoted; written row by row."""

    def open(self):
        self.file = open(self.staged.name, "w", encoding="utf-8-sig", newline="")
        self.writer = csv_writer(self.file)

    def add(self, record):
        self.writing(self.writer.writerows, map(spreadsheet_row, flat_rows(record)))

    def finish(self):
        self.file.close()

    def writing(self, step, *args):
        """As :meth:`RowSink.writing`, and the file closed once removed: left open, it would
        write its buffer to nothing at exit, and fail again on the full disk."""
        try:
            super().writing(step, *args)
        except OutputError:
            try:
                self.file.close()  # the file is removed: what its buffer holds goes nowhere
            except OSError:  # the full disk again
                pass
            raise


#: The ``--output`` suffixes and their writers.
SINKS = {".parquet": ParquetSink, ".csv": CsvSink}
