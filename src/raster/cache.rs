//! A shared cache of decoded COG chunks, in the spirit of GDAL's block cache.
//!
//! Why: neighbouring tiles of a tiling grid read the same source chunks. A grid-1 tile at
//! 10 m is 1000x1000 pixels and Sentinel-2 COGs have 1024-pixel blocks, so nearly every
//! tile touches four blocks and each block is touched by about four tiles. Without a cache
//! every one of those reads fetches and inflates the block again (four times the I/O and
//! the DEFLATE work of GDAL, which caches blocks per process). With it, a block is fetched
//! and decoded once while the tiles around it are processed.
//!
//! What it holds: a chunk's samples after inflating and undoing the predictor
//! ([`super::chunks::ChunkLayout::decode_samples`]), keyed by the file (name and size) and
//! the chunk. Least recently used entries go when the budget is exceeded. The budget is
//! `TESSERA_COG_CACHE_MB` (default 128 MB; 0 turns the cache off).
//!
//! Files are assumed not to change under the same name and size while a process runs, as
//! for any COG cache; a rewritten file with a new size is a new key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The default budget, in bytes of decoded samples.
pub const DEFAULT_BUDGET: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub file: String,
    pub file_size: u64,
    pub ifd: usize,
    pub chunk: usize,
}

/// A handle on one cache; clones share it.
#[derive(Clone)]
pub struct BlockCache(Arc<Mutex<Lru>>);

struct Lru {
    budget: usize,
    used: usize,
    tick: u64,
    entries: HashMap<Key, (Arc<Vec<u8>>, u64)>,
    /// Remote files' sizes and first bytes (the IFDs of a COG), so opening the same file
    /// again for the next tile costs no request. Small (64 KiB a file) and bounded in count.
    headers: HashMap<String, (u64, Arc<Vec<u8>>)>,
}

/// How much of a remote file's start is kept: GDAL's COGs hold every IFD and the chunk
/// index of every level there (the "ghost area" layout).
pub const HEADER_BYTES: u64 = 64 * 1024;
/// Files whose headers are kept at most (64 MiB).
const MAX_HEADERS: usize = 1024;

impl Default for BlockCache {
    fn default() -> BlockCache {
        BlockCache::with_budget(DEFAULT_BUDGET)
    }
}

/// Two configurations that differ only in what their caches hold are the same
/// configuration: the cache changes how fast a read is, never what it returns.
impl PartialEq for BlockCache {
    fn eq(&self, _: &BlockCache) -> bool {
        true
    }
}
impl Eq for BlockCache {}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (used, budget) = self
            .0
            .lock()
            .map(|l| (l.used, l.budget))
            .unwrap_or_default();
        write!(f, "BlockCache({used} of {budget} bytes)")
    }
}

impl BlockCache {
    pub fn with_budget(budget: usize) -> BlockCache {
        BlockCache(Arc::new(Mutex::new(Lru {
            budget,
            used: 0,
            tick: 0,
            entries: HashMap::new(),
            headers: HashMap::new(),
        })))
    }

    /// From `TESSERA_COG_CACHE_MB` through `get` (a variable lookup), default 128 MB.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<BlockCache, String> {
        match get("TESSERA_COG_CACHE_MB").filter(|v| !v.trim().is_empty()) {
            None => Ok(BlockCache::default()),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|mb| *mb <= 1 << 20)
                .map(|mb| BlockCache::with_budget(mb * 1024 * 1024))
                .ok_or_else(|| {
                    format!("TESSERA_COG_CACHE_MB={v:?}: expected megabytes, 0 to 1048576")
                }),
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Vec<u8>>> {
        let mut l = self.0.lock().ok()?;
        l.tick += 1;
        let tick = l.tick;
        let entry = l.entries.get_mut(key)?;
        entry.1 = tick;
        Some(entry.0.clone())
    }

    /// Keeps `value` (unless it alone exceeds the budget), evicting the least recently used.
    pub fn put(&self, key: Key, value: Arc<Vec<u8>>) {
        let Ok(mut l) = self.0.lock() else { return };
        let size = value.len();
        if size > l.budget {
            return;
        }
        l.tick += 1;
        let tick = l.tick;
        if let Some((old, _)) = l.entries.insert(key, (value, tick)) {
            l.used -= old.len();
        }
        l.used += size;
        while l.used > l.budget {
            let Some(oldest) = l
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((v, _)) = l.entries.remove(&oldest) {
                l.used -= v.len();
            }
        }
    }

    /// A remote file's size and first bytes, if kept (even with a zero chunk budget:
    /// headers are tiny and save a round trip per tile).
    pub fn header(&self, file: &str) -> Option<(u64, Arc<Vec<u8>>)> {
        self.0.lock().ok()?.headers.get(file).cloned()
    }

    pub fn put_header(&self, file: &str, size: u64, head: Arc<Vec<u8>>) {
        let Ok(mut l) = self.0.lock() else { return };
        if l.headers.len() >= MAX_HEADERS {
            l.headers.clear();
        }
        l.headers.insert(file.to_string(), (size, head));
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.0.lock().map(|l| l.used).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(chunk: usize) -> Key {
        Key {
            file: "a.tif".into(),
            file_size: 10,
            ifd: 0,
            chunk,
        }
    }

    #[test]
    fn least_recently_used_entries_go_first() {
        let c = BlockCache::with_budget(30);
        c.put(key(1), Arc::new(vec![1; 10]));
        c.put(key(2), Arc::new(vec![2; 10]));
        c.put(key(3), Arc::new(vec![3; 10]));
        assert!(c.get(&key(1)).is_some()); // 1 is now the most recent
        c.put(key(4), Arc::new(vec![4; 10]));
        assert!(c.get(&key(2)).is_none(), "2 was the least recently used");
        assert_eq!(c.get(&key(1)).unwrap()[0], 1);
        assert_eq!(c.used(), 30);
        // Replacing an entry does not count it twice; too large an entry is not kept.
        c.put(key(4), Arc::new(vec![5; 10]));
        assert_eq!(c.used(), 30);
        c.put(key(9), Arc::new(vec![0; 31]));
        assert!(c.get(&key(9)).is_none());
        // The file's size is part of the key: a rewritten file is another entry.
        let mut other = key(1);
        other.file_size = 11;
        assert!(c.get(&other).is_none());
    }

    #[test]
    fn budget_from_the_environment() {
        let vars = |v: Option<&str>| BlockCache::from_vars(&|_| v.map(String::from));
        assert_eq!(
            format!("{:?}", vars(Some("0")).unwrap()),
            "BlockCache(0 of 0 bytes)"
        );
        assert!(
            format!("{:?}", vars(None).unwrap()).ends_with(&format!("of {DEFAULT_BUDGET} bytes)"))
        );
        assert!(vars(Some("lots"))
            .unwrap_err()
            .contains("TESSERA_COG_CACHE_MB"));
        let off = vars(Some("0")).unwrap();
        off.put(key(1), Arc::new(vec![1]));
        assert!(off.get(&key(1)).is_none(), "a zero budget keeps nothing");
    }
}
