//! A map of the emulator's state that remembers which keys changed since the store last saved
//! it, so a save costs what a request changed, not the size of the state. Reads go through
//! `Deref`; every way to change the map is a method here that marks what it touches (there is
//! no `DerefMut`, so an unmarked change does not compile). A new, cloned or deserialized map
//! counts as wholly changed: the store then compares it whole once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What changed in one map since the last [`Tracked::take_touched`].
#[derive(Debug, Default)]
struct Dirty {
    /// Changed in ways not tracked key by key (new, replaced, `retain`, `values_mut`, ...).
    all: bool,
    keys: BTreeSet<String>,
}

/// What a field of the state reports to the store.
#[derive(Debug, PartialEq)]
pub enum Touched {
    Nothing,
    /// These keys, with their new JSON (`None` = removed).
    Entries(Vec<(String, Option<Value>)>),
    /// The whole field's JSON, to be compared with what was saved.
    Whole(Value),
}

#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tracked<V> {
    map: BTreeMap<String, V>,
    #[serde(skip, default = "all_dirty")]
    dirty: Mutex<Dirty>,
}

fn all_dirty() -> Mutex<Dirty> {
    Mutex::new(Dirty {
        all: true,
        keys: BTreeSet::new(),
    })
}

impl<V> Default for Tracked<V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            dirty: all_dirty(),
        }
    }
}

impl<V: Clone> Clone for Tracked<V> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
            dirty: all_dirty(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Tracked<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map.fmt(f)
    }
}

impl<V: PartialEq> PartialEq for Tracked<V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<V> Deref for Tracked<V> {
    type Target = BTreeMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'a, V> IntoIterator for &'a Tracked<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, String, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<V> FromIterator<(String, V)> for Tracked<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Self {
            map: iter.into_iter().collect(),
            dirty: all_dirty(),
        }
    }
}

impl<V> Tracked<V> {
    fn dirty(&mut self) -> &mut Dirty {
        self.dirty.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    fn mark(&mut self, key: &str) {
        let dirty = self.dirty();
        if !dirty.all {
            dirty.keys.insert(key.to_string());
        }
    }

    fn mark_all(&mut self) {
        let dirty = self.dirty();
        dirty.all = true;
        dirty.keys.clear();
    }

    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.mark(&key);
        self.map.insert(key, value)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.mark(key);
        self.map.remove(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.mark(key);
        self.map.get_mut(key)
    }

    pub fn entry(&mut self, key: String) -> std::collections::btree_map::Entry<'_, String, V> {
        self.mark(&key);
        self.map.entry(key)
    }

    pub fn retain(&mut self, keep: impl FnMut(&String, &mut V) -> bool) {
        self.mark_all();
        self.map.retain(keep);
    }

    pub fn values_mut(&mut self) -> std::collections::btree_map::ValuesMut<'_, String, V> {
        self.mark_all();
        self.map.values_mut()
    }

    pub fn iter_mut(&mut self) -> std::collections::btree_map::IterMut<'_, String, V> {
        self.mark_all();
        self.map.iter_mut()
    }

    pub fn clear(&mut self) {
        self.mark_all();
        self.map.clear();
    }
}

impl<V: Serialize> Tracked<V> {
    /// What changed since the last call, and forgets it.
    pub fn take_touched(&self) -> Result<Touched, serde_json::Error> {
        let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        if dirty.all {
            return Ok(Touched::Whole(serde_json::to_value(&self.map)?));
        }
        if dirty.keys.is_empty() {
            return Ok(Touched::Nothing);
        }
        dirty
            .keys
            .into_iter()
            .map(|key| {
                let value = self.map.get(&key).map(serde_json::to_value).transpose()?;
                Ok((key, value))
            })
            .collect::<Result<_, _>>()
            .map(Touched::Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved<V: Serialize>(map: &Tracked<V>) -> Touched {
        map.take_touched().unwrap()
    }

    #[test]
    fn each_way_of_changing_the_map_is_reported_then_forgotten() {
        let mut map: Tracked<u32> = Tracked::default();
        assert!(
            matches!(saved(&map), Touched::Whole(_)),
            "a new map is whole"
        );
        assert_eq!(saved(&map), Touched::Nothing);
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        *map.get_mut("a").unwrap() = 3;
        map.remove("b");
        *map.entry("c".into()).or_default() += 5;
        assert_eq!(
            saved(&map),
            Touched::Entries(vec![
                ("a".into(), Some(3.into())),
                ("b".into(), None),
                ("c".into(), Some(5.into())),
            ])
        );
        assert_eq!(saved(&map), Touched::Nothing, "forgotten once taken");
        map.retain(|k, _| k == "a");
        assert_eq!(saved(&map), Touched::Whole(serde_json::json!({"a": 3})));
        let copy = map.clone();
        assert!(matches!(saved(&copy), Touched::Whole(_)), "a copy is whole");
    }

    #[test]
    fn it_serializes_as_the_plain_map() {
        let map: Tracked<u32> = [("k".to_string(), 1)].into_iter().collect();
        assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"k":1}"#);
        let back: Tracked<u32> = serde_json::from_str(r#"{"k":1}"#).unwrap();
        assert_eq!(back, map);
        assert!(
            matches!(saved(&back), Touched::Whole(_)),
            "a loaded map is whole"
        );
    }
}
