//! Shared helpers for heist's criterion benchmarks.
