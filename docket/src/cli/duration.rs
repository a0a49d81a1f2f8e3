//! Durations on the command line and in `DOCKET_*` variables, in every form of
//! [`docket_grammar`]: bare seconds (`90`, `1.5`), numbers with units, alone or chained
//! (`250ms`, `90s`, `5m`, `1h30m`, `1d`), and clocks (`mm:ss`, `hh:mm:ss`).

use std::time::Duration;

use docket_grammar::duration::{Forms, parse};

/// The accepted forms, appended to every error.
const FORMS: &str = "use seconds (`90`, `1.5`), a number with a unit \
    (`250ms`, `90s`, `5m`, `2h`, `1d`), units chained (`1h30m`) or a clock \
    (`mm:ss`, `hh:mm:ss`)";

/// Parses a duration written in any of the accepted forms.
///
/// # Errors
/// A message naming the text and listing the accepted forms.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    parse(text, Forms::All)
        .map_err(|reason| format!("invalid duration `{text}`: {reason}; {FORMS}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_accepted() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("01:30"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1:02:03"), Ok(Duration::from_secs(3723)));
    }

    #[test]
    fn errors_name_the_text_the_problem_and_the_forms() {
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            "invalid duration `5x`: `x` is not a unit (ms, s, m, h or d); use seconds \
             (`90`, `1.5`), a number with a unit (`250ms`, `90s`, `5m`, `2h`, `1d`), units \
             chained (`1h30m`) or a clock (`mm:ss`, `hh:mm:ss`)"
        );
        let error = parse_duration(" 1:75 ").unwrap_err();
        assert!(
            error.starts_with("invalid duration ` 1:75 `: the seconds must be below 60; use"),
            "{error}"
        );
    }
}

#[cfg(test)]
mod bad_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_duration_panics_and_every_error_names_it(
            text in prop_oneof![".*", "[0-9.:]{0,8}(ms|s|m|h|d|x)?[0-9]{0,3}(ms|s|m|h|d)?"]
        ) {
            if let Err(error) = parse_duration(&text) {
                prop_assert!(error.contains(&format!("`{text}`")), "{error}");
            }
        }
    }
}
