//! The Engine each host is known to be: its id when Mooring first reached it, or when a
//! person accepted a replaced one. A host whose Engine answers with another id is not
//! deployed to until a person accepts it (a volume of the same name on another machine
//! is not the data that was there).

use rusqlite::{params, OptionalExtension};

use crate::{Store, StoreError};

impl Store {
    /// The engine id host `name` is known by, if it was ever reached.
    pub fn host_engine(&self, name: &str) -> Result<Option<String>, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .query_row(
                "SELECT engine_id FROM hosts WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err("reading a host's engine id"))
    }

    /// Records `engine_id` as the one host `name` is known by (first reached, or a
    /// replacement accepted) at `now`.
    pub fn set_host_engine(&self, name: &str, engine_id: &str, now: i64) -> Result<(), StoreError> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO hosts (name, engine_id, known_since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET engine_id = excluded.engine_id,
                                                  known_since = excluded.known_since",
                params![name, engine_id, now],
            )
            .map_err(self.err("recording a host's engine id"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn a_hosts_engine_is_remembered_and_replaced_when_accepted() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.host_engine("edge").unwrap(), None);
        s.set_host_engine("edge", "AAAA:1", 1).unwrap();
        assert_eq!(s.host_engine("edge").unwrap().as_deref(), Some("AAAA:1"));
        s.set_host_engine("edge", "BBBB:2", 2).unwrap();
        assert_eq!(s.host_engine("edge").unwrap().as_deref(), Some("BBBB:2"));
        assert_eq!(s.host_engine("other").unwrap(), None);
    }
}
