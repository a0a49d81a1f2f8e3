//! [`EntryId`]: a backend's opaque name for one entry of a stream.

use std::fmt;

/// One entry of a stream as its backend numbers it: a delivered message (for its ack and
/// renewal) or a strike instruction (to know which were applied). Ordered as the stream
/// orders its entries. Only a backend makes one; everyone else holds it and gives it
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct EntryId {
    /// Redis: the milliseconds part of the stream id; memory: zero.
    high: u64,
    /// Redis: the sequence part; memory: the entry's number.
    low: u64,
}

impl EntryId {
    /// The entry numbered `seq` by an in-process stream.
    pub(in crate::backend) fn from_seq(seq: u64) -> Self {
        Self { high: 0, low: seq }
    }

    /// The number an in-process stream gave the entry.
    pub(in crate::backend) fn seq(self) -> u64 {
        self.low
    }

    /// A Redis stream id (`1712345678901-3`); `None` when it is not one.
    pub(in crate::backend) fn parse(id: &str) -> Option<Self> {
        let (high, low) = id.split_once('-').unwrap_or((id, "0"));
        Some(Self {
            high: high.parse().ok()?,
            low: low.parse().ok()?,
        })
    }
}

/// Redis's spelling: `ms-seq`.
impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.high, self.low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_ids_round_trip_and_order_as_the_stream_does() {
        let id = EntryId::parse("1712345678901-3").unwrap();
        assert_eq!(id.to_string(), "1712345678901-3");
        assert!(EntryId::parse("9-10").unwrap() > EntryId::parse("9-9").unwrap());
        assert!(EntryId::parse("10-0").unwrap() > EntryId::parse("9-99").unwrap());
        assert_eq!(EntryId::parse("7"), EntryId::parse("7-0"));
        assert_eq!(EntryId::parse("x-1"), None);
        assert_eq!(EntryId::from_seq(5).seq(), 5);
    }
}
