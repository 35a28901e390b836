"""A psycopg cursor with server-side binding on Django's connection, for the batch statements."""
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def raw_cursor():
    """Yield a psycopg cursor that binds parameters on the server; errors come out as django.db errors.

    Django's psycopg 3 backend binds parameters on the client, which quotes
    every array element in Python; binding on the server sends the arrays
    in binary and is several times faster for batches.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        with psycopg.Cursor(connection.connection) as cursor:
            yield cursor
