//! A topic's messages by offset, trimmed at the front once every group has settled them.

use std::collections::VecDeque;

use crate::message::Message;

/// Messages from offset [`start`](Log::start) to [`end`](Log::end); those below `start`
/// were trimmed.
#[derive(Debug, Default)]
pub(super) struct Log {
    start: usize,
    messages: VecDeque<Message>,
}

impl Log {
    /// Appends a message at offset [`end`](Self::end).
    pub(super) fn push(&mut self, message: Message) {
        self.messages.push_back(message);
    }

    /// The first offset still held.
    pub(super) fn start(&self) -> usize {
        self.start
    }

    /// The offset the next message gets: how many were ever appended.
    pub(super) fn end(&self) -> usize {
        self.start + self.messages.len()
    }

    /// The message at `offset`, unless trimmed or not yet appended.
    pub(super) fn get(&self, offset: usize) -> Option<&Message> {
        self.messages.get(offset.checked_sub(self.start)?)
    }

    /// The messages held, oldest first.
    pub(super) fn held(&self) -> Vec<Message> {
        self.messages.iter().cloned().collect()
    }

    /// Drops the messages below `offset`.
    pub(super) fn trim_below(&mut self, offset: usize) {
        let drop = offset.min(self.end()).saturating_sub(self.start);
        self.messages.drain(..drop);
        self.start += drop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_offsets() {
        let mut log = Log::default();
        for n in 0..5 {
            log.push(Message::new(n.to_string()));
        }
        log.trim_below(3);
        assert_eq!((log.start(), log.end()), (3, 5));
        assert!(log.get(2).is_none());
        assert_eq!(log.get(3).map(|m| m.payload.as_ref()), Some(&b"3"[..]));
        log.trim_below(9);
        assert_eq!((log.start(), log.end()), (5, 5));
        log.push(Message::new("5"));
        assert_eq!(log.get(5).map(|m| m.payload.as_ref()), Some(&b"5"[..]));
    }
}
