//! The dashboard's pages, rendered on the server with `maud` (which escapes every
//! value it is given).

pub(super) mod layout;
pub(super) mod others;
pub(super) mod overview;
pub(super) mod run;
pub(super) mod tasks;
