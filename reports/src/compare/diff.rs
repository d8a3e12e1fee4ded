//! Which `config` and `environment` keys differ between two runs.

use serde_json::Value;

use super::{ConfigDifference, ENVIRONMENT_KEYS, IGNORED_CONFIG_KEYS};
use crate::record::RunRecord;

/// The differing keys of two JSON objects, `skip` left out, in key order.
pub(super) fn differences(
    base: &Value,
    candidate: &Value,
    keys: Option<&[&str]>,
    skip: &[&str],
) -> Vec<ConfigDifference> {
    let empty = serde_json::Map::new();
    let (b, c) = (
        base.as_object().unwrap_or(&empty),
        candidate.as_object().unwrap_or(&empty),
    );
    let mut all: Vec<&String> = b.keys().chain(c.keys()).collect();
    all.sort();
    all.dedup();
    let text = |v: Option<&Value>| match v {
        None => "(missing)".to_owned(),
        Some(Value::Null) => "none".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    all.into_iter()
        .filter(|k| {
            !skip.contains(&k.as_str()) && keys.is_none_or(|keys| keys.contains(&k.as_str()))
        })
        .filter(|k| b.get(*k) != c.get(*k))
        .map(|k| ConfigDifference {
            key: k.clone(),
            base: text(b.get(k)),
            candidate: text(c.get(k)),
        })
        .collect()
}

/// Differences of `config`; a run without `results.json` has no known scenario.
pub(super) fn config_differences(base: &RunRecord, candidate: &RunRecord) -> Vec<ConfigDifference> {
    match (&base.results, &candidate.results) {
        (Some(b), Some(c)) => {
            let to_value =
                |r: &runlog::RunResults| serde_json::to_value(&r.config).unwrap_or_default();
            differences(&to_value(b), &to_value(c), None, IGNORED_CONFIG_KEYS)
        }
        (b, c) => {
            let state = |r: &Option<runlog::RunResults>| {
                if r.is_some() {
                    "known"
                } else {
                    "unknown (no results.json)"
                }
            };
            vec![ConfigDifference {
                key: "config".into(),
                base: state(b).into(),
                candidate: state(c).into(),
            }]
        }
    }
}

/// Differences of `config` between the base's first run and every run of both sides,
/// each key once (its first difference), in key order: a side whose runs did not all run
/// one scenario differs from the base as much as one whose first run did not. Later runs
/// without `results.json` have no known scenario to differ.
pub(super) fn side_config_differences(
    base: &[RunRecord],
    candidate: &[RunRecord],
) -> Vec<ConfigDifference> {
    let first = &base[0];
    let mut all = config_differences(first, &candidate[0]);
    let later = base[1..].iter().chain(&candidate[1..]);
    for run in later.filter(|run| run.results.is_some()) {
        for difference in config_differences(first, run) {
            if !all.iter().any(|known| known.key == difference.key) {
                all.push(difference);
            }
        }
    }
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

pub(super) fn environment_differences(
    base: &RunRecord,
    candidate: &RunRecord,
) -> Vec<ConfigDifference> {
    match (&base.results, &candidate.results) {
        (Some(b), Some(c)) => {
            let to_value =
                |r: &runlog::RunResults| serde_json::to_value(&r.environment).unwrap_or_default();
            differences(&to_value(b), &to_value(c), Some(ENVIRONMENT_KEYS), &[])
        }
        _ => Vec::new(),
    }
}
