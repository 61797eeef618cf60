//! Collections for the per-row paths.

/// Hash maps on the per-row paths (schema fields, items of a sync batch): foldhash instead of
/// SipHash, randomly seeded per map. Cheap to hash, and its random seed gives a basic defence
/// against crafted keys; remote field names are also checked against a fixed schema first.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
