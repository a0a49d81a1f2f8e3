//! The strikes in effect, and the instructions of the strikes stream that change them.

use serde_json::Value;

use super::Strike;

/// One entry of the `{p}:strikes` stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Instruction {
    Strike(Strike),
    Restore(Strike),
    /// Written by compaction: forget everything before; the strikes in effect follow.
    Reset,
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
                let fields = strike.fields();
                if !self.strikes.iter().any(|s| s.fields() == fields) {
                    self.strikes.push(strike);
                }
            }
            Instruction::Restore(strike) => {
                let fields = strike.fields();
                self.strikes.retain(|s| s.fields() != fields);
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
    use super::*;
    use crate::model::Operator;

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
