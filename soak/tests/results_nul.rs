//! `results.json` holds no NUL character anywhere: neither a raw byte nor an escaped
//! `\u0000` inside a string (`environment.jemalloc` once carried the C string's terminator).

mod common;

use common::*;
use serde_json::Value;

/// Every string in `value` (keys included) that holds a NUL, with its path.
fn strings_with_nul(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s.contains('\0') => found.push(format!("{path}: {s:?}")),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings_with_nul(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    found.push(format!("{path}: key {key:?}"));
                }
                strings_with_nul(item, &format!("{path}.{key}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn results_json_of_a_real_run_has_no_nul_character() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = one_second_run(dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(dir.path().join("latest/results.json")).expect("results.json");
    assert!(!bytes.is_empty());
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let from = at.saturating_sub(60);
        panic!(
            "a NUL byte at offset {at}: {:?}",
            String::from_utf8_lossy(&bytes[from..(at + 20).min(bytes.len())])
        );
    }
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    assert!(
        !text.to_ascii_lowercase().contains("\\u0000"),
        "an escaped NUL"
    );
    let record: Value = serde_json::from_str(text).expect("JSON");
    let mut found = Vec::new();
    strings_with_nul(&record, "$", &mut found);
    assert!(found.is_empty(), "{found:?}");
    // The field that once held one is there to be checked when jemalloc is the allocator.
    assert!(record["environment"].get("jemalloc").is_some());
}
