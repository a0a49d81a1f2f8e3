//! Strikes: operators' instructions that block work by task and by argument (SPEC §7).
//!
//! This module holds the vocabulary shared by the API and the command line; the strike
//! list itself arrives with the strikes behaviour.

use std::fmt;
use std::str::FromStr;

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
