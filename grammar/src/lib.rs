//! The text grammars docket reads in two places: in the `#[docket::task]` attribute, at
//! compile time, and on the command line and in `DOCKET_*` variables, at run time.
//!
//! A procedural macro crate can export nothing but macros, so the grammars live here,
//! with no dependencies, and both the macro crate and the runtime crate call them. Each
//! caller turns an [`Error`](duration::Error) into its own message (a compile error at the
//! user's tokens, a command-line error) around the reason given here.
//!
//! # Durations
//!
//! After surrounding white space is trimmed, a duration is one of:
//!
//! - **numbers with units**: one or more parts, each a number and a unit, largest unit
//!   first and each unit once: `250ms`, `1.5s`, `10m`, `1h30m`, `1d 2h`. Units are `ms`,
//!   `s`, `m`, `h` and `d`, in any case. A number is digits with at most one decimal
//!   point, which may lead (`.5s`) but not trail (`5.s`). White space may stand between a
//!   number and its unit and between parts;
//! - **bare seconds**: a number alone, `90` or `1.5`;
//! - **a clock**: `mm:ss` or `hh:mm:ss`, hours and minutes whole, seconds below 60 and
//!   possibly with a fraction (`00:00:01.25`), minutes below 60 when hours are given.
//!
//! Which of these a caller accepts is its [`Forms`](duration::Forms):
//!
//! - the attribute takes numbers with units only
//!   ([`Forms::UnitsOnly`](duration::Forms::UnitsOnly)). Its literals must carry a unit
//!   suffix, since `timeout = 30` says neither seconds nor milliseconds, and a string
//!   follows the same rule: `"30"` is refused as `30` is. A two-field clock (`"01:30"`)
//!   reads as hours and minutes to some and as minutes and seconds to others, so clocks
//!   are refused too;
//! - the command line and `DOCKET_*` variables take every form
//!   ([`Forms::All`](duration::Forms::All)), as operators write them:
//!   `--redelivery-timeout 90`, `--minimum-check-interval 250ms`, `--delay 01:30`.
//!
//! Arithmetic is exact: a decimal fraction is counted in nanoseconds without floating
//! point, so `0.1s` is 100,000,000 nanoseconds, and only what lies below a whole
//! nanosecond is dropped. A duration too long for [`std::time::Duration`] is an error,
//! never a wrapped or saturated value.
//!
//! ```
//! use std::time::Duration;
//!
//! use docket_grammar::duration::{self, Forms};
//!
//! assert_eq!(duration::parse("1h30m", Forms::UnitsOnly), Ok(Duration::from_secs(5_400)));
//! assert_eq!(duration::parse("01:30", Forms::All), Ok(Duration::from_secs(90)));
//!
//! let error = duration::parse("30s5m", Forms::All).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "`m` comes after `s`; write units from largest to smallest, once each"
//! );
//! ```

pub mod duration;
