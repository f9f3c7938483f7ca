//! What every request reads and an operator seldom changes, held in memory: the scope
//! catalogue (the scopes, what each includes, the groups each is restricted to), the
//! clients and the people. Every consent, code, refresh and introspection reads them;
//! read from the database each time, they were most of those requests' round trips
//! (on SQLite, each round trip is two thread switches, and a second one for the ping
//! sqlx sends as the connection returns to its pool).
//!
//! Something remembered is used only while it is current:
//! - **this process's writes** make it stale as they commit: a step that changes the
//!   configuration announces a [`Change::Config`](crate::Change::Config) and forgets
//!   everything ([`Remembered::forget`]); the one step that changes a row without
//!   announcing it (a client's last use, which decides nothing) forgets that row. A
//!   change made here is read by the very next request;
//! - **another process's writes** (an instance on the same PostgreSQL, the command
//!   line beside a SQLite server) announce a `Change::Config`, and the listener
//!   forgets everything on hearing it, on hearing anything it cannot read, and on
//!   losing its connection;
//! - anything read more than [`MAX_AGE`] ago is read again, whatever was heard: a
//!   notification that never arrives (no listener, a lost datagram) delays a change
//!   made elsewhere by at most that long. A revocation does not depend on this: it
//!   reaches every instance through the revocation list.
//!
//! Each read records the generation it started in, so what was read while a change
//! committed is already out of date when it is stored, and is not used. Only rows that
//! exist are remembered: a new client or person is found at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcpgate_domain::model::{Client, User};

/// The longest anything is used without reading it again.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Most rows remembered of each kind; a full map is emptied and fills again.
const MAX_ROWS: usize = 1024;

/// (name, value) rows, as the catalogue's reads return them.
pub(crate) type Pairs = Vec<(String, String)>;

/// Which list of the catalogue.
#[derive(Debug, Clone, Copy)]
pub(crate) enum List {
    Scopes = 0,
    Includes = 1,
    Restrictions = 2,
}

#[derive(Debug)]
pub(crate) struct Remembered {
    /// Bumped by every change: what was read in an earlier generation is not used.
    generation: AtomicU64,
    /// Bumped by every row forgotten alone: a row read meanwhile is not stored.
    rows_forgotten: AtomicU64,
    max_age: Duration,
    lists: [Mutex<Option<Entry<Pairs>>>; 3],
    pub(crate) clients: Rows<Client>,
    pub(crate) users: Rows<User>,
}

/// Rows of one kind by their key.
#[derive(Debug)]
pub(crate) struct Rows<T>(Mutex<HashMap<String, Entry<T>>>);

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    read_at: Instant,
    value: T,
}

impl Default for Remembered {
    fn default() -> Self {
        Self::new(MAX_AGE)
    }
}

impl Remembered {
    pub(crate) fn new(max_age: Duration) -> Self {
        Self {
            generation: AtomicU64::new(0),
            rows_forgotten: AtomicU64::new(0),
            max_age,
            lists: Default::default(),
            clients: Rows::default(),
            users: Rows::default(),
        }
    }

    /// Forgets everything: the next read of each goes to the database.
    pub(crate) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn current<T>(&self, e: &Entry<T>, generation: u64) -> bool {
        e.generation == generation && e.read_at.elapsed() < self.max_age
    }

    /// The list `which`, remembered if current, else read by `load` and remembered.
    pub(crate) async fn list<E>(
        &self,
        which: List,
        load: impl Future<Output = Result<Pairs, E>>,
    ) -> Result<Pairs, E> {
        let generation = self.generation.load(Ordering::Acquire);
        let slot = &self.lists[which as usize];
        if let Some(e) = &*lock(slot)
            && self.current(e, generation)
        {
            return Ok(e.value.clone());
        }
        let read_at = Instant::now();
        let pairs = load.await?;
        let mut slot = lock(slot);
        // A slower read of an earlier generation does not replace a later one.
        if slot.as_ref().is_none_or(|e| e.generation <= generation) {
            *slot = Some(Entry {
                generation,
                read_at,
                value: pairs.clone(),
            });
        }
        Ok(pairs)
    }

    /// The row `key` of `rows`, remembered if current, else read by `load` (and
    /// remembered if it exists).
    pub(crate) async fn row<T: Clone, E>(
        &self,
        rows: &Rows<T>,
        key: &str,
        load: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(e) = lock(&rows.0).get(key)
            && self.current(e, generation)
        {
            return Ok(Some(e.value.clone()));
        }
        let forgotten = self.rows_forgotten.load(Ordering::Acquire);
        let read_at = Instant::now();
        let row = load.await?;
        let mut map = lock(&rows.0);
        // Checked under the map's lock, which `forget_row` takes too.
        let unchanged = self.rows_forgotten.load(Ordering::Acquire) == forgotten;
        match &row {
            Some(value) if unchanged && map.get(key).is_none_or(|e| e.generation <= generation) => {
                if map.len() >= MAX_ROWS && !map.contains_key(key) {
                    map.clear();
                }
                map.insert(
                    key.to_owned(),
                    Entry {
                        generation,
                        read_at,
                        value: value.clone(),
                    },
                );
            }
            Some(_) => {}
            None => {
                map.remove(key);
            }
        }
        Ok(row)
    }

    /// Forgets one row, changed by this process without an announcement (what
    /// changed decides nothing on another instance); called once the change
    /// committed. A read under way is not stored: it may have read the row before.
    pub(crate) fn forget_row<T>(&self, rows: &Rows<T>, key: &str) {
        let mut map = lock(&rows.0);
        self.rows_forgotten.fetch_add(1, Ordering::AcqRel);
        map.remove(key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &str) -> Pairs {
        vec![("s".into(), v.into())]
    }

    /// A read of a list that finds `v`.
    fn listed(v: &str) -> impl Future<Output = Result<Pairs, ()>> {
        let p = pairs(v);
        async move { Ok(p) }
    }

    /// A read of a row that finds `v`.
    async fn found(v: Option<u32>) -> Result<Option<u32>, ()> {
        Ok(v)
    }

    /// Long enough that nothing in a test ages out but what the test ages.
    fn remembered() -> Remembered {
        Remembered::new(Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn a_list_is_read_once_until_forgotten() {
        let r = remembered();
        assert_eq!(r.list(List::Scopes, listed("a")).await, Ok(pairs("a")));
        assert_eq!(r.list(List::Scopes, listed("b")).await, Ok(pairs("a")));
        // Each list is its own.
        assert_eq!(
            r.list(List::Restrictions, listed("c")).await,
            Ok(pairs("c"))
        );
        r.forget();
        assert_eq!(r.list(List::Scopes, listed("d")).await, Ok(pairs("d")));
        assert_eq!(
            r.list(List::Restrictions, listed("e")).await,
            Ok(pairs("e"))
        );
    }

    #[tokio::test]
    async fn a_failed_read_is_not_remembered() {
        let r = remembered();
        assert_eq!(r.list(List::Includes, async { Err(()) }).await, Err(()));
        assert_eq!(r.list(List::Includes, listed("x")).await, Ok(pairs("x")));
    }

    #[tokio::test]
    async fn what_was_read_while_a_change_committed_is_not_used() {
        let r = remembered();
        let during = async {
            r.forget();
            Ok::<_, ()>(pairs("old"))
        };
        assert_eq!(
            r.list(List::Scopes, during).await,
            Ok(pairs("old")),
            "the caller gets it"
        );
        assert_eq!(r.list(List::Scopes, listed("new")).await, Ok(pairs("new")));

        let rows: Rows<u32> = Rows::default();
        let during = async {
            r.forget();
            Ok::<_, ()>(Some(1))
        };
        assert_eq!(r.row(&rows, "k", during).await, Ok(Some(1)));
        assert_eq!(r.row(&rows, "k", found(Some(2))).await, Ok(Some(2)));
    }

    #[tokio::test]
    async fn everything_is_read_again_once_it_is_old() {
        let age = Duration::from_millis(20);
        let r = Remembered::new(age);
        let rows: Rows<u32> = Rows::default();
        r.list(List::Scopes, listed("a")).await.unwrap();
        r.row(&rows, "k", found(Some(1))).await.unwrap();
        // Time itself is what is tested: there is no event to wait for.
        tokio::time::sleep(age * 2).await;
        assert_eq!(r.list(List::Scopes, listed("b")).await, Ok(pairs("b")));
        assert_eq!(r.row(&rows, "k", found(Some(2))).await, Ok(Some(2)));
    }

    #[tokio::test]
    async fn rows_that_exist_are_remembered_and_a_missing_one_is_looked_for_again() {
        let r = remembered();
        let rows: Rows<u32> = Rows::default();
        assert_eq!(r.row(&rows, "new", found(None)).await, Ok(None));
        assert_eq!(
            r.row(&rows, "new", found(Some(7))).await,
            Ok(Some(7)),
            "created since"
        );
        assert_eq!(r.row(&rows, "new", found(Some(8))).await, Ok(Some(7)));
        assert_eq!(r.row(&rows, "other", found(Some(9))).await, Ok(Some(9)));
        r.forget_row(&rows, "new");
        assert_eq!(r.row(&rows, "new", found(Some(10))).await, Ok(Some(10)));
        assert_eq!(
            r.row(&rows, "other", found(Some(0))).await,
            Ok(Some(9)),
            "one forgotten"
        );
    }

    #[tokio::test]
    async fn a_row_read_while_it_was_forgotten_alone_is_not_stored() {
        let r = remembered();
        let rows: Rows<u32> = Rows::default();
        let during = async {
            r.forget_row(&rows, "k");
            Ok::<_, ()>(Some(1))
        };
        assert_eq!(r.row(&rows, "k", during).await, Ok(Some(1)));
        assert_eq!(r.row(&rows, "k", found(Some(2))).await, Ok(Some(2)));
    }

    #[tokio::test]
    async fn the_rows_held_are_bounded() {
        let r = remembered();
        let rows: Rows<u32> = Rows::default();
        for i in 0..(MAX_ROWS * 2 + 1) as u32 {
            r.row(&rows, &i.to_string(), found(Some(i))).await.unwrap();
            assert!(lock(&rows.0).len() <= MAX_ROWS);
        }
    }
}
