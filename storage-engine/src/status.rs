//! Point-in-time gauges for operators: space per drive and filesystem,
//! metadata size, scrub progress. Refreshed when `/metrics` is scraped
//! ([`Engine::refresh_gauges`]), so they cost nothing between scrapes.

use crate::engine::Engine;

impl Engine {
    /// Updates the gauges that are read from the system rather than counted
    /// as work happens. Cheap: one directory listing and one `statvfs` per
    /// drive, three RocksDB properties.
    pub fn refresh_gauges(&self) {
        let m = &self.inner.metrics;
        for (d, dir) in self.inner.config.drive_dirs.iter().enumerate() {
            let label = d.to_string();
            if let Some(store) = self.inner.drives.get(d)
                && let Ok(segments) = store.segments()
            {
                let bytes: u64 = segments.iter().map(|s| s.len_bytes).sum();
                m.drive_segment_bytes
                    .with_label_values(&[label.as_str()])
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            if let Ok(st) = rustix::fs::statvfs(dir) {
                let frsize = st.f_frsize.max(1);
                let free = st.f_bavail.saturating_mul(frsize);
                let size = st.f_blocks.saturating_mul(frsize);
                m.drive_fs_free_bytes
                    .with_label_values(&[label.as_str()])
                    .set(i64::try_from(free).unwrap_or(i64::MAX));
                m.drive_fs_size_bytes
                    .with_label_values(&[label.as_str()])
                    .set(i64::try_from(size).unwrap_or(i64::MAX));
            }
            // Keep the faulty gauge current even when nothing touched the drive.
            let _ = self.inner.drive_usable(d);
        }
        for (kind, prop) in [
            ("sst", "rocksdb.total-sst-files-size"),
            ("memtables", "rocksdb.cur-size-all-mem-tables"),
            (
                "compaction_pending",
                "rocksdb.estimate-pending-compaction-bytes",
            ),
        ] {
            m.meta_bytes
                .with_label_values(&[kind])
                .set(i64::try_from(self.inner.meta.property_sum(prop)).unwrap_or(i64::MAX));
        }
        let scrub = self.scrub_status();
        m.scrub_running.set(i64::from(scrub.running));
        m.scrub_chunks_checked
            .set(i64::try_from(scrub.report.chunks_checked).unwrap_or(i64::MAX));
    }
}
