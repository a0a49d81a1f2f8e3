//! The strikes in effect, and the instructions of the strikes stream that change them.

use std::collections::HashMap;

use serde_json::Value;

use super::{Operator, Strike};

/// One entry of the `{p}:strikes` stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Instruction {
    Strike(Strike),
    Restore(Strike),
    /// Written by compaction: forget everything before; the strikes in effect follow.
    Reset,
}

/// The stream fields of a strike: task, parameter, operator, value ('' when absent).
/// Two strikes are the same strike when these are equal.
pub(crate) fn strike_fields(strike: &Strike) -> [String; 4] {
    match &strike.condition {
        None => [
            strike.task.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
        ],
        Some((parameter, operator, value)) => [
            strike.task.clone().unwrap_or_default(),
            parameter.clone(),
            operator.as_str().to_owned(),
            value.to_string(),
        ],
    }
}

impl Instruction {
    /// `action`, then the strike's fields.
    pub(crate) fn to_fields(&self) -> Vec<(&'static str, String)> {
        let (action, strike) = match self {
            Self::Strike(strike) => ("strike", Some(strike)),
            Self::Restore(strike) => ("restore", Some(strike)),
            Self::Reset => ("reset", None),
        };
        let mut fields = vec![("action", action.to_owned())];
        if let Some(strike) = strike {
            let [task, parameter, operator, value] = strike_fields(strike);
            fields.extend([
                ("task", task),
                ("parameter", parameter),
                ("operator", operator),
                ("value", value),
            ]);
        }
        fields
    }

    /// Reads an entry back.
    ///
    /// # Errors
    /// A message naming the malformed field.
    pub(crate) fn from_fields(fields: &HashMap<String, String>) -> Result<Self, String> {
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        let action = field("action");
        if action == "reset" {
            return Ok(Self::Reset);
        }
        let task = Some(field("task"))
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let condition = if field("parameter").is_empty() {
            None
        } else {
            let operator: Operator = field("operator").parse()?;
            let value: Value = serde_json::from_str(field("value"))
                .map_err(|e| format!("strike value `{}` is not JSON: {e}", field("value")))?;
            Some((field("parameter").to_owned(), operator, value))
        };
        let strike = Strike { task, condition };
        match action {
            "strike" => Ok(Self::Strike(strike)),
            "restore" => Ok(Self::Restore(strike)),
            other => Err(format!("unknown strike action `{other}`")),
        }
    }
}

/// The strikes in effect, in the order they were made.
#[derive(Debug, Clone, Default)]
pub(crate) struct StrikeSet {
    strikes: Vec<Strike>,
}

impl StrikeSet {
    pub(crate) fn apply(&mut self, instruction: Instruction) {
        match instruction {
            Instruction::Reset => self.strikes.clear(),
            Instruction::Strike(strike) => {
                let fields = strike_fields(&strike);
                if !self.strikes.iter().any(|s| strike_fields(s) == fields) {
                    self.strikes.push(strike);
                }
            }
            Instruction::Restore(strike) => {
                let fields = strike_fields(&strike);
                self.strikes.retain(|s| strike_fields(s) != fields);
            }
        }
    }

    pub(crate) fn all(&self) -> Vec<Strike> {
        self.strikes.clone()
    }

    /// The first strike that blocks a call of `function` with `args` (a JSON object).
    pub(crate) fn blocking(&self, function: &str, args: &str) -> Option<Strike> {
        if self.strikes.is_empty() {
            return None;
        }
        let args: Value = serde_json::from_str(args).unwrap_or(Value::Null);
        self.strikes
            .iter()
            .find(|strike| strike.matches(function, &args))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(instruction: &Instruction) -> Instruction {
        let fields: HashMap<String, String> = instruction
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Instruction::from_fields(&fields).unwrap()
    }

    #[test]
    fn instructions_round_trip() {
        for instruction in [
            Instruction::Strike(Strike::task("t")),
            Instruction::Restore(
                Strike::when("n", Operator::Between, json!([1, 10])).for_task("t"),
            ),
            Instruction::Strike(Strike::when("who", Operator::NotEqual, "x\"y")),
            Instruction::Reset,
        ] {
            assert_eq!(round_trip(&instruction), instruction);
        }
    }

    #[test]
    fn whole_task_and_parameter_strikes_coexist_and_restore_separately() {
        let mut set = StrikeSet::default();
        let whole = Strike::task("charge");
        let narrow = Strike::when("customer", Operator::Equal, "c1").for_task("charge");
        set.apply(Instruction::Strike(whole.clone()));
        set.apply(Instruction::Strike(narrow.clone()));
        set.apply(Instruction::Strike(narrow.clone()));
        assert_eq!(set.all().len(), 2, "the same strike twice is one strike");
        set.apply(Instruction::Restore(whole));
        assert_eq!(set.all(), std::slice::from_ref(&narrow));
        assert!(set.blocking("charge", r#"{"customer":"c1"}"#).is_some());
        assert!(set.blocking("charge", r#"{"customer":"c2"}"#).is_none());
        set.apply(Instruction::Reset);
        assert!(set.all().is_empty());
    }
}
