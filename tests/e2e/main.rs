//! docket's end-to-end suite: one binary, every scenario on `memory://` and on a
//! `redis-server` the test starts itself.

mod cli;
mod faults;
mod lifecycle;
mod support;
mod tasks;
