//! The runtime linked into every dittoc executable.
