//! Synthetic breach-dump generator (STUB).
