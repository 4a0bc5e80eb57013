//! Which offsets may be committed: per partition assigned to this member, everything before
//! the first delivery that is not settled yet, so a crash never skips an event.

use std::collections::{BTreeSet, HashMap};

/// Received and unsettled offsets of each partition assigned to this member.
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
    /// One past the highest offset received; `None` before the first record.
    next: Option<i64>,
}

impl PartitionOffsets {
    fn committable(&self) -> Option<i64> {
        self.unsettled.first().copied().or(self.next)
    }
}

impl OffsetTracker {
    /// The group gave this member the partition: a new generation of it starts.
    pub(super) fn assign(&mut self, topic: &str, partition: i32) {
        self.generations += 1;
        self.partitions.insert(
            (topic.to_owned(), partition),
            PartitionOffsets {
                generation: self.generations,
                unsettled: BTreeSet::new(),
                next: None,
            },
        );
    }

    /// Records a received offset; returns the partition's generation, or `None` when the
    /// partition is not this member's (a record fetched before it was revoked, which its
    /// new owner receives again).
    pub(super) fn received(&mut self, topic: &str, partition: i32, offset: i64) -> Option<u64> {
        let entry = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        entry.unsettled.insert(offset);
        entry.next = Some(entry.next.map_or(offset + 1, |next| next.max(offset + 1)));
        Some(entry.generation)
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
        let after = entry.committable()?;
        (Some(after) > before).then_some(after)
    }

    /// Forgets a partition given to another member.
    pub(super) fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_owned(), partition));
    }

    /// Committable offset of every assigned partition this member received from.
    pub(super) fn committable(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|((topic, partition), p)| {
                Some((topic.clone(), *partition, p.committable()?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_point_never_passes_an_unsettled_offset() {
        let mut tracker = OffsetTracker::default();
        tracker.assign("t", 0);
        let generation = tracker.received("t", 0, 10).unwrap();
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
        tracker.assign("t", 1);
        let old = tracker.received("t", 1, 5).unwrap();
        tracker.revoke("t", 1);
        tracker.assign("t", 1);
        let new = tracker.received("t", 1, 5).unwrap();
        assert_ne!(old, new);
        assert!(!tracker.is_current("t", 1, old));
        assert_eq!(tracker.settled("t", 1, old, 5), None);
        assert_eq!(tracker.settled("t", 1, new, 5), Some(6));
    }

    #[test]
    fn a_record_of_a_partition_given_away_is_not_this_members_to_commit() {
        let mut tracker = OffsetTracker::default();
        tracker.assign("t", 2);
        tracker.received("t", 2, 40);
        tracker.revoke("t", 2);
        // Fetched before the revoke, received after it: the new owner handles it.
        assert_eq!(tracker.received("t", 2, 50), None);
        assert!(tracker.committable().is_empty());
    }

    #[test]
    fn an_assigned_partition_without_records_commits_nothing() {
        let mut tracker = OffsetTracker::default();
        tracker.assign("t", 3);
        assert!(tracker.committable().is_empty());
    }
}
