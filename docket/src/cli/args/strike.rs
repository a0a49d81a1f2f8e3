//! `docket strike` / `docket restore`: the words an operator types, checked.

use clap::Args;
use serde_json::Value;

use crate::model::{check_strike_value, parse_strike_value};
use crate::strikes::Operator;

/// `docket strike` / `docket restore`:
/// `TASK`, `TASK PARAMETER OPERATOR VALUE`, or `PARAMETER OPERATOR VALUE` for every task.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  docket strike process_order
  docket strike process_order customer_id == problematic-customer
  docket strike customer_id == int:42          (every task with a customer_id)
  docket strike charge amount between json:[100,500]

Values: int:7, float:1.5, bool:true, json:[1,10]; plain text is a string.")]
pub struct StrikeArgs {
    /// TASK, then optionally PARAMETER OPERATOR VALUE; or only PARAMETER OPERATOR VALUE.
    #[arg(required = true, num_args = 1..=4, value_name = "TASK | PARAMETER OPERATOR VALUE")]
    pub words: Vec<String>,
}

/// A strike instruction as the operator typed it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StrikeSpec {
    /// The task, or every task.
    pub task: Option<String>,
    /// The parameter condition, or the whole task.
    pub condition: Option<(String, Operator, Value)>,
}

impl StrikeArgs {
    /// Reads the words as a strike instruction.
    ///
    /// # Errors
    /// A message naming the word that does not fit.
    pub fn spec(&self) -> Result<StrikeSpec, String> {
        let condition = |parameter: &str, operator: &str, value: &str| {
            let operator: Operator = operator.parse()?;
            let value = parse_strike_value(value)?;
            check_strike_value(operator, &value)?;
            Ok::<_, String>((parameter.to_owned(), operator, value))
        };
        let nonempty = |text: &str, what: &str| {
            if text.trim().is_empty() {
                Err(format!("the {what} cannot be empty"))
            } else {
                Ok(text.to_owned())
            }
        };
        match self.words.as_slice() {
            [task] => Ok(StrikeSpec {
                task: Some(nonempty(task, "task name")?),
                condition: None,
            }),
            [parameter, operator, value] => Ok(StrikeSpec {
                task: None,
                condition: Some(condition(
                    &nonempty(parameter, "parameter")?,
                    operator,
                    value,
                )?),
            }),
            [task, parameter, operator, value] => Ok(StrikeSpec {
                task: Some(nonempty(task, "task name")?),
                condition: Some(condition(
                    &nonempty(parameter, "parameter")?,
                    operator,
                    value,
                )?),
            }),
            words => Err(format!(
                "expected TASK, TASK PARAMETER OPERATOR VALUE or PARAMETER OPERATOR VALUE, \
                 got {} words: {}",
                words.len(),
                words.join(" ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::args::Command;
    use crate::cli::args::tests::parse;

    #[test]
    fn strike_words() {
        let spec = |words: &[&str]| {
            let mut all = vec!["strike"];
            all.extend_from_slice(words);
            match parse(&all).unwrap().command {
                Command::Strike(args) => args.spec(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            spec(&["process_order"]).unwrap(),
            StrikeSpec {
                task: Some("process_order".into()),
                condition: None
            }
        );
        assert_eq!(
            spec(&["process_order", "customer_id", "==", "problematic-customer"]).unwrap(),
            StrikeSpec {
                task: Some("process_order".into()),
                condition: Some((
                    "customer_id".into(),
                    Operator::Equal,
                    json!("problematic-customer")
                )),
            }
        );
        assert_eq!(
            spec(&["amount", "between", "json:[1,10]"]).unwrap(),
            StrikeSpec {
                task: None,
                condition: Some(("amount".into(), Operator::Between, json!([1, 10]))),
            }
        );
        let error = spec(&["a", "b"]).unwrap_err();
        assert!(error.contains("got 2 words: a b"), "{error}");
        let error = spec(&["task", "n", "~=", "1"]).unwrap_err();
        assert!(error.contains("`~=`"), "{error}");
        let error = spec(&["task", "n", "==", "int:x"]).unwrap_err();
        assert!(error.contains("`int:x`"), "{error}");
        let error = spec(&["n", "between", "int:3"]).unwrap_err();
        assert!(error.contains("two-element array"), "{error}");
        assert!(parse(&["strike", "a", "b", "c", "d", "e"]).is_err());
    }
}
