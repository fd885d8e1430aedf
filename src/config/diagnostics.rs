//! Config errors that name the file, line, column and the fix; all of them, not only the first.
