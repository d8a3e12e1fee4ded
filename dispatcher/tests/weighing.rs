//! `Weighing::Occupancy` bounds what the buffer occupies, not only its payload.

use dispatcher::weight::allocation;
use dispatcher::{Dispatcher, Policy, TryEnqueueError, Weighing};

#[test]
fn occupancy_charges_struct_and_size_class_and_refuses_past_the_limit() {
    let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(10_000)
        .max_batch_bytes(10_000)
        .weighing(Weighing::Occupancy)
        .build()
        .expect("valid");
    let producer = dispatcher.producer();
    let each = std::mem::size_of::<Vec<u8>>() + allocation(1000);
    let fits = 10_000 / each;
    for _ in 0..fits {
        producer.try_enqueue(vec![0; 1000]).expect("fits");
    }
    assert_eq!(dispatcher.stats().buffered_bytes, fits * each);
    let refused = producer.try_enqueue(vec![7; 1000]).unwrap_err();
    assert!(
        matches!(&refused, TryEnqueueError::Full(v) if v[0] == 7),
        "{refused:?}"
    );
    // The same events weighed by payload would all have fitted.
    assert!(fits * 1000 + 1000 <= 10_000);
    drop(producer);
    let report = dispatcher.stop();
    assert_eq!(report.len(), fits, "every accepted event comes back");
    drop(batches);
}

#[test]
fn drop_oldest_under_occupancy_keeps_the_bound_across_partitions() {
    let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(8_192)
        .partitions(3)
        .policy(Policy::DropOldest)
        .weighing(Weighing::Occupancy)
        .build()
        .expect("valid");
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let producer = dispatcher.producer();
            std::thread::spawn(move || {
                for i in 0..5_000usize {
                    let len = 1 + (i * 7 + t * 13) % 700;
                    producer
                        .try_enqueue(vec![0; len])
                        .expect("drop-oldest admits");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("producer");
    }
    let stats = dispatcher.stats();
    assert!(stats.buffered_bytes <= 8_192, "{stats:?}");
    let held: usize = dispatcher
        .stop()
        .iter()
        .map(dispatcher::Weight::occupancy)
        .sum();
    assert!(held <= 8_192, "stop returned {held} B of occupancy");
    drop(batches);
}
