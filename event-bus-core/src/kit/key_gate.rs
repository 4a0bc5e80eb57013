//! Per-key order for backends that hand out messages themselves: one message per key out at a
//! time, the others of that key waiting behind it in arrival order.

use std::collections::{HashMap, VecDeque};

/// Holds items whose key already has one out, and lets the next one go when it settles.
#[derive(Debug)]
pub struct KeyGate<T> {
    busy: HashMap<String, VecDeque<T>>,
}

impl<T> Default for KeyGate<T> {
    fn default() -> Self {
        Self {
            busy: HashMap::new(),
        }
    }
}

impl<T> KeyGate<T> {
    /// Returns `item` when it may go out now (no key, or its key is free, which it now holds);
    /// otherwise keeps it behind the item of its key that is out and returns `None`.
    pub fn admit(&mut self, key: Option<&str>, item: T) -> Option<T> {
        let Some(key) = key else {
            return Some(item);
        };
        match self.busy.get_mut(key) {
            Some(waiting) => {
                waiting.push_back(item);
                None
            }
            None => {
                self.busy.insert(key.to_owned(), VecDeque::new());
                Some(item)
            }
        }
    }

    /// The item of `key` that was out is settled: returns the next one of that key, which now
    /// holds the key, or frees the key when none waits.
    pub fn release(&mut self, key: &str) -> Option<T> {
        let waiting = self.busy.get_mut(key)?;
        let next = waiting.pop_front();
        if next.is_none() {
            self.busy.remove(key);
        }
        next
    }

    /// Drops every waiting item and frees every key (for a member that closes).
    pub fn clear(&mut self) {
        self.busy.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_per_key_goes_out_and_the_rest_follow_in_order() {
        let mut gate = KeyGate::default();
        assert_eq!(gate.admit(Some("a"), 1), Some(1));
        assert_eq!(gate.admit(Some("a"), 2), None);
        assert_eq!(gate.admit(Some("b"), 3), Some(3));
        assert_eq!(gate.admit(None, 4), Some(4));
        assert_eq!(gate.admit(Some("a"), 5), None);
        assert_eq!(gate.release("a"), Some(2));
        assert_eq!(gate.release("a"), Some(5));
        assert_eq!(gate.release("a"), None);
        assert_eq!(gate.admit(Some("a"), 6), Some(6), "the key is free again");
        assert_eq!(gate.admit(Some("a"), 7), None, "and held by 6");
        gate.clear();
        assert_eq!(
            gate.admit(Some("a"), 8),
            Some(8),
            "clearing frees every key"
        );
    }
}
