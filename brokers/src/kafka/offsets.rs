//! Which offsets may be committed: per partition, everything before the first delivery that
//! is not settled yet, so a crash never skips an event.

use std::collections::{BTreeSet, HashMap};

/// Received and unsettled offsets of each assigned partition.
#[derive(Default)]
pub(super) struct OffsetTracker {
    partitions: HashMap<(String, i32), PartitionOffsets>,
    generations: u64,
}

struct PartitionOffsets {
    /// Bumped when the partition is revoked, so settling a delivery from before is ignored.
    generation: u64,
    /// Offsets handed out (or waiting) and not settled.
    unsettled: BTreeSet<i64>,
    /// One past the highest offset received.
    next: i64,
}

impl PartitionOffsets {
    fn committable(&self) -> i64 {
        self.unsettled.first().copied().unwrap_or(self.next)
    }
}

impl OffsetTracker {
    /// Records a received offset; returns the partition's generation.
    pub(super) fn received(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        let key = (topic.to_owned(), partition);
        if !self.partitions.contains_key(&key) {
            self.generations += 1;
            self.partitions.insert(
                key.clone(),
                PartitionOffsets {
                    generation: self.generations,
                    unsettled: BTreeSet::new(),
                    next: offset,
                },
            );
        }
        let entry = self.partitions.get_mut(&key).expect("inserted above");
        entry.unsettled.insert(offset);
        entry.next = entry.next.max(offset + 1);
        entry.generation
    }

    /// Whether a delivery of this generation still belongs to this member.
    pub(super) fn is_current(&self, topic: &str, partition: i32, generation: u64) -> bool {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .is_some_and(|p| p.generation == generation)
    }

    /// Settles an offset; returns the new committable offset when it moved forward.
    pub(super) fn settled(
        &mut self,
        topic: &str,
        partition: i32,
        generation: u64,
        offset: i64,
    ) -> Option<i64> {
        let entry = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        if entry.generation != generation {
            return None;
        }
        let before = entry.committable();
        entry.unsettled.remove(&offset);
        let after = entry.committable();
        (after > before).then_some(after)
    }

    /// Forgets a partition given to another member.
    pub(super) fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_owned(), partition));
    }

    /// Committable offset of every partition this member received from.
    pub(super) fn committable(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .map(|((topic, partition), p)| (topic.clone(), *partition, p.committable()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_point_never_passes_an_unsettled_offset() {
        let mut tracker = OffsetTracker::default();
        let generation = tracker.received("t", 0, 10);
        tracker.received("t", 0, 11);
        tracker.received("t", 0, 12);
        assert_eq!(tracker.settled("t", 0, generation, 11), None);
        assert_eq!(tracker.settled("t", 0, generation, 12), None);
        assert_eq!(tracker.committable(), vec![("t".to_owned(), 0, 10)]);
        assert_eq!(tracker.settled("t", 0, generation, 10), Some(13));
    }

    #[test]
    fn settling_after_a_revoke_is_ignored() {
        let mut tracker = OffsetTracker::default();
        let old = tracker.received("t", 1, 5);
        tracker.revoke("t", 1);
        let new = tracker.received("t", 1, 5);
        assert_ne!(old, new);
        assert!(!tracker.is_current("t", 1, old));
        assert_eq!(tracker.settled("t", 1, old, 5), None);
        assert_eq!(tracker.settled("t", 1, new, 5), Some(6));
    }
}
