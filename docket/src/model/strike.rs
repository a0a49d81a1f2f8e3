//! [`Strike`]: an operator's instruction to block calls, and how it matches a call.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// How a strike compares a call's argument with its value.
///
/// ```
/// use docket::strikes::Operator;
///
/// assert_eq!("between".parse::<Operator>().unwrap(), Operator::Between);
/// assert_eq!(Operator::GreaterOrEqual.to_string(), ">=");
/// assert!("=~".parse::<Operator>().unwrap_err().contains("`=~`"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `between`: inclusive, the value is a two-element array `[low, high]`.
    Between,
}

impl Operator {
    /// Every operator, in the order the documentation lists them.
    pub const ALL: [Self; 7] = [
        Self::Equal,
        Self::NotEqual,
        Self::Greater,
        Self::GreaterOrEqual,
        Self::Less,
        Self::LessOrEqual,
        Self::Between,
    ];

    /// The operator as written on the command line and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "==",
            Self::NotEqual => "!=",
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Between => "between",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operator {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("unknown strike operator `{text}`; use ==, !=, >, >=, <, <= or between")
            })
    }
}

/// One strike: a task, a condition on a parameter, or a condition on one task's calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Strike {
    task: Option<String>,
    condition: Option<(String, Operator, Value)>,
}

impl Strike {
    /// Every call of `task`.
    pub fn task(task: impl Into<String>) -> Self {
        Self {
            task: Some(task.into()),
            condition: None,
        }
    }

    /// Every call, of any task, whose argument `parameter` compares to `value` with
    /// `operator`; narrow it to one task with [`for_task`](Self::for_task).
    pub fn when(parameter: impl Into<String>, operator: Operator, value: impl Into<Value>) -> Self {
        Self {
            task: None,
            condition: Some((parameter.into(), operator, value.into())),
        }
    }

    /// Only calls of `task`.
    #[must_use]
    pub fn for_task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// The task it applies to, or `None` for every task.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The parameter, operator and value it compares, or `None` for whole-task strikes.
    pub fn condition(&self) -> Option<(&str, Operator, &Value)> {
        self.condition
            .as_ref()
            .map(|(parameter, operator, value)| (parameter.as_str(), *operator, value))
    }

    /// A strike from its parts, as an instruction on the wire spells it (it may not be
    /// valid: see [`validate`](Self::validate)).
    pub(crate) fn from_parts(
        task: Option<String>,
        condition: Option<(String, Operator, Value)>,
    ) -> Self {
        Self { task, condition }
    }

    /// Its task, parameter, operator and value as text ('' when absent). Two strikes
    /// are the same strike when these are equal.
    pub(crate) fn fields(&self) -> [String; 4] {
        let task = self.task.clone().unwrap_or_default();
        match &self.condition {
            None => [task, String::new(), String::new(), String::new()],
            Some((parameter, operator, value)) => [
                task,
                parameter.clone(),
                operator.as_str().to_owned(),
                value.to_string(),
            ],
        }
    }

    /// Checks the strike can be applied.
    ///
    /// # Errors
    /// A message naming what is missing or malformed.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.task.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("the task name of a strike cannot be empty".into());
        }
        match &self.condition {
            None if self.task.is_none() => {
                Err("a strike needs a task, a parameter condition, or both".into())
            }
            Some((parameter, _, _)) if parameter.trim().is_empty() => {
                Err("the parameter of a strike cannot be empty".into())
            }
            Some((_, Operator::Between, value))
                if value.as_array().is_none_or(|bounds| bounds.len() != 2) =>
            {
                Err(format!(
                    "`between` needs a two-element array [low, high], got `{value}`"
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether a call of `function` with these arguments (a JSON object) is stricken.
    pub(crate) fn matches(&self, function: &str, args: &Value) -> bool {
        if self.task.as_deref().is_some_and(|task| task != function) {
            return false;
        }
        let Some((parameter, operator, expected)) = &self.condition else {
            return true;
        };
        let Some(actual) = args.get(parameter) else {
            return false;
        };
        if let Some(hit) = compare(actual, *operator, expected) {
            hit
        } else {
            tracing::warn!(
                task = function, parameter = %parameter, actual = %actual, operator = %operator,
                expected = %expected,
                "a strike compares values of different types: not a match"
            );
            false
        }
    }
}

impl fmt::Display for Strike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = self.task.as_deref().unwrap_or("*");
        match &self.condition {
            None => write!(f, "{task}"),
            Some((parameter, operator, value)) => {
                write!(f, "{task} {parameter} {operator} {value}")
            }
        }
    }
}

/// How `actual` compares to `expected`; `None` when their types cannot be compared.
fn compare(actual: &Value, operator: Operator, expected: &Value) -> Option<bool> {
    use std::cmp::Ordering;
    if operator == Operator::Between {
        let [low, high] = expected.as_array()?.as_slice() else {
            return None;
        };
        let above = order(actual, low)? != Ordering::Less;
        let below = order(actual, high)? != Ordering::Greater;
        return Some(above && below);
    }
    if matches!(operator, Operator::Equal | Operator::NotEqual) {
        let same = match (actual, expected) {
            (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
            | (Value::Bool(_), Value::Bool(_)) => order(actual, expected)? == Ordering::Equal,
            (Value::Null, Value::Null) => true,
            (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
                actual == expected
            }
            _ => return None,
        };
        return Some(same == (operator == Operator::Equal));
    }
    let ordering = order(actual, expected)?;
    Some(match operator {
        Operator::Greater => ordering == Ordering::Greater,
        Operator::GreaterOrEqual => ordering != Ordering::Less,
        Operator::Less => ordering == Ordering::Less,
        Operator::LessOrEqual => ordering != Ordering::Greater,
        Operator::Equal | Operator::NotEqual | Operator::Between => unreachable!("handled above"),
    })
}

/// The order of two numbers, two strings or two booleans.
fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => {
            match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
                (Some(a), Some(b), _, _) => Some(a.cmp(&b)),
                (_, _, Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
            }
        }
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hit(strike: &Strike, function: &str, args: &Value) -> bool {
        strike.matches(function, args)
    }

    #[test]
    fn every_operator() {
        let cases = [
            (Operator::Equal, json!(5), json!(5), true),
            (Operator::Equal, json!(5), json!(5.0), true),
            (Operator::Equal, json!("a"), json!("b"), false),
            (Operator::NotEqual, json!("a"), json!("b"), true),
            (Operator::NotEqual, json!(true), json!(true), false),
            (Operator::Greater, json!(10), json!(7), true),
            (Operator::Greater, json!(7), json!(7), false),
            (Operator::GreaterOrEqual, json!(7), json!(7), true),
            (Operator::Less, json!(1.5), json!(2), true),
            (Operator::Less, json!("apple"), json!("banana"), true),
            (Operator::LessOrEqual, json!(3), json!(2), false),
            (Operator::LessOrEqual, json!(false), json!(true), true),
            (Operator::Between, json!(1), json!([1, 10]), true),
            (Operator::Between, json!(10), json!([1, 10]), true),
            (Operator::Between, json!(11), json!([1, 10]), false),
            (Operator::Between, json!("m"), json!(["a", "z"]), true),
        ];
        for (operator, actual, expected, want) in cases {
            let strike = Strike::when("n", operator, expected.clone());
            assert_eq!(
                hit(&strike, "any", &json!({ "n": actual })),
                want,
                "{actual} {operator} {expected}"
            );
        }
    }

    #[test]
    fn incompatible_types_are_no_match() {
        for operator in Operator::ALL {
            let value = if operator == Operator::Between {
                json!([1, 10])
            } else {
                json!(5)
            };
            let strike = Strike::when("n", operator, value);
            assert!(!hit(&strike, "t", &json!({ "n": "five" })), "{operator}");
        }
        assert!(!hit(
            &Strike::when("n", Operator::Equal, json!(null)),
            "t",
            &json!({ "n": 0 })
        ));
    }

    #[test]
    fn scopes() {
        let whole = Strike::task("charge");
        assert!(hit(&whole, "charge", &json!({})));
        assert!(!hit(&whole, "refund", &json!({})));
        let any_task = Strike::when("customer", Operator::Equal, "c1");
        assert!(hit(&any_task, "charge", &json!({ "customer": "c1" })));
        assert!(hit(&any_task, "refund", &json!({ "customer": "c1" })));
        assert!(!hit(&any_task, "refund", &json!({ "other": "c1" })));
        let one_task = Strike::when("customer", Operator::Equal, "c1").for_task("charge");
        assert!(hit(&one_task, "charge", &json!({ "customer": "c1" })));
        assert!(!hit(&one_task, "refund", &json!({ "customer": "c1" })));
    }

    #[test]
    fn validation_names_the_problem() {
        let error = Strike {
            task: None,
            condition: None,
        }
        .validate()
        .unwrap_err();
        assert!(error.contains("needs a task"), "{error}");
        let error = Strike::when("n", Operator::Between, json!([1]))
            .validate()
            .unwrap_err();
        assert!(error.contains("`[1]`"), "{error}");
        assert!(Strike::task("t").validate().is_ok());
    }
}
