use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

fn spec(text: &str) -> PayloadSpec {
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_form_parses_and_displays_back() {
    let cases = [
        ("fixed:64", PayloadSpec::Fixed(64)),
        ("fixed:10KiB", PayloadSpec::Fixed(10_240)),
        ("fixed:10KB", PayloadSpec::Fixed(10_000)),
        ("fixed:1MiB", PayloadSpec::Fixed(1 << 20)),
        (
            "uniform:64..256",
            PayloadSpec::Uniform { min: 64, max: 256 },
        ),
        (
            "uniform:1KiB..=2KiB",
            PayloadSpec::Uniform {
                min: 1024,
                max: 2048,
            },
        ),
        (
            "lognormal:1KiB,0.5",
            PayloadSpec::LogNormal {
                median: 1024,
                sigma: 0.5,
            },
        ),
        ("telemetry", PayloadSpec::Telemetry),
        (
            "file:data/events.jsonl",
            PayloadSpec::File("data/events.jsonl".into()),
        ),
    ];
    for (text, want) in cases {
        let got = spec(text);
        assert_eq!(got, want, "{text}");
        assert_eq!(spec(&got.to_string()), got, "{text}");
    }
}

#[test]
fn parse_errors_are_one_line_naming_input_and_forms() {
    let bad = [
        "",
        "fixed",
        "fixed:ten",
        "fixed:1GiB",
        "uniform:5",
        "uniform:9..3",
        "lognormal:1KiB",
        "lognormal:1KiB,x",
        "lognormal:1KiB,9",
        "telemetry:1",
        "file:",
        "zipf:1",
    ];
    for text in bad {
        let err = text.parse::<PayloadSpec>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("{text:?}")), "{msg}");
        assert!(
            msg.contains("fixed:SIZE") && msg.contains("file:PATH"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn sizes_stay_in_their_ranges() {
    let mut fixed = PayloadGen::new(&spec("fixed:10KiB"), 1, 0).unwrap();
    assert!(fixed.by_ref().take(10).all(|p| p.len() == 10_240));
    assert_eq!(fixed.produced(), 10);

    let uniform = PayloadGen::new(&spec("uniform:100..120"), 1, 0).unwrap();
    let lens: HashSet<usize> = uniform.take(2_000).map(|p| p.len()).collect();
    assert_eq!(lens, (100..=120).collect());

    let lognormal = PayloadGen::new(&spec("lognormal:16MiB,4"), 1, 0).unwrap();
    for p in lognormal.take(50) {
        assert!((1..=MAX_PAYLOAD_BYTES).contains(&p.len()));
    }
}

#[test]
fn payloads_are_exact_capacity() {
    for text in [
        "fixed:100",
        "uniform:1..300",
        "lognormal:200,1",
        "telemetry",
    ] {
        let mut generator = PayloadGen::new(&spec(text), 3, 0).unwrap();
        for _ in 0..100 {
            let p = generator.next_payload();
            assert_eq!(p.len(), p.capacity(), "{text}");
        }
    }
}

#[test]
fn mean_hints_match_the_distributions() {
    let hint = |text: &str| PayloadSource::load(&spec(text)).unwrap().mean_size_hint();
    assert_eq!(hint("fixed:64"), 64.0);
    assert_eq!(hint("uniform:100..200"), 150.0);
    let want = 1000.0 * (0.5f64 * 0.5 / 2.0).exp();
    assert!((hint("lognormal:1000,0.5") / want - 1.0).abs() < 0.05);
    let telemetry = hint("telemetry");
    assert!((150.0..350.0).contains(&telemetry), "{telemetry}");
}

#[test]
fn telemetry_lines_are_json_with_unique_ids_and_timestamps() {
    let source = PayloadSource::load(&PayloadSpec::Telemetry).unwrap();
    let mut ids = HashSet::new();
    let mut kinds = HashSet::new();
    for producer in 0..4 {
        for payload in source.generator(11, producer).take(500) {
            assert!((90..=450).contains(&payload.len()), "{}", payload.len());
            let value: serde_json::Value = serde_json::from_slice(&payload)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&payload)));
            let id = value["id"].as_str().expect("id").to_owned();
            assert!(id.starts_with(&format!("{producer:08x}-")), "{id}");
            assert!(ids.insert(id), "duplicate id");
            assert!(value["ts"].as_u64().expect("ts") > 1_700_000_000_000);
            kinds.insert(value["type"].as_str().expect("type").to_owned());
        }
    }
    assert_eq!(kinds.len(), 5, "{kinds:?}");
}

#[test]
fn telemetry_ids_stay_unique_across_producers_and_pool_laps() {
    let source = PayloadSource::load(&PayloadSpec::Telemetry).unwrap();
    let events = 3 * telemetry::POOL + 17;
    let mut ids = HashSet::new();
    for producer in [0, 1, 2, 255, 256, u32::MAX] {
        let mut generator = source.generator(23, producer);
        let mut last_ts = 0;
        let mut bodies = HashSet::new();
        for seq in 0..events {
            let payload = generator.next_payload();
            let mut value: serde_json::Value = serde_json::from_slice(&payload)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&payload)));
            let id = value["id"].as_str().expect("id").to_owned();
            assert_eq!(id, format!("{producer:08x}-{seq:016x}"));
            assert!(ids.insert(id), "duplicate id");
            let ts = value["ts"].as_u64().expect("ts");
            assert!(ts >= last_ts, "timestamps go forward");
            last_ts = ts;
            // What is left once id and ts are removed repeats only per lap.
            let object = value.as_object_mut().expect("object");
            object.remove("id");
            object.remove("ts");
            bodies.insert(value.to_string());
        }
        assert!(bodies.len() > telemetry::POOL / 2, "{}", bodies.len());
        assert!(bodies.len() <= telemetry::POOL, "{}", bodies.len());
    }
}

#[test]
fn telemetry_mean_hint_matches_what_producers_send() {
    let source = PayloadSource::load(&PayloadSpec::Telemetry).unwrap();
    let (mut bytes, mut count) = (0usize, 0usize);
    for producer in 0..8 {
        for payload in source.generator(99, producer).take(2 * telemetry::POOL) {
            bytes += payload.len();
            count += 1;
        }
    }
    let measured = bytes as f64 / count as f64;
    let hint = source.mean_size_hint();
    assert!((measured / hint - 1.0).abs() < 0.02, "{measured} vs {hint}");
}

#[test]
fn file_records_cycle_from_spread_offsets() {
    let dir = std::env::temp_dir().join(format!("loadgen-payload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("records.txt");
    let lines: Vec<String> = (0..64).map(|i| format!("record-{i}")).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();

    let source = PayloadSource::load(&PayloadSpec::File(path.clone())).unwrap();
    let first: Vec<Vec<u8>> = source.generator(5, 0).take(65).collect();
    let start = lines.iter().position(|l| l.as_bytes() == first[0]).unwrap();
    for (i, p) in first.iter().enumerate() {
        assert_eq!(p, lines[(start + i) % 64].as_bytes());
    }
    let starts: HashSet<Vec<u8>> = (0..8)
        .map(|producer| source.generator(5, producer).next_payload())
        .collect();
    assert_eq!(starts.len(), 8, "producers start at different records");

    let missing = PayloadSource::load(&PayloadSpec::File(dir.join("nope.txt"))).unwrap_err();
    assert!(missing.to_string().contains("nope.txt"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn generators_are_deterministic_per_seed_and_producer(
        seed in any::<u64>(),
        producer in 0u32..64,
        shape in prop::sample::select(vec!["uniform:0..4KiB", "lognormal:512,1.5", "telemetry"]),
    ) {
        let source = PayloadSource::load(&spec(shape)).unwrap();
        let a: Vec<Vec<u8>> = source.generator(seed, producer).take(20).collect();
        let b: Vec<Vec<u8>> = source.generator(seed, producer).take(20).collect();
        prop_assert_eq!(&a, &b);
        let other: Vec<Vec<u8>> = source.generator(seed, producer + 1).take(20).collect();
        prop_assert_ne!(a, other);
    }
}
