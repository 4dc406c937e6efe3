//! RocksDB's single deletion, which the Rust binding (`rocksdb` 0.24) does not offer.
//!
//! A plain deletion leaves a tombstone that every compaction carries down until it reaches
//! the last level, even when the write it deletes was dropped long before. A single
//! deletion and the one write of its key vanish together wherever they meet: in a flush of
//! the memtable that holds both, or in a compaction. RocksDB's contract is that the key was
//! written once since its last deletion and is never also deleted plainly.
//!
//! The state tree's nodes and value versions keep that contract: each is written once, by
//! the block that made it, and deleted once, by pruning, from the block's stale list (ADR
//! 0012). With a short retention most of them die within seconds of their write, so their
//! write and their deletion meet in the memtable and neither reaches a file.
//!
//! The records are written in a batch's serialized form, which RocksDB documents at the top
//! of `db/write_batch.cc` (it is also the format of its write-ahead log) and reads back with
//! `WriteBatch::from_data`: a 12-byte header (sequence, fixed64; count, fixed32), then
//! records. A single deletion in a column family other than the default is the tag `0x8`,
//! the family's id as a varint32, then the key as a varint32 length and its bytes.

use rocksdb::{ColumnFamily, WriteBatch};

use crate::{Error, Result};

/// The header of a serialized batch: sequence (8 bytes), then count (4, little-endian).
const HEADER: usize = 12;
const COUNT: std::ops::Range<usize> = 8..12;
const TYPE_DELETION: u8 = 0x0;
const TYPE_SINGLE_DELETION: u8 = 0x7;
const TYPE_FAMILY_DELETION: u8 = 0x4;
const TYPE_FAMILY_SINGLE_DELETION: u8 = 0x8;

/// A column family's id, as a batch's records name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FamilyId(u32);

impl FamilyId {
    /// The id of `cf`, read back from a batch that deletes a key in it.
    pub(crate) fn of(cf: &ColumnFamily) -> Result<FamilyId> {
        let mut probe = WriteBatch::default();
        probe.delete_cf(cf, []);
        let data = probe.data();
        let id = match data.get(HEADER) {
            Some(&TYPE_DELETION) => Some(0),
            Some(&TYPE_FAMILY_DELETION) => read_varint32(&data[HEADER + 1..]),
            _ => None,
        };
        id.map(FamilyId).ok_or_else(|| {
            Error::Storage(
                "RocksDB's write batches are not in the format single deletions are written in"
                    .into(),
            )
        })
    }
}

/// Single deletions to add to a batch.
#[derive(Debug, Default)]
pub(crate) struct SingleDeletes {
    records: Vec<u8>,
    count: u32,
}

impl SingleDeletes {
    /// Deletes `key`, written once, from the column family `cf`.
    pub(crate) fn delete(&mut self, cf: FamilyId, key: &[u8]) {
        if cf.0 == 0 {
            self.records.push(TYPE_SINGLE_DELETION);
        } else {
            self.records.push(TYPE_FAMILY_SINGLE_DELETION);
            put_varint32(&mut self.records, cf.0);
        }
        let len = u32::try_from(key.len()).expect("RocksDB keys are shorter than 4 GiB");
        put_varint32(&mut self.records, len);
        self.records.extend_from_slice(key);
        self.count += 1;
    }

    /// `batch` followed by these deletions, as one batch (written atomically as before).
    pub(crate) fn append_to(self, batch: WriteBatch) -> WriteBatch {
        if self.count == 0 {
            return batch;
        }
        let data = batch.data();
        let mut rep = Vec::with_capacity(data.len() + self.records.len());
        rep.extend_from_slice(data);
        let mut count = [0; 4];
        count.copy_from_slice(&rep[COUNT]);
        let count = u32::from_le_bytes(count) + self.count;
        rep[COUNT].copy_from_slice(&count.to_le_bytes());
        rep.extend_from_slice(&self.records);
        WriteBatch::from_data(&rep)
    }
}

fn put_varint32(out: &mut Vec<u8>, mut v: u32) {
    // The low seven bits, each group with the high bit set while more follow.
    let [low, ..] = v.to_le_bytes();
    let mut low = low & 0x7f;
    while v >= 0x80 {
        out.push(low | 0x80);
        v >>= 7;
        low = v.to_le_bytes()[0] & 0x7f;
    }
    out.push(low);
}

fn read_varint32(bytes: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        v |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// RocksDB's count of point deletions of every kind, and of range deletions, in a column
/// family's files (for tests).
#[cfg(test)]
pub(crate) fn deletions_in_files(db: &rocksdb::DB, cf: &ColumnFamily) -> (u64, u64) {
    let props = db
        .property_value_cf(cf, "rocksdb.aggregated-table-properties")
        .unwrap()
        .unwrap();
    let count = |name: &str| {
        props
            .split(';')
            .find_map(|p| p.trim().strip_prefix(name))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or(0)
    };
    (count("# deletions="), count("# range deletions="))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::{ColumnFamilyDescriptor, Options, DB};

    fn open(dir: &std::path::Path) -> DB {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = ["a", "b"].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        DB::open_cf_descriptors(&opts, dir, cfs).unwrap()
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            put_varint32(&mut out, v);
            assert_eq!(read_varint32(&out), Some(v));
        }
        assert_eq!(read_varint32(&[0x80, 0x80]), None);
    }

    #[test]
    fn single_deletions_delete_and_leave_no_tombstone_where_they_meet_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let (a, b) = (db.cf_handle("a").unwrap(), db.cf_handle("b").unwrap());
        let (ida, idb) = (FamilyId::of(a).unwrap(), FamilyId::of(b).unwrap());
        assert_ne!(ida, idb);
        let key = |i: u32| format!("key-{i:05}").into_bytes();

        let mut batch = WriteBatch::default();
        for i in 0..300 {
            batch.put_cf(a, key(i), b"node");
            batch.put_cf(b, key(i), b"value");
        }
        db.write(batch).unwrap();

        // Half of each family single-deleted, beside ordinary writes in the same batch.
        let mut batch = WriteBatch::default();
        batch.put_cf(b, b"other", b"kept");
        let mut singles = SingleDeletes::default();
        for i in (0..300).step_by(2) {
            singles.delete(ida, &key(i));
            singles.delete(idb, &key(i));
        }
        let batch = singles.append_to(batch);
        assert_eq!(batch.len(), 301);
        db.write(batch).unwrap();

        for i in 0..300 {
            let gone = i % 2 == 0;
            assert_eq!(db.get_cf(a, key(i)).unwrap().is_none(), gone, "a {i}");
            assert_eq!(db.get_cf(b, key(i)).unwrap().is_none(), gone, "b {i}");
        }
        assert_eq!(
            db.get_cf(b, b"other").unwrap().as_deref(),
            Some(&b"kept"[..])
        );

        // The writes and their deletions met in the memtable: the flushed files hold the
        // 150 keys left and not one tombstone.
        db.flush_cf(a).unwrap();
        db.flush_cf(b).unwrap();
        assert_eq!(deletions_in_files(&db, a), (0, 0));
        assert_eq!(deletions_in_files(&db, b), (0, 0));
        let left = db.iterator_cf(a, rocksdb::IteratorMode::Start).count();
        assert_eq!(left, 150);

        // A plain deletion, for comparison, is flushed as a tombstone.
        let mut batch = WriteBatch::default();
        batch.put_cf(a, b"plain", b"x");
        db.write(batch).unwrap();
        let mut batch = WriteBatch::default();
        batch.delete_cf(a, b"plain");
        db.write(batch).unwrap();
        db.flush_cf(a).unwrap();
        assert_eq!(deletions_in_files(&db, a), (1, 0));
    }

    #[test]
    fn an_empty_set_leaves_the_batch_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf_handle("a").unwrap(), b"k", b"v");
        let before = batch.data().to_vec();
        assert_eq!(
            SingleDeletes::default().append_to(batch).data(),
            &before[..]
        );
    }
}
