//! Room on the data disk. The store keeps a reserve file that is given up when the disk is nearly full,
//! so that commits (tickets) go on while an operator makes room; supervisors get a `disk_low` alert well
//! before that, and speech stops being rendered (it is the one thing that writes much besides the store).

use std::path::{Path, PathBuf};

/// Size of the reserve file kept in the data folder.
pub const RESERVE_BYTES: u64 = 64 * 1024 * 1024;
/// Below this much free space the reserve is given up.
const RELEASE_BELOW: u64 = 2 * RESERVE_BYTES;

pub struct Disk {
    dir: PathBuf,
    reserve: PathBuf,
    /// Below this, alert and stop optional writes.
    pub alert_below: u64,
}

impl Disk {
    pub fn new(data_dir: &Path, alert_below_mb: u64) -> Disk {
        let d = Disk {
            dir: data_dir.to_path_buf(),
            reserve: data_dir.join("vuoro.reserve"),
            alert_below: alert_below_mb * 1024 * 1024,
        };
        d.keep_reserve();
        d
    }

    /// Free bytes for this process's user on the data folder's file system.
    pub fn free(&self) -> Option<u64> {
        let s = rustix::fs::statvfs(&self.dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }

    pub fn low(&self) -> bool {
        self.free().is_some_and(|f| f < self.alert_below)
    }

    /// Makes the reserve file when there is room for it; gives it up when the disk is nearly full.
    pub fn keep_reserve(&self) {
        let Some(free) = self.free() else { return };
        let have = std::fs::metadata(&self.reserve).is_ok_and(|m| m.len() >= RESERVE_BYTES);
        if free < RELEASE_BELOW {
            if have && std::fs::remove_file(&self.reserve).is_ok() {
                tracing::error!(free, "disk nearly full: the store's reserve is given up");
            }
        } else if !have && free > RELEASE_BELOW + RESERVE_BYTES {
            // Allocated (not a sparse file), so the space is really held; no bytes need writing.
            let made = std::fs::File::create(&self.reserve).and_then(|f| {
                rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES)?;
                f.sync_all()
            });
            if let Err(e) = made {
                tracing::warn!(error = %e, "cannot make the store's reserve file");
                let _ = std::fs::remove_file(&self.reserve);
            }
        }
    }

    pub fn has_reserve(&self) -> bool {
        self.reserve.exists()
    }
}
