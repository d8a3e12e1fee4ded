//! Thresholds in a scenario file: read, written back, and refused with the line.

use runlog::ScenarioConfig;

#[test]
fn thresholds_in_a_scenario_file_round_trip_and_bad_ones_name_the_line() {
    let text = "producers = 4\n[thresholds]\np99 = \"<50ms\"\nrefused = [\"<1%\", \"<=500\"]\n";
    let config = ScenarioConfig::from_toml_str(text).unwrap();
    let all: Vec<String> = config.thresholds.iter().map(|t| t.to_string()).collect();
    assert_eq!(all, ["p99<50ms", "refused<1%", "refused<=500"]);
    let unlimited = ScenarioConfig {
        max_batch_bytes: None,
        ..config
    };
    let written = unlimited.to_toml_string().unwrap();
    assert_eq!(ScenarioConfig::from_toml_str(&written).unwrap(), unlimited);
    // A record written before thresholds existed has no such key and none are read.
    assert!(
        !serde_json::to_string(&ScenarioConfig::default())
            .unwrap()
            .contains("thresholds")
    );

    let err = ScenarioConfig::from_toml_str("[thresholds]\np98 = \"<5ms\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 1") || msg.contains("line 2"), "{msg}");
    assert!(
        msg.contains("unknown metric `p98`") && msg.contains("p99"),
        "{msg}"
    );
}
