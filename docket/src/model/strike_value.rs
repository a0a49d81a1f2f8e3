//! Strike values typed as text, as the command line and the dashboard take them.

use serde_json::Value;

use super::Operator;

/// The typed forms a strike value may take, appended to every error.
const VALUE_FORMS: &str = "use `int:7`, `float:1.5`, `bool:true`, `json:[1,10]` or plain \
    text for a string (`str:` forces a string)";

/// Parses a strike value: `int:7`, `float:1.5`, `bool:true`, `json:[1,10]`, `str:text`;
/// anything else is the text itself, as a string.
///
/// # Errors
/// A message naming the value when a typed prefix is followed by something of another
/// type.
pub(crate) fn parse_strike_value(text: &str) -> Result<Value, String> {
    let invalid = |what: &str| format!("invalid strike value `{text}`: {what}; {VALUE_FORMS}");
    let Some((kind, rest)) = text.split_once(':') else {
        return Ok(Value::String(text.to_owned()));
    };
    match kind {
        "int" => rest
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| invalid(&format!("`{rest}` is not a whole number"))),
        "float" => {
            let number: f64 = rest
                .trim()
                .parse()
                .map_err(|_| invalid(&format!("`{rest}` is not a number")))?;
            serde_json::Number::from_f64(number)
                .map(Value::Number)
                .ok_or_else(|| invalid(&format!("`{rest}` is not a finite number")))
        }
        "bool" => match rest.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(invalid(&format!("`{rest}` is not true or false"))),
        },
        "json" => serde_json::from_str(rest)
            .map_err(|error| invalid(&format!("`{rest}` is not JSON ({error})"))),
        "str" => Ok(Value::String(rest.to_owned())),
        // `https://...`, `a:b`: text that merely contains a colon.
        _ => Ok(Value::String(text.to_owned())),
    }
}

/// Checks that `value` suits `operator`: `between` needs `[low, high]`.
///
/// # Errors
/// A message naming the value.
pub(crate) fn check_strike_value(operator: Operator, value: &Value) -> Result<(), String> {
    match (operator, value) {
        (Operator::Between, Value::Array(items)) if items.len() == 2 => Ok(()),
        (Operator::Between, other) => Err(format!(
            "invalid strike value `{other}`: `between` needs a two-element array such as \
             `json:[1,10]` (inclusive bounds)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_value_type() {
        let cases = [
            ("int:7", json!(7)),
            ("int:-12", json!(-12)),
            ("float:1.5", json!(1.5)),
            ("float:2", json!(2.0)),
            ("bool:true", json!(true)),
            ("bool:FALSE", json!(false)),
            ("json:[1,10]", json!([1, 10])),
            ("json:{\"a\":null}", json!({"a": null})),
            ("json:\"quoted\"", json!("quoted")),
            ("problematic-customer", json!("problematic-customer")),
            ("str:int:7", json!("int:7")),
            ("https://example.com", json!("https://example.com")),
            ("", json!("")),
            ("7", json!("7")),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_strike_value(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn typed_values_of_the_wrong_type_are_refused_by_name() {
        let cases = [
            ("int:seven", "`seven` is not a whole number"),
            ("int:1.5", "`1.5` is not a whole number"),
            ("float:fast", "`fast` is not a number"),
            ("float:inf", "`inf` is not a finite number"),
            ("bool:yes", "`yes` is not true or false"),
            ("json:[1,", "`[1,` is not JSON"),
        ];
        for (text, reason) in cases {
            let error = parse_strike_value(text).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid strike value `{text}`: {reason}")),
                "{text}: {error}"
            );
            assert!(error.contains("`json:[1,10]`"), "{error}");
        }
    }

    #[test]
    fn between_needs_two_bounds() {
        assert!(check_strike_value(Operator::Between, &json!([1, 10])).is_ok());
        assert!(check_strike_value(Operator::Equal, &json!(3)).is_ok());
        let error = check_strike_value(Operator::Between, &json!([1])).unwrap_err();
        assert!(error.contains("`[1]`"), "{error}");
        assert!(error.contains("two-element array"), "{error}");
    }
}

#[cfg(test)]
mod bad_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_strike_value_panics_and_every_error_names_it(
            text in prop_oneof![".*", "(int|float|bool|json|str|):.{0,12}"]
        ) {
            if let Err(error) = parse_strike_value(&text) {
                prop_assert!(error.contains(&format!("`{text}`")), "{error}");
            }
        }
    }
}
