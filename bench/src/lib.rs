//! Benchmarks, not tests: each service measured against the limit set by what it cannot avoid,
//! side by side in one run on one machine, because absolute numbers on a shared 2-core machine
//! drift and ratios do not (issue 13).
//!
//! - [`cli`]: the command line; runs the suites and writes the report.
//! - `stack`: a fresh devstack per suite, the services from the release binaries.
//! - `wrk`: the load generator (`wrk` 4.1) and its percentiles, read from a Lua `done()` hook.
//! - `cpu`: CPU seconds per process during a run, from `/proc/<pid>/stat`.
//! - `memory`: resident memory now and at its peak, from `/proc/<pid>/status`.
//! - `baseline`: the bare actix-web server RandomNumber is compared with.
//! - `suites`: `randomnumber`, `getcode`, `drain`, `storage-ops`, `latency`, `startup`.
//! - `timing`: percentiles (nearest rank) of measured durations.
//! - `report`: the human table and the JSON file; `chart`: getcode's SVG chart.

mod baseline;
mod chart;
pub mod cli;
mod cpu;
mod memory;
mod report;
mod stack;
mod suites;
mod timing;
mod wrk;
