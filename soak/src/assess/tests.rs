//! The verdict's rules, each on made-up facts.

use super::*;

/// 2 MiB at the start line, 1.25 heap bytes per buffered byte, 1 MiB outside the buffer:
/// the budget for 64 MiB is 2 + 80 + 1 + 8 + 4 = 95 MiB.
fn model() -> HeapModel {
    HeapModel {
        baseline_bytes: 2 << 20,
        cost: crate::calibrate::HeapCost {
            per_buffered_byte: 1.25,
            mean_event_bytes: 250.0,
            ..Default::default()
        },
        outside_bytes: 1 << 20,
    }
}

fn point(t_s: f64, heap_bytes: u64, limit_bytes: u64, stretch: u32) -> MemoryPoint {
    MemoryPoint {
        t_s,
        heap_bytes,
        buffered_bytes: 0,
        limit_bytes,
        stretch,
    }
}

/// A sample a second for 20 s under a 64 MiB limit: `at(t)` gives the heap and the
/// buffered bytes at second `t`.
fn twenty_seconds(at: impl Fn(u64) -> (u64, u64)) -> Vec<MemoryPoint> {
    (1..=20_u32)
        .map(|t| {
            let (heap, buffered) = at(u64::from(t));
            MemoryPoint {
                buffered_bytes: buffered,
                ..point(f64::from(t), heap, 64 << 20, 0)
            }
        })
        .collect()
}

/// The memory verdict of a healthy run whose samples are `series`.
fn memory_of(series: Vec<MemoryPoint>) -> Section {
    assess(&Facts {
        memory_series: series,
        ..healthy()
    })
    .memory
}

/// The verdict's heap-trend note.
fn trend_of(memory: &Section) -> &str {
    memory.notes.iter().find(|n| n.contains("slope")).unwrap()
}

fn healthy() -> Facts {
    Facts {
        attempted: 1_000,
        accepted_by_producers: 900,
        accepted: 900,
        consumed: 900,
        delivered: 900,
        rejected: 100,
        latency_count: Some(900),
        max_buffered_bytes: 64 << 20,
        peak_buffered_bytes: 60 << 20,
        peak_heap_bytes: 70 << 20,
        heap_model: Some(model()),
        memory_series: twenty_seconds(|_| (70 << 20, 0)),
        duration_s: 20.0,
        drain_us: 150,
        drain_deadline_us: 5_000_000,
        ..Facts::default()
    }
}

#[test]
fn a_healthy_run_passes_every_section() {
    let a = assess(&healthy());
    assert_eq!(a.overall, Status::Pass, "{a:#?}");
}

#[test]
fn a_lost_event_fails_correctness() {
    let a = assess(&Facts {
        delivered: 899,
        consumed: 899,
        latency_count: Some(899),
        ..healthy()
    });
    assert_eq!(a.correctness.status, Status::Fail);
    assert!(a.correctness.notes[0].contains("lost events"));
    assert_eq!(a.overall, Status::Fail);
}

#[test]
fn unseen_evictions_fail_correctness() {
    let f = Facts {
        dropped: 5,
        evicted_seen: 4,
        delivered: 895,
        consumed: 895,
        latency_count: Some(895),
        ..healthy()
    };
    assert_eq!(assess(&f).correctness.status, Status::Fail);
}

#[test]
fn no_pressure_warns() {
    let f = Facts {
        rejected: 0,
        peak_buffered_bytes: 1 << 20,
        attempted: 900,
        ..healthy()
    };
    let a = assess(&f);
    assert_eq!(a.pressure.status, Status::Warn);
    assert!(
        a.pressure
            .notes
            .iter()
            .any(|n| n.contains("no backpressure"))
    );
}

#[test]
fn a_saturated_consumer_counts_as_pressure() {
    let f = Facts {
        rejected: 0,
        attempted: 900,
        peak_buffered_bytes: 1 << 20,
        avg_delivered_per_sec: 95.0,
        consumer_bound_per_sec: Some(100.0),
        ..healthy()
    };
    assert_eq!(assess(&f).pressure.status, Status::Pass);
}

#[test]
fn buffered_over_the_limit_fails_memory() {
    let f = Facts {
        peak_buffered_bytes: (64 << 20) + 1,
        ..healthy()
    };
    assert_eq!(assess(&f).memory.status, Status::Fail);
}

#[test]
fn an_event_read_back_heavier_than_the_limit_may_pass_it_by_itself_and_no_more() {
    // 8 KiB events left on disk by a run with a larger limit, read back under 4 KiB.
    let lowered = |peak: u64, heaviest: u64| Facts {
        max_buffered_bytes: 4096,
        peak_buffered_bytes: peak,
        heaviest_read_back: heaviest,
        memory_series: vec![MemoryPoint {
            buffered_bytes: peak,
            ..point(1.0, 5 << 20, 4096, 0)
        }],
        peak_heap_bytes: 5 << 20,
        ..healthy()
    };
    let a = assess(&lowered(8224, 8224));
    assert_eq!(a.memory.status, Status::Pass, "{:#?}", a.memory);
    let note = &a.memory.notes[0];
    assert!(
        note.contains("8.0 KiB (8,224 B), above the 4.0 KiB (4,096 B) limit")
            && note.contains("comes back alone once memory is empty"),
        "{note}"
    );
    // A byte more than the heaviest event read back: no exception covers it.
    let a = assess(&lowered(8225, 8224));
    assert_eq!(a.memory.status, Status::Fail, "{:#?}", a.memory);
    assert_eq!(
        a.memory
            .notes
            .iter()
            .filter(|n| n.contains("heaviest"))
            .count(),
        2
    );
    // Nothing read back (or nothing heavier than the limit): the limit holds as it is.
    assert_eq!(assess(&lowered(8224, 0)).memory.status, Status::Fail);
    let a = assess(&lowered(4097, 4096));
    assert_eq!(a.memory.status, Status::Fail, "{:#?}", a.memory);
    assert!(!a.memory.notes[0].contains("heaviest"), "{:#?}", a.memory);
    // Under the limit: no note about it.
    let a = assess(&lowered(4096, 8224));
    assert_eq!(a.memory.status, Status::Pass);
    assert!(a.memory.notes.iter().all(|n| !n.contains("buffered bytes")));
}

#[test]
fn the_budget_is_built_from_the_measured_cost() {
    let budget = model().budget(64 << 20);
    assert_eq!(budget.total, f64::from(95 << 20));
    let a = assess(&healthy());
    let note = &a.memory.notes[0];
    assert!(
        note.contains("budget of 95.0 MiB") && note.contains("1.250"),
        "{note}"
    );
}

#[test]
fn heap_over_the_measured_budget_fails() {
    let f = Facts {
        memory_series: vec![point(1.0, 96 << 20, 64 << 20, 0)],
        ..healthy()
    };
    let a = assess(&f);
    assert_eq!(a.memory.status, Status::Fail, "{:#?}", a.memory);
    assert!(a.memory.notes[0].contains("more than the buffer explains"));
}

#[test]
fn a_growing_heap_warns_of_a_leak() {
    let memory = memory_of(twenty_seconds(|t| ((50 << 20) + t * (1 << 20), 0)));
    assert_eq!(memory.status, Status::Warn, "{memory:#?}");
    assert!(memory.notes.iter().any(|n| n.contains("looks like a leak")));
}

#[test]
fn a_heap_that_swings_is_noise_not_a_leak() {
    // Up and down by 12 MiB from one sample to the next, drifting a little: a fitted slope
    // exists, but it is far from significant.
    let memory = memory_of(twenty_seconds(|t| {
        let swing = if t % 2 == 0 { 12 << 20 } else { 0 };
        ((50 << 20) + swing + t * (1 << 19), 0)
    }));
    let trend = trend_of(&memory);
    assert_eq!(memory.status, Status::Pass, "{trend}");
    assert!(trend.contains("noise"), "{trend}");
}

#[test]
fn a_buffer_filling_up_is_not_growth() {
    // The buffer fills from 0 to 40 MiB over the run and the heap follows it at the
    // measured 1.25 bytes per byte: the heap grows, but the buffer explains all of it.
    let memory = memory_of(twenty_seconds(|t| {
        let buffered = t * (2 << 20);
        ((10 << 20) + buffered * 5 / 4, buffered)
    }));
    assert_eq!(memory.status, Status::Pass, "{memory:#?}");
}

#[test]
fn a_buffer_that_empties_at_the_end_is_not_growth() {
    // Full at 8 MiB, then low at the last samples while the heap stays flat (the events'
    // memory went to the allocator's caches): as measured in a 2 s run with no consumer
    // delay. Read at the buffer's level, that was a slope of +8.5 MiB/s.
    let buffered = [8, 8, 1, 8, 8, 8, 5, 3];
    let series = buffered
        .iter()
        .zip(1_u32..)
        .map(|(&mib, t)| MemoryPoint {
            buffered_bytes: mib << 20,
            ..point(f64::from(t) / 4.0, 14 << 20, 8 << 20, 0)
        })
        .collect();
    let a = assess(&Facts {
        max_buffered_bytes: 8 << 20,
        peak_buffered_bytes: 8 << 20,
        peak_heap_bytes: 14 << 20,
        memory_series: series,
        duration_s: 2.0,
        ..healthy()
    });
    assert_eq!(a.memory.status, Status::Pass, "{:#?}", a.memory);
}

#[test]
fn a_heap_that_shrinks_is_called_falling() {
    let memory = memory_of(twenty_seconds(|t| ((90 << 20) - t * (2 << 20), 0)));
    let trend = trend_of(&memory);
    assert_eq!(memory.status, Status::Pass, "{trend}");
    assert!(trend.contains("falling"), "{trend}");
}

#[test]
fn a_leak_under_a_full_buffer_still_shows() {
    // The buffer stays at its 64 MiB peak and the heap climbs 4 MiB a second beyond it.
    let series = twenty_seconds(|t| ((90 << 20) + t * (4 << 20), 64 << 20));
    let a = assess(&Facts {
        memory_series: series,
        peak_heap_bytes: 170 << 20,
        ..healthy()
    });
    assert!(
        a.memory
            .notes
            .iter()
            .any(|n| n.contains("looks like a leak")),
        "{:#?}",
        a.memory
    );
}

#[test]
fn a_raised_limit_is_not_growth() {
    // The heap steps from 50 to 150 MiB when the limit goes from 64 MiB to 256 MiB at 10 s
    // and is flat in each stretch: no leak, and the note says how the trend was fitted.
    let series = (1..=20_u32)
        .map(|t| {
            let raised = t > 10;
            let (heap, limit) = if raised { (150, 256) } else { (50, 64) };
            point(f64::from(t), heap << 20, limit << 20, u32::from(raised))
        })
        .collect();
    let a = assess(&Facts {
        max_buffered_bytes: 256 << 20,
        memory_series: series,
        ..healthy()
    });
    assert_eq!(a.memory.status, Status::Pass, "{:#?}", a.memory);
    let trend = trend_of(&a.memory);
    assert!(
        trend.contains("heap the buffer does not explain"),
        "{trend}"
    );
    assert!(
        trend.contains("flat") && trend.contains("2 stretches"),
        "{trend}"
    );
}

#[test]
fn undelivered_events_fail_the_drain() {
    let f = Facts {
        undelivered: 3,
        delivered: 897,
        consumed: 897,
        latency_count: Some(897),
        ..healthy()
    };
    let a = assess(&f);
    assert_eq!(a.drain.status, Status::Fail);
    assert_eq!(a.correctness.status, Status::Pass);
}

#[test]
fn memory_is_judged_against_the_limit_in_force_at_each_sample() {
    let point = |t_s, heap_bytes, limit_bytes| point(t_s, heap_bytes, limit_bytes, 0);
    // 200 MiB of heap under a 64 MiB limit, then the limit raised to 1 GiB: the late
    // raise does not excuse the early excess.
    let f = Facts {
        max_buffered_bytes: 1 << 30,
        peak_heap_bytes: 200 << 20,
        memory_series: vec![
            point(1.0, 200 << 20, 64 << 20),
            point(2.0, 100 << 20, 1 << 30),
        ],
        ..healthy()
    };
    let a = assess(&f);
    assert_eq!(a.memory.status, Status::Fail, "{:#?}", a.memory);
    assert!(
        a.memory.notes.iter().any(|n| n.contains("at 1.0 s")),
        "{:#?}",
        a.memory
    );
    let over = Facts {
        memory_series: vec![MemoryPoint {
            buffered_bytes: 65 << 20,
            ..point(1.0, 70 << 20, 64 << 20)
        }],
        ..healthy()
    };
    assert_eq!(assess(&over).memory.status, Status::Fail);
}

#[test]
fn nothing_delivered_never_passes() {
    let f = Facts {
        accepted_by_producers: 0,
        accepted: 0,
        consumed: 0,
        delivered: 0,
        rejected: 1_000,
        latency_count: Some(0),
        ..healthy()
    };
    assert_eq!(assess(&f).correctness.status, Status::Fail);
}

/// A run with a disk tier that recovered 50 events at start and delivered them with its
/// own 900.
fn with_tier() -> Facts {
    Facts {
        delivered: 950,
        consumed: 950,
        latency_count: Some(950),
        spill: Some(runlog::SpillTotals {
            spilled: 400,
            replayed: 450,
            recovered: 50,
            peak_disk_bytes: 1 << 20,
            max_disk_bytes: 64 << 20,
            ..runlog::SpillTotals::default()
        }),
        ..healthy()
    }
}

#[test]
fn recovered_events_are_accounted_for() {
    let a = assess(&with_tier());
    assert_eq!(a.overall, Status::Pass, "{a:#?}");
    let note = a.correctness.notes.last().expect("a note");
    assert!(
        note.contains("0 left on disk of 900 accepted and 50 recovered from disk"),
        "{note}"
    );
    assert!(
        a.pressure
            .notes
            .iter()
            .any(|n| n.contains("400 events went to the disk tier")),
        "{:?}",
        a.pressure.notes
    );
    let mut lost = with_tier();
    lost.delivered = 940;
    lost.consumed = 940;
    lost.latency_count = Some(940);
    let a = assess(&lost);
    assert_eq!(a.correctness.status, Status::Fail);
    assert!(
        a.correctness.notes[0].contains("+ recovered 50")
            && a.correctness.notes[0].contains("left on disk 0"),
        "{:?}",
        a.correctness.notes
    );
}

#[test]
fn events_left_on_disk_fail_the_drain_not_correctness() {
    let mut f = with_tier();
    f.delivered = 930;
    f.consumed = 930;
    f.latency_count = Some(930);
    if let Some(s) = f.spill.as_mut() {
        s.left_on_disk = 20;
    }
    let a = assess(&f);
    assert_eq!(a.correctness.status, Status::Pass, "{a:#?}");
    assert_eq!(a.drain.status, Status::Fail);
    assert!(a.drain.notes[0].contains("20 accepted events were still on disk"));
}

#[test]
fn undeliverable_records_fail_and_disk_errors_warn() {
    let mut f = with_tier();
    f.delivered = 945;
    f.consumed = 945;
    f.latency_count = Some(945);
    if let Some(s) = f.spill.as_mut() {
        s.undeliverable = 5;
        s.errors = 2;
        s.last_error = Some("spill I/O on /x: disk full".into());
    }
    let a = assess(&f);
    assert_eq!(a.correctness.status, Status::Fail);
    let notes = a.correctness.notes.join("\n");
    assert!(
        notes.contains("5 records read back from disk could not be delivered"),
        "{notes}"
    );
    assert!(
        notes.contains("failed 2 operations") && notes.contains("disk full"),
        "{notes}"
    );
}
