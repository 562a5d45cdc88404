//! Extended attributes (`user.*`, `security.capability`, ACLs, …) of a volume's files and
//! folders, carried in the tar stream as PAX records `SCHILY.xattr.<name>` — the form GNU
//! tar, bsdtar and Docker's archive API read and write.
//!
//! [`read`] lists an open file's attributes and [`append_pax`] writes them for
//! [`backup_dir`](crate::backup_dir);
//! [`of_entry`] takes them from a tar entry and [`apply`] sets them for
//! [`restore_dir`](crate::restore_dir). An attribute this file system or this process
//! may not set (no `trusted.*` without CAP_SYS_ADMIN, no `security.selinux` without
//! SELinux, a file system without extended attributes) is not an error: the restore goes
//! on and reports it ([`NotSet`]), because the data matters more than its labels.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, XattrFlags};
use rustix::io::Errno;

/// The PAX record key prefix of an extended attribute.
pub(crate) const PAX_PREFIX: &str = "SCHILY.xattr.";

/// An attribute: name and value.
pub(crate) type Xattr = (Vec<u8>, Vec<u8>);

/// The extended attributes of the open file or folder `fd`, names in order (none where
/// the file system has no extended attributes).
pub(crate) fn read(fd: BorrowedFd<'_>) -> Result<Vec<Xattr>, Errno> {
    let mut list = vec![0u8; 256];
    let len = loop {
        match rfs::flistxattr(fd, &mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let need = rfs::flistxattr_query(fd)?;
                list.resize(need.max(list.len() * 2), 0);
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    let mut names: Vec<&[u8]> = list[..len]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    names.sort_unstable();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut value = vec![0u8; 256];
        let n = loop {
            match rfs::fgetxattr(fd, OsStr::from_bytes(name), &mut value[..]) {
                Ok(n) => break Some(n),
                Err(Errno::RANGE) => match rfs::fgetxattr_query(fd, OsStr::from_bytes(name)) {
                    Ok(need) => value.resize(need.max(value.len() * 2), 0),
                    Err(Errno::NODATA) => break None,
                    Err(e) => return Err(e),
                },
                // Removed since it was listed.
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e),
            }
        };
        if let Some(n) = n {
            value.truncate(n);
            out.push((name.to_vec(), value));
        }
    }
    Ok(out)
}

/// Writes the PAX record entry that carries `attrs` (nothing when there are none) for
/// the entry appended next. Names that are not UTF-8 cannot be PAX keys and are left out
/// (no file system Mooring knows of makes them).
pub(crate) fn append_pax<W: io::Write>(
    builder: &mut tar::Builder<W>,
    attrs: &[Xattr],
) -> io::Result<()> {
    let keys: Vec<(String, &[u8])> = attrs
        .iter()
        .filter_map(|(name, value)| {
            let name = std::str::from_utf8(name).ok()?;
            Some((format!("{PAX_PREFIX}{name}"), &value[..]))
        })
        .collect();
    builder.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
}

/// The extended attributes a tar entry carries.
pub(crate) fn of_entry<R: io::Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<Xattr>> {
    let mut out = Vec::new();
    if let Some(records) = entry.pax_extensions()? {
        for record in records {
            let record = record?;
            if let Some(name) = record.key_bytes().strip_prefix(PAX_PREFIX.as_bytes()) {
                out.push((name.to_vec(), record.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Attributes a restore could not set: per attribute name, how many entries and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotSet(pub BTreeMap<String, (u64, String)>);

impl NotSet {
    fn note(&mut self, name: &[u8], why: Errno) {
        let slot = self
            .0
            .entry(String::from_utf8_lossy(name).into_owned())
            .or_insert((0, io::Error::from(why).to_string()));
        slot.0 += 1;
    }

    /// One line per attribute, e.g. `trusted.x on 3 entries (Operation not permitted)`.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(name, (n, why))| {
                let s = if *n == 1 { "y" } else { "ies" };
                format!("{name} on {n} entr{s} ({why})")
            })
            .collect()
    }
}

/// Sets `attrs` on the open file or folder `fd`. Attributes the file system or this
/// process may not set are noted in `not_set`; any other failure is returned.
pub(crate) fn apply(
    fd: BorrowedFd<'_>,
    attrs: &[Xattr],
    not_set: &mut NotSet,
) -> Result<(), Errno> {
    for (name, value) in attrs {
        match rfs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty()) {
            Ok(()) => {}
            // Not supported or not allowed here; too large or no room for it on this file
            // system (values up to 64 KiB elsewhere, a few KiB on ext4).
            Err(
                e @ (Errno::NOTSUP
                | Errno::PERM
                | Errno::ACCESS
                | Errno::INVAL
                | Errno::NOSPC
                | Errno::TOOBIG
                | Errno::RANGE
                | Errno::DQUOT),
            ) => not_set.note(name, e),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
