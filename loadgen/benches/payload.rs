//! Payload generation cost per shape, so a soak can show that generating
//! load costs well below what the dispatcher spends per event (~50–100 ns).
//!
//! Beside the shapes, the group measures a reference: one `Vec<u8>` of 64
//! bytes allocated and handed through a bare bounded channel and back (the
//! cheapest possible "send"), so the ratio holds on any machine. A second
//! group measures a whole producer-side event (payload + clock read + event).

use std::hint::black_box;
use std::sync::mpsc::sync_channel;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loadgen::{Clock, Event, PayloadSource, PayloadSpec};

const SHAPES: [&str; 5] = [
    "fixed:64",
    "fixed:10KiB",
    "telemetry",
    "lognormal:256,1",
    "uniform:64..1KiB",
];

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("payload");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    for shape in SHAPES {
        let spec: PayloadSpec = shape.parse().expect("valid spec");
        let source = PayloadSource::load(&spec).expect("loadable spec");
        let mut generator = source.generator(42, 0);
        group.bench_function(shape, |b| b.iter(|| black_box(generator.next_payload())));
    }
    let (tx, rx) = sync_channel::<Vec<u8>>(1024);
    group.bench_function("reference/channel-handoff-64B", |b| {
        b.iter(|| {
            tx.try_send(black_box(vec![0u8; 64])).expect("room");
            black_box(rx.try_recv().expect("item"))
        });
    });
    group.finish();
}

fn whole_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("event");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    let source = PayloadSource::load(&PayloadSpec::Telemetry).expect("telemetry");
    let mut generator = source.generator(42, 0);
    let clock = Clock::new();
    let mut seq = 0u64;
    group.bench_function("telemetry+clock", |b| {
        b.iter(|| {
            seq += 1;
            black_box(Event::new(generator.next_payload(), clock.now_ns(), 0, seq))
        });
    });
    group.finish();
}

criterion_group!(benches, generation, whole_event);
criterion_main!(benches);
