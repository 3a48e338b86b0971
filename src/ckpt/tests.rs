//! End-to-end tests of the public API over files built with the writer.
