//! docket's end-to-end suite: one binary, every scenario on `memory://` and on a
//! `redis-server` the test starts itself.

mod access;
mod admission;
mod availability;
mod behaviors;
mod chaos;
mod cli;
mod dashboard;
mod deployments;
mod faults;
mod fleets;
mod injection;
mod lifecycle;
mod results;
mod strikes;
mod support;
mod tasks;
mod traces;
mod waiting;
